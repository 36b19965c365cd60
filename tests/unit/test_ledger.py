"""The exact ledger: installment split, oldest-first repayment, credit balance, order independence."""

from __future__ import annotations

import random

from riskmon.ledger import INSTALLMENT_PERIOD_MS, Ledger, split_installments

GRACE = 3 * 86_400_000


def test_split_floors_to_the_fen_and_puts_the_remainder_last() -> None:
    parts = split_installments("p1", 1_000, 100_001, 12)
    assert [p.amount for p in parts[:-1]] == [8333] * 11
    assert parts[-1].amount == 100_001 - 8333 * 11
    assert sum(p.amount for p in parts) == 100_001
    assert [p.due for p in parts] == [1_000 + INSTALLMENT_PERIOD_MS * k for k in range(1, 13)]


def test_repayment_pays_oldest_first_and_excess_becomes_credit() -> None:
    led = Ledger()
    led.purchase("a", 0, 300, 3, GRACE)
    led.purchase("b", 10, 600, 3, GRACE)
    pay = led.repay(5, 350, GRACE)
    # by due instant: a1 (100, due 30d) then b1 (200, due 30d+10ms), then 50 towards a2
    unpaid = led.unpaid()
    assert [i.purchase_id + str(i.k) for i, _ in pay.completed] == ["a1", "b1"]
    assert unpaid[0].purchase_id == "a" and unpaid[0].k == 2 and unpaid[0].paid == 50
    assert led.outstanding == 900 - 350
    pay = led.repay(6, 10_000, GRACE)
    assert led.outstanding == 0
    assert led.credit_balance == 10_000 - 550
    assert pay.to_credit == 10_000 - 550


def test_credit_balance_pays_a_later_purchase_at_once() -> None:
    led = Ledger()
    led.repay(0, 500, GRACE)
    assert led.credit_balance == 500
    pay = led.purchase("p", 1, 900, 3, GRACE)
    assert led.credit_balance == 0
    assert led.outstanding == 400
    assert [(i.k, on_time) for i, on_time in pay.completed] == [(1, True)]
    assert led.unpaid()[0].paid == 200


def test_outstanding_does_not_depend_on_arrival_order() -> None:
    rng = random.Random(3)
    events = [("p", f"p{i}", rng.randint(1, 50_000), rng.choice([1, 3, 6, 12, 24])) for i in range(30)]
    events += [("r", f"r{i}", rng.randint(1, 40_000), 0) for i in range(25)]
    expected = max(0, sum(e[2] for e in events if e[0] == "p") - sum(e[2] for e in events if e[0] == "r"))
    for seed in range(5):
        order = events[:]
        random.Random(seed).shuffle(order)
        led = Ledger()
        for t, (kind, eid, amount, n) in enumerate(order):
            if kind == "p":
                led.purchase(eid, t, amount, n, GRACE)
            else:
                led.repay(t, amount, GRACE)
        assert led.outstanding == expected
        assert led.outstanding - led.credit_balance == sum(e[2] for e in events if e[0] == "p") - sum(
            e[2] for e in events if e[0] == "r")


def test_on_time_means_paid_by_due_plus_grace() -> None:
    led = Ledger()
    led.purchase("p", 0, 200, 1, GRACE)
    due = INSTALLMENT_PERIOD_MS
    pay = led.repay(due + GRACE + 1, 200, GRACE)
    assert pay.completed[0][1] is False
    led.purchase("q", 0, 200, 1, GRACE)
    pay = led.repay(due + GRACE, 200, GRACE)
    assert pay.completed[0][1] is True
