"""Issue 4's acceptance scenario through the real pipeline: Apache Kafka, a real worker, real Redis."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from riskmon.eventtime import parse_ts
from riskmon.replay import replay
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-01T02:00:00Z")
HOUR = 3_600_000


def _write(stream: Stream, path: Path, extra: list[dict] | None = None) -> None:
    with path.open("wb") as fh:
        for topic, raw in stream.sorted():
            v = orjson.loads(raw)
            fh.write(orjson.dumps({"topic": topic, "key": v.get("user_id"), "value": v}) + b"\n")
        for line in extra or []:
            fh.write(orjson.dumps(line) + b"\n")


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ladder_replay(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    tmp = tmp_path_factory.mktemp("ladder")
    s = Stream()
    s.account("never", T0)
    s.account("dpd10", T0)
    s.purchase("never", T0 + HOUR, "1000.00")
    s.purchase("dpd10", T0 + HOUR, "1000.00")
    s.repay("dpd10", T0 + HOUR + 40 * DAY + 2 * HOUR, "1000.00")
    s.background(T0, 125, every_hours=2, users=20)
    dup = orjson.loads(s.msgs[2][1])  # the never-payer's purchase, delivered twice
    bad = [{"topic": "purchases", "raw": "{not json"},
           {"topic": "repayments", "value": {"event_id": "r-neg", "ts": "2026-03-02T00:00:00Z",
                                              "user_id": "dpd10", "amount": "-5.00", "method": "card"}},
           {"topic": "purchases", "key": "never", "value": dup}]
    src = tmp / "in.jsonl"
    _write(s, src, bad)
    from tests.conftest import _settings  # noqa: PLC0415 - the shared factory, without a function scope

    settings = _settings(tmp, broker_url="kafka://" + request.getfixturevalue("kafka_bootstrap"),
                         redis_url=request.getfixturevalue("redis_url"), partitions=3)
    res = replay(src, tmp / "out", settings, broker=settings.broker_url, reset_state=True, say=lambda m: None)
    return res, len(s.msgs)


def test_ladder_days_bureau_report_and_freeze(ladder_replay) -> None:
    res, _ = ladder_replay
    alerts = _read(res.out_dir / "alerts.jsonl")
    due = T0 + HOUR + 30 * DAY
    never = [(a["kind"], a["details"]["dpd"], parse_ts(a["ts"])) for a in alerts if a["subject_id"] == "never"
             and a["kind"] not in ("high_risk_purchase", "fraud_suspected", "over_limit")]
    expected = [("repayment_reminder", 0, due - 3 * DAY)] + [
        (k, d, due + d * DAY) for k, d in [("overdue_reminder", 1), ("overdue_sms", 3), ("collector_queue", 7),
                                            ("collector_page", 15), ("delinquency_m1", 30), ("delinquency_m2", 60),
                                            ("delinquency_m3", 90), ("bureau_report", 90)]]
    assert sorted(never, key=lambda x: (x[2], x[0])) == sorted(expected, key=lambda x: (x[2], x[0]))
    reports = _read(res.out_dir / "bureau_reports.jsonl")
    assert [(r["user_id"], r["dpd"], r["outstanding"]) for r in reports] == [("never", 90, "1000.00")]
    freezes = [c for c in _read(res.out_dir / "limit_changes.jsonl") if c["action"] == "freeze"]
    assert [(c["user_id"], parse_ts(c["ts"])) for c in freezes] == [("never", due + 30 * DAY)]
    accounts = {a["user_id"]: a for a in _read(res.out_dir / "accounts.jsonl")}
    assert accounts["never"]["frozen"] is True and accounts["never"]["outstanding"] == "1000.00"


def test_payer_at_dpd10_cured_once_without_page(ladder_replay) -> None:
    res, _ = ladder_replay
    kinds = [a["kind"] for a in _read(res.out_dir / "alerts.jsonl") if a["subject_id"] == "dpd10"]
    assert "collector_page" not in kinds and kinds.count("cured") == 1
    accounts = {a["user_id"]: a for a in _read(res.out_dir / "accounts.jsonl")}
    assert accounts["dpd10"]["outstanding"] == "0.00" and accounts["dpd10"]["frozen"] is False


def test_summary_counts_valid_duplicates_and_dead_letters(ladder_replay) -> None:
    res, n_valid = ladder_replay
    s = res.summary
    assert s["events_in"] == n_valid + 3
    assert s["events_valid"] == n_valid
    assert s["duplicates"] == 1
    assert s["dead_letters"] == 2
    reasons = sorted(d["reason"] for d in _read(res.out_dir / "dead_letters.jsonl"))
    assert reasons[0].startswith("amount: ") and reasons[1].startswith("payload: malformed JSON")
