"""The issue's targets, checked against one report (ratios always from the same run)."""

from __future__ import annotations

from typing import Any

TARGET_C_OVER_B = 2.5
TARGET_C_EVENTS_PER_S = 25_000.0
TARGET_P99_MS = 50.0
TARGET_D_OVER_C = 1.5
TARGET_REDIS_READ_P99_MS = 2.0
TARGET_WORKER_RSS_MB = 1024.0


def evaluate_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{name: {target, value, met[, floor]}}; ``met`` is None when the stage did not run; ``floor`` is stage
    (e0)'s value for the two latency targets, when it ran."""
    stages = report.get("stages", {})
    ratios = report.get("ratios", {})
    lat = report.get("latency")
    rt = report.get("redis_round_trips")
    # the memory stage (g) is the one at 100k users; without it, the worst worker of (c) and (d)
    mem = report.get("memory")
    rss_stages = [mem] if mem else [stages.get(k, {}) for k in ("c_pipeline_1", "d_pipeline_2")]
    rss = [v.get("peak_rss_mb", 0.0) for st in rss_stages for v in st.get("rss", {}).values()]

    # The feature read of each batch the worker applied during the latency stage (cache + one Redis round
    # trip for the users not cached + decoding): what "per batch" means in production. Stage (f)'s
    # 500-cold-user reads are a stress case, reported beside it.
    live_read = ((lat or {}).get("worker_breakdown") or {}).get("batch_load_p99_ms")
    if live_read is None and rt:
        live_read = rt.get("load_p99_ms")

    # Stage (e0): the same harness with workers that do only the plumbing (riskmon.bench.floor_app). Its
    # value beside a latency target is what this machine and the libraries give with no riskmon work at all
    floor = report.get("latency_floor")
    floor_read = ((floor or {}).get("worker_breakdown") or {}).get("batch_load_p99_ms")

    def check(value: float | None, target: float, higher_is_better: bool,
              floor_value: float | None = None) -> dict[str, Any]:
        met = None if value is None else (value >= target if higher_is_better else value < target)
        res = {"target": (">= " if higher_is_better else "< ") + f"{target:g}", "value": value, "met": met}
        if floor_value is not None:
            res["floor"] = floor_value
        return res

    return {
        "c >= 2.5 x b": check(ratios.get("c_over_b"), TARGET_C_OVER_B, True),
        "c >= 25k events/s": check(stages.get("c_pipeline_1", {}).get("events_per_s"), TARGET_C_EVENTS_PER_S, True),
        "p99 event->decision < 50 ms": check(lat.get("p99_ms") if lat else None, TARGET_P99_MS, False,
                                             floor.get("p99_ms") if floor else None),
        # over the same events: (d)'s window opens later in the stream, where events cost more (drain.py)
        "d >= 1.5 x c (same events)": check(ratios.get("d_over_c_same_events") or ratios.get("d_over_c"),
                                            TARGET_D_OVER_C, True),
        "redis read p99 < 2 ms (per live batch)": check(live_read, TARGET_REDIS_READ_P99_MS, False, floor_read),
        ("worker peak RSS < 1 GB at " + (f"{mem['users']:,} users" if mem else "(c), (d)")):
            check(max(rss) if rss else None, TARGET_WORKER_RSS_MB, False),
    }
