"""The business-metrics agent on real Apache Kafka and Redis, through `riskmon replay`.

Checks that the streaming path decides like the broker-free EWS core, that every metric event is counted
once, and that enterprises.jsonl holds each enterprise's health.
"""

from __future__ import annotations

import orjson
import pytest

from riskmon.ews.offline import run_offline as run_ews_offline
from riskmon.policy import load_policy
from riskmon.replay import replay
from simulator import SimConfig, write_jsonl

pytestmark = pytest.mark.integration


def test_ews_agent_matches_the_core_and_counts_exactly(tmp_path, request) -> None:  # noqa: ANN001
    from tests.conftest import _settings  # noqa: PLC0415 - the shared factory

    src, truth_path = tmp_path / "in.jsonl", tmp_path / "truth.json"
    write_jsonl(SimConfig(days=75, users=40, enterprises=12, seed=5), src, truth_path)
    truth = orjson.loads(truth_path.read_bytes())
    settings = _settings(tmp_path, broker_url="kafka://" + request.getfixturevalue("kafka_bootstrap"),
                         redis_url=request.getfixturevalue("redis_url"), partitions=3)
    res = replay(src, tmp_path / "out", settings, broker=settings.broker_url, reset_state=True,
                 say=lambda m: None)

    assert res.summary["events_valid"] == truth["counts"]["events_valid"]
    assert res.summary["dead_letters"] == truth["counts"]["bad"]
    enterprises = [orjson.loads(x) for x in (res.out_dir / "enterprises.jsonl").read_bytes().splitlines()]
    assert sorted(e["enterprise_id"] for e in enterprises) == sorted(t["enterprise_id"] for t in truth["enterprises"])
    assert all(e["grade"] in "ABCDE" and 0 <= e["health_score"] <= 100 for e in enterprises)

    metrics = []
    for line in src.read_bytes().splitlines():
        doc = orjson.loads(line)
        if doc["topic"] == "business-metrics" and isinstance(doc.get("value"), dict):
            metrics.append((0, doc["value"]))
    core_alerts, _, _ = run_ews_offline(metrics, load_policy(settings.policy_path).section("ews"))
    streamed = [orjson.loads(x) for x in (res.out_dir / "alerts.jsonl").read_bytes().splitlines()]
    streamed_keys = sorted(a["dedup_key"] for a in streamed if a["subject_type"] == "enterprise")
    assert streamed_keys, "the scenario must raise early warnings"
    assert streamed_keys == sorted(a["dedup_key"] for a in core_alerts)
