"""The simulator's installment schedule: the exact ledger rule, in integer fen."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from riskmon.eventtime import MS_PER_DAY, fmt_ts
from riskmon.ledger import Ledger
from simulator.clock import TsFormatter
from simulator.schedule import RepaymentSchedule, split_installments

DAY = MS_PER_DAY
T0 = 1_772_323_200_000  # 2026-03-01T00:00:00Z


def test_split_floors_to_the_fen_and_puts_the_remainder_last() -> None:
    assert split_installments(100_00, 3) == [3333, 3333, 3334]
    assert split_installments(1, 24) == [0] * 23 + [1]
    assert split_installments(999_99, 1) == [999_99]
    assert sum(split_installments(123_457, 12)) == 123_457


def test_installments_fall_due_every_30_days_after_the_purchase() -> None:
    s = RepaymentSchedule()
    s.purchase(T0, "p1", 300_00, 3)
    assert [i.due for i in s.items] == [T0 + 30 * DAY, T0 + 60 * DAY, T0 + 90 * DAY]
    assert [i.amount for i in s.items] == [100_00, 100_00, 100_00]


def test_repayment_pays_the_earliest_due_installment_first_across_purchases() -> None:
    s = RepaymentSchedule()
    s.purchase(T0, "p1", 600_00, 3)  # due +30, +60, +90
    s.purchase(T0 + 10 * DAY, "p2", 50_00, 1)  # due +40
    s.repay(T0 + 20 * DAY, 250_00)  # p1#1 (200) + 50 of p2#1
    by_id = {(i.purchase_id, i.k): i for i in s.items}
    assert by_id[("p1", 1)].paid_ts == T0 + 20 * DAY
    assert by_id[("p2", 1)].paid_ts == T0 + 20 * DAY and by_id[("p2", 1)].remaining == 0
    assert by_id[("p1", 2)].paid == 0
    assert s.outstanding == 400_00 and s.credit == 0


def test_excess_becomes_credit_balance_and_a_later_purchase_consumes_it() -> None:
    s = RepaymentSchedule()
    s.purchase(T0, "p1", 100_00, 1)
    s.repay(T0 + DAY, 130_00)
    assert s.credit == 30_00 and s.outstanding == 0
    s.purchase(T0 + 2 * DAY, "p2", 90_00, 3)  # 30 + 30 + 30: the credit pays the first at once
    assert s.credit == 0
    assert s.items[1].paid_ts == T0 + 2 * DAY and s.items[2].paid == 0
    assert s.outstanding == 60_00


def test_first_reach_of_30_dpd_is_due_plus_30_days_unless_paid_before() -> None:
    s = RepaymentSchedule()
    s.purchase(T0, "p1", 200_00, 2)  # due +30, +60
    s.repay(T0 + 30 * DAY + 29 * DAY, 100_00)  # first paid at DPD 29: never reached 30
    end = T0 + 200 * DAY
    assert s.first_reach(30, end) == T0 + 60 * DAY + 30 * DAY  # the second one, never paid
    assert s.first_reach(30, T0 + 90 * DAY) is None  # window ends exactly at that instant
    assert s.dpd_at(T0 + 70 * DAY) == 10


def test_payment_exactly_at_30_dpd_counts_as_reached() -> None:
    s = RepaymentSchedule()
    s.purchase(T0, "p1", 100_00, 1)
    s.repay(T0 + 60 * DAY, 100_00)
    assert s.first_reach(30, T0 + 365 * DAY) == T0 + 60 * DAY


def test_zero_fen_installments_are_settled_at_once_and_never_go_past_due() -> None:
    s = RepaymentSchedule()
    s.purchase(T0, "p1", 2, 3)  # 0, 0, 2 fen
    assert [i.paid_ts for i in s.items] == [T0, T0, None]
    s.repay(T0 + 95 * DAY, 2)
    assert s.first_reach(30, T0 + 200 * DAY) is None  # the 2-fen one was paid at DPD 5


ops = st.lists(  # amounts >= 24 fen: no 0-fen installments (the pipeline ledger treats those differently)
    st.tuples(st.booleans(), st.integers(24, 5000_00), st.sampled_from([1, 3, 6, 12, 24]), st.integers(0, 5 * DAY)),
    min_size=1, max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_schedule_agrees_with_the_pipeline_ledger_installment_by_installment(seq) -> None:
    """Two independent implementations of the same rule: every installment's paid_ts must match."""
    mine, theirs = RepaymentSchedule(), Ledger()
    ts = T0
    for n, (is_purchase, amount, inst, gap) in enumerate(seq):
        ts += gap + 1000
        if is_purchase:
            mine.purchase(ts, f"p{n:03d}", amount, inst)
            theirs.purchase(f"p{n:03d}", ts, amount, inst, grace_ms=0)
        else:
            mine.repay(ts, amount)
            theirs.repay(ts, amount, grace_ms=0)
        assert mine.unpaid_total() - mine.credit == mine.purchased - mine.repaid
    assert mine.credit == theirs.credit_balance
    assert mine.outstanding == theirs.outstanding
    got = sorted((i.purchase_id, i.k, i.amount, i.paid_ts) for i in mine.items)
    want = sorted((i.purchase_id, i.k, i.amount, i.paid_ts) for i in theirs.installments)
    assert got == want


@given(st.integers(946_684_800_000, 4_102_444_799_999))
def test_cached_formatter_matches_fmt_ts(ms: int) -> None:
    f = TsFormatter()
    assert f(ms) == fmt_ts(ms)
    assert f(ms - ms % 1000) == fmt_ts(ms - ms % 1000)
