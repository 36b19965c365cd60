"""Events older than an account's exact dedup window: a redelivery is still a duplicate, a new one applies."""

from __future__ import annotations

from riskmon.account import AccountState
from riskmon.config import Settings
from riskmon.engine import Engine
from riskmon.eventtime import parse_ts
from riskmon.offline import run_offline
from riskmon.policy import load_policy
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-01T02:00:00Z")


def _engine() -> Engine:
    return Engine(load_policy(Settings().policy_path), lateness_ms=0, dedup_window_ms=45 * DAY)


def _history() -> tuple[Stream, dict]:
    s = Stream()
    opening = s.account("u", T0)
    s.purchase("u", T0 + 1000, "300.00", installments=3)
    s.repay("u", T0 + 2 * DAY, "100.00")
    s.background(T0, 70)
    s.purchase("u", T0 + 60 * DAY, "50.00")  # the account is touched after the window has moved on
    return s, opening


def test_a_redelivery_inside_the_window_is_a_duplicate() -> None:
    s = Stream()
    s.account("u", T0)
    s.purchase("u", T0 + 1000, "300.00")
    s.background(T0, 10)
    msgs = s.sorted()
    run = run_offline(msgs + [m for m in msgs if m[0] == "purchases"], _engine())
    assert run.duplicates == 1 and run.dead_letters == []
    assert run.states["u"].ledger.outstanding == 300_00


def test_a_redelivery_older_than_the_window_is_still_a_duplicate() -> None:
    s, opening = _history()
    msgs = s.sorted()
    first = run_offline(msgs, _engine(), batch_size=20)
    st0 = first.states["u"]
    assert st0.dedup_floor > T0 + 2 * DAY and opening["event_id"] not in st0.applied  # only fingerprints left
    # the whole history of "u" arrives again (a consumer group reset / lost offsets after an outage)
    again = [m for m in msgs if b'"user_id":"u"' in m[1]]
    run = run_offline(msgs + again, _engine(), batch_size=20)
    assert run.states["u"].ledger.outstanding == st0.ledger.outstanding == 250_00
    assert run.applied == first.applied and run.duplicates == 4


def test_a_new_event_older_than_the_window_is_applied() -> None:
    # replays: a slow partition can deliver a repayment of "two months ago" after the account's timeline
    # has moved on; it was never applied, so it must count
    s, _ = _history()
    msgs = s.sorted()
    s.repay("u", T0 + 3 * DAY, "20.00")
    late = s.msgs[-1:]
    before = run_offline(msgs, _engine(), batch_size=20).states["u"]
    run = run_offline(msgs + late, _engine(), batch_size=20)
    assert before.dedup_floor > T0 + 3 * DAY
    assert run.states["u"].ledger.outstanding == before.ledger.outstanding - 20_00 and run.duplicates == 0


def test_fingerprints_survive_the_state_blob_and_are_bounded() -> None:
    st = AccountState("u", opened_ts=T0)
    for i in range(5000):
        st.mark(f"p:{i}", T0 + i)
    st.prune(T0 + 100 * DAY, 45 * DAY)
    assert not st.applied and len(st.old_ids) == 4096
    back = AccountState.from_bytes(st.to_bytes())
    assert back.old_ids == st.old_ids and back.dedup_floor == st.dedup_floor
    assert back.seen("p:4999", T0) and not back.seen("p:0", T0)  # the oldest 904 fell out of the cap
