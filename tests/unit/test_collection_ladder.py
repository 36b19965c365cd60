"""The DPD ladder in event time, driven through the broker-free engine."""

from __future__ import annotations

from collections import defaultdict

import pytest

from riskmon.config import Settings
from riskmon.engine import Engine
from riskmon.eventtime import parse_ts
from riskmon.offline import run_offline
from riskmon.policy import load_policy
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-01T02:00:00Z")  # 10:00 in Shanghai, outside quiet hours
HOUR = 3_600_000


def _engine() -> Engine:
    return Engine(load_policy(Settings().policy_path), lateness_ms=6 * HOUR, dedup_window_ms=45 * DAY)


def _by_user(outputs):
    res = defaultdict(list)
    for topic, key, rec in outputs:
        res[(topic, key)].append(rec)
    return res


@pytest.fixture(scope="module")
def ladder_run():
    s = Stream()
    s.account("never", T0)
    s.account("dpd10", T0)
    s.purchase("never", T0 + HOUR, "1000.00")
    s.purchase("dpd10", T0 + HOUR, "1000.00")
    s.repay("dpd10", T0 + HOUR + 30 * DAY + 10 * DAY + 2 * HOUR, "1000.00")
    s.background(T0, 125)
    return run_offline(s.sorted(), _engine())


def test_never_payer_gets_every_step_on_its_day(ladder_run) -> None:
    outs = _by_user(ladder_run.outputs)
    due = T0 + HOUR + 30 * DAY
    alerts = [(a["kind"], a["details"]["dpd"], parse_ts(a["ts"])) for a in outs[("alerts", "never")]
              if a["kind"] not in ("high_risk_purchase", "fraud_suspected", "over_limit")]
    expected = [("repayment_reminder", 0, due - 3 * DAY)] + [
        (kind, d, due + d * DAY) for kind, d in [("overdue_reminder", 1), ("overdue_sms", 3), ("collector_queue", 7),
                                                  ("collector_page", 15), ("delinquency_m1", 30),
                                                  ("delinquency_m2", 60), ("delinquency_m3", 90),
                                                  ("bureau_report", 90)]]
    assert alerts == expected
    reports = outs[("bureau-reports", "never")]
    assert len(reports) == 1 and reports[0]["dpd"] == 90 and reports[0]["outstanding"] == "1000.00"
    freezes = [c for c in outs[("limit-changes", "never")] if c["action"] == "freeze"]
    assert len(freezes) == 1 and parse_ts(freezes[0]["ts"]) == due + 30 * DAY
    assert ladder_run.states["never"].frozen


def test_payer_at_dpd10_is_cured_without_a_page(ladder_run) -> None:
    kinds = [a["kind"] for a in _by_user(ladder_run.outputs)[("alerts", "dpd10")]]
    assert "collector_page" not in kinds
    assert kinds.count("cured") == 1
    assert kinds[: kinds.index("cured")][-3:] == ["overdue_reminder", "overdue_sms", "collector_queue"]
    st = ladder_run.states["dpd10"]
    assert st.episode is None and not st.frozen and st.ledger.outstanding == 0


def test_cure_resolves_the_pages_of_its_episode() -> None:
    s = Stream()
    s.account("u", T0)
    s.purchase("u", T0 + HOUR, "900.00", installments=3)
    s.repay("u", T0 + HOUR + 30 * DAY + 20 * DAY, "300.00")  # pays the overdue installment at DPD 20
    s.background(T0, 60)
    run = run_offline(s.sorted(), _engine())
    alerts = _by_user(run.outputs)[("alerts", "u")]
    cured = [a for a in alerts if a["kind"] == "cured"]
    page = [a for a in alerts if a["kind"] == "collector_page"]
    assert len(cured) == 1 and len(page) == 1
    assert page[0]["dedup_key"] in cured[0]["details"]["resolves"]


def test_partial_payment_moves_dpd_to_the_next_oldest_installment() -> None:
    s = Stream()
    s.account("u", T0)
    s.purchase("u", T0 + HOUR, "300.00", installments=3)  # 100 due at +30d, +60d, +90d
    s.background(T0, 100)
    s.repay("u", T0 + HOUR + 70 * DAY, "100.00")  # pays installment 1 at DPD 40; installment 2 is DPD 10
    run = run_offline(s.sorted(), _engine())
    alerts = [a for a in _by_user(run.outputs)[("alerts", "u")] if a["kind"] not in ("repayment_reminder",)]
    kinds = [a["kind"] for a in alerts]
    # one episode: the steps already fired do not repeat; m2 (60) fires 60 days after installment 2's due
    assert kinds.count("collector_page") == 1 and kinds.count("delinquency_m1") == 1
    assert "cured" not in kinds
    m2 = [a for a in alerts if a["kind"] == "delinquency_m2"]
    assert not m2  # installment 2 due at +60d reaches DPD 60 at +120d, beyond the 100 days of traffic


def test_customer_contacts_defer_out_of_quiet_hours() -> None:
    s = Stream()
    night = parse_ts("2026-03-01T15:00:00Z")  # 23:00 in Shanghai
    s.account("u", night)
    s.purchase("u", night, "100.00")
    s.background(night, 40)
    run = run_offline(s.sorted(), _engine())
    reminder = next(a for a in _by_user(run.outputs)[("alerts", "u")] if a["kind"] == "repayment_reminder")
    assert reminder["ts"].endswith("T00:00:00Z")  # 08:00 Shanghai
    assert parse_ts(reminder["details"]["scheduled_ts"]) == night + 27 * DAY


def test_duplicated_events_change_nothing() -> None:
    s = Stream()
    s.account("u", T0)
    s.purchase("u", T0 + HOUR, "1000.00", installments=3)
    s.repay("u", T0 + 2 * HOUR, "100.00")
    once = run_offline(s.sorted(), _engine())
    twice = run_offline(s.sorted() + s.sorted(), _engine())
    assert twice.duplicates == 3 and twice.applied == once.applied == 3
    assert twice.states["u"].ledger.outstanding == once.states["u"].ledger.outstanding == 90_000
