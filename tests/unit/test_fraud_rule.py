"""``fraud_suspected``: bursts of spending at merchants new to the user (bust-out / account takeover)."""

from __future__ import annotations

import dataclasses

import orjson

from riskmon.config import Settings
from riskmon.engine import Engine
from riskmon.eventtime import parse_ts
from riskmon.offline import run_offline
from riskmon.policy import Policy, load_policy
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-02T10:00:00Z")
HOUR = 3_600_000


def _history(s: Stream) -> None:
    """A user with a month of small purchases at two familiar merchants (limit 5,000.00), repaid."""
    s.account("u", T0)
    for d in range(30):
        s.purchase("u", T0 + d * DAY, "20.00", merchant="m1" if d % 2 else "m2")
    s.repay("u", T0 + 29 * DAY, "600.00")


def _run(s: Stream, policy: Policy) -> tuple[list[dict], list[dict]]:
    eng = Engine(policy, lateness_ms=0, dedup_window_ms=45 * DAY)
    run = run_offline(s.sorted(), eng)
    alerts = [r for t, _, r in run.outputs if t == "alerts" and r["kind"] == "fraud_suspected"]
    lowers = [r for t, _, r in run.outputs if t == "limit-changes" and r["action"] == "lower"]
    return alerts, lowers


def _policy(**alerts: float) -> Policy:
    base = load_policy(Settings().policy_path)
    return dataclasses.replace(base, alerts={**base.alerts, **alerts})


def test_three_new_merchants_in_a_day_flag_and_lower_the_limit() -> None:
    s = Stream()
    _history(s)
    for i, amount in enumerate(("200.00", "200.00", "200.00")):  # 600.00 = 12 % of the limit, 3 new merchants
        s.purchase("u", T0 + 31 * DAY + i * HOUR, amount, merchant=f"new{i}")
    alerts, lowers = _run(s, _policy())
    assert len(alerts) == 1 and alerts[0]["details"]["new_merchants_24h"] == 3
    assert alerts[0]["ts"] == orjson.loads(s.msgs[-1][1])["ts"]  # on the third purchase, not before
    assert len(lowers) == 1


def test_familiar_merchants_do_not_count_however_much_is_spent() -> None:
    s = Stream()
    _history(s)
    for i in range(3):
        s.purchase("u", T0 + 31 * DAY + i * HOUR, "900.00", merchant="m1")
    assert _run(s, _policy(fraud_anomaly=1.01)) == ([], [])  # anomaly path off: only the burst rules


def test_fast_burst_two_new_merchants_over_half_the_limit() -> None:
    s = Stream()
    _history(s)
    s.purchase("u", T0 + 31 * DAY, "1300.00", merchant="newA")
    s.purchase("u", T0 + 31 * DAY + HOUR, "1300.00", merchant="newB")  # 2,600.00 = 52 % of the limit
    quiet = {"fraud_anomaly": 1.01}
    # Fires when the anomaly condition is met (0 here, to test the spend and merchant conditions alone) ...
    alerts, _ = _run(s, _policy(**quiet, fraud_fast_min_anomaly=0.0))
    assert len(alerts) == 1 and alerts[0]["details"]["new_merchants_24h"] == 2
    # ... not below half the limit, nor with one new merchant, nor when the pattern is not unusual.
    assert _run(s, _policy(**quiet, fraud_fast_min_anomaly=0.0, fraud_fast_min_burst_to_limit=0.6))[0] == []
    assert _run(s, _policy(**quiet, fraud_fast_min_anomaly=0.0, fraud_fast_new_merchants_24h=3))[0] == []
    assert _run(s, _policy(**quiet, fraud_fast_min_anomaly=1.01))[0] == []
