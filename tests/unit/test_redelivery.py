"""Redelivery of events whose ids the dedup window has forgotten must not apply them a second time."""

from __future__ import annotations

from riskmon.config import Settings
from riskmon.engine import STALE_REASON, Engine
from riskmon.eventtime import parse_ts
from riskmon.offline import run_offline
from riskmon.policy import load_policy
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-01T02:00:00Z")


def _engine() -> Engine:
    return Engine(load_policy(Settings().policy_path), lateness_ms=0, dedup_window_ms=45 * DAY)


def test_a_redelivery_inside_the_window_is_a_duplicate() -> None:
    s = Stream()
    s.account("u", T0)
    s.purchase("u", T0 + 1000, "300.00")
    s.background(T0, 10)
    msgs = s.sorted()
    run = run_offline(msgs + [m for m in msgs if m[0] == "purchases"], _engine())
    assert run.duplicates == 1 and run.dead_letters == []
    assert run.states["u"].ledger.outstanding == 300_00


def test_a_redelivery_older_than_the_window_is_refused_not_applied_twice() -> None:
    s = Stream()
    opening = s.account("u", T0)
    s.purchase("u", T0 + 1000, "300.00", installments=3)
    s.repay("u", T0 + 2 * DAY, "100.00")
    s.background(T0, 70)
    s.purchase("u", T0 + 60 * DAY, "50.00")  # the account is touched after the window has moved on
    msgs = s.sorted()
    first = run_offline(msgs, _engine(), batch_size=20)
    assert first.states["u"].dedup_floor > T0 + 2 * DAY
    # the whole history of "u" arrives again (a consumer group reset / lost offsets after an outage)
    again = [m for m in msgs if b'"user_id":"u"' in m[1]]
    run = run_offline(msgs + again, _engine(), batch_size=20)
    st = run.states["u"]
    assert st.ledger.outstanding == first.states["u"].ledger.outstanding == 250_00
    stale = [r for r in run.dead_letters if r[1] == STALE_REASON]
    assert sorted(t for t, _ in stale) == ["accounts", "purchases", "repayments"]
    assert run.applied == first.applied and run.duplicates == 1  # the recent purchase is a plain duplicate
    assert opening["event_id"] not in st.applied
