"""simulator.enterprises: valid, deterministic business-metric traffic with consistent truth."""

from __future__ import annotations

from collections import Counter

import orjson

from riskmon.contract import TOPIC_METRICS, BusinessMetric, decode
from riskmon.eventtime import MS_PER_DAY, parse_ts
from simulator.enterprises import generate

START = parse_ts("2026-01-01T00:00:00Z")


def test_events_are_valid_sorted_and_deterministic() -> None:
    events, truth = generate(5, 20, START, 120)
    again, truth2 = generate(5, 20, START, 120)
    assert events == again and truth == truth2
    assert generate(6, 20, START, 120)[0] != events
    assert [ts for ts, _ in events] == sorted(ts for ts, _ in events)
    ids = set()
    for ts, msg in events:
        ev = decode(TOPIC_METRICS, orjson.dumps(msg))
        assert isinstance(ev, BusinessMetric), ev
        assert ev.ts == ts
        ids.add(ev.event_id)
    assert len(ids) == len(events)


def test_one_metric_per_day_until_default_and_truth_consistent() -> None:
    events, truth = generate(7, 100, START, 180)
    mix = Counter(t["scenario"] for t in truth)
    assert mix == {"healthy": 40, "seasonal": 20, "decline_default": 15, "shock_default": 10,
                   "liquidity_crunch": 15}
    per_ent: dict[str, Counter] = {}
    last_ts: dict[str, int] = {}
    for ts, msg in events:
        per_ent.setdefault(msg["enterprise_id"], Counter())[msg["metric"]] += 1
        last_ts[msg["enterprise_id"]] = ts
    for t in truth:
        ent = t["enterprise_id"]
        counts = per_ent[ent]
        assert len(set(counts.values())) == 1 and len(counts) == 5  # every metric every day
        if t["scenario"] in ("decline_default", "shock_default"):
            d = parse_ts(t["default_ts"])
            assert last_ts[ent] < d  # a defaulted enterprise stops reporting
            assert counts["revenue"] == (d - START) // MS_PER_DAY
            assert parse_ts(t["distress_onset_ts"]) < d
        else:
            assert t["default_ts"] is None and counts["revenue"] == 180
        if t["scenario"] == "liquidity_crunch":
            assert parse_ts(t["crunch_start_ts"]) < parse_ts(t["crunch_end_ts"])
        else:
            assert t["crunch_start_ts"] is None


def test_scenario_shapes() -> None:
    events, truth = generate(3, 100, START, 180)
    series: dict[tuple[str, str], list[float]] = {}
    for _, msg in events:
        series.setdefault((msg["enterprise_id"], msg["metric"]), []).append(msg["value"])
    for t in truth:
        ent = t["enterprise_id"]
        rev, cash = series[(ent, "revenue")], series[(ent, "cash_balance")]
        first, last = sum(rev[:28]) / 28, sum(rev[-14:]) / 14
        if t["scenario"] in ("decline_default", "shock_default"):
            assert last < 0.75 * first and cash[-1] < 0.25 * max(cash[:28])
        if t["scenario"] == "liquidity_crunch":
            assert 0.8 < last / first < 1.25
            assert min(cash) < 0.5 * cash[0] and cash[-1] > 0.7 * cash[0]
        if t["scenario"] == "seasonal":
            assert max(rev[:28]) / min(rev[:28]) > 1.6  # strong cycle


def test_small_runs_have_no_default_beyond_horizon() -> None:
    _, truth = generate(1, 5, START, 30)
    for t in truth:
        assert t["default_ts"] is None and t["crunch_start_ts"] is None
