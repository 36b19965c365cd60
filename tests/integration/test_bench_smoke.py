"""Smoke test of the bench machinery on tiny sizes: every stage runs on real Kafka + redis-server and
consumes every input message; the report has the documented structure. No timing assertions (the
numbers are for `riskmon bench` on a quiet machine, not for a shared test runner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskmon import accel
from riskmon.bench import BenchConfig, render, run_bench

pytestmark = pytest.mark.integration


def test_bench_runs_every_stage_on_all_events(kafka_stack, settings) -> None:
    cfg = BenchConfig(events=1500, users=300, enterprises=10, partitions=2, latency_rate=150, latency_seconds=4,
                      latency_warmup_s=0.0, latency_workers=2, memory_users=200, redis_batch=50, redis_rounds=5)
    seen: set[str] = set()
    report = run_bench(cfg, settings(broker="none", redis=False, clickhouse=False),
                       progress=lambda stage, done, total: seen.add(stage), say=lambda _: None,
                       broker=kafka_stack.broker_url)

    assert report["data"]["events"] == 1500
    assert sum(report["data"]["by_topic"].values()) == 1500
    stages = report["stages"]
    compiled = accel.status().active  # then (c') runs a compiled and a pure-Python worker side by side
    assert report["code"] == {"accel": accel.status().describe(), "compiled": compiled}
    pair = {"c_pair_compiled", "c_pair_pure"} if compiled else set()
    assert set(stages) == {"a_raw", "b_naive", "c_pipeline_1", "d_pipeline_2"} | pair
    assert stages["a_raw"]["events"] == 1500
    # every input message decodes except the simulator's deliberately broken ones
    assert 0 < stages["a_raw"]["decoded"] <= 1500
    for key in ("b_naive", "c_pipeline_1", "d_pipeline_2", *sorted(pair)):
        assert stages[key]["events"] == 1500, key  # the group committed every input offset
        # CPU is sampled in 10 ms steps: over a window of a few hundred ms it may round to 0
        assert stages[key]["events_per_s"] > 0 and stages[key]["worker_us_per_msg"] >= 0
    for key, n in (("c_pipeline_1", 1), ("d_pipeline_2", 2)):
        st = stages[key]
        assert len(st["rss"]) == n and all(v["peak_rss_mb"] > 0 for v in st["rss"].values())
        assert st["redis"]["users"] > 0
        counters = st["pipeline_counters"]
        # the pipeline itself accounted for the user-topic messages (valid, duplicate or dead-lettered)
        assert counters["events_valid"] + counters.get("duplicates", 0) > 0
    rt = report["redis_round_trips"]
    assert rt["batch"] == 50 and rt["rounds"] == 5 and rt["load_p99_ms"] >= rt["load_p50_ms"] > 0
    assert rt["fetch_p99_ms"] >= rt["fetch_p50_ms"] > 0 and rt["fetch_small_batch"] == 50
    # the layout-1 read of the same users ran beside it
    assert rt["fetch_small_layout_1_p99_ms"] >= rt["fetch_small_layout_1_p50_ms"] > 0
    assert rt["layout_1_over_2_p50"] > 0
    lat = report["latency"]
    assert lat["decisions_measured"] > 0 and lat["max_ms"] >= lat["p99_ms"] >= lat["p50_ms"] > 0
    # every paced purchase got its decision: from two workers in one group, one partition each
    assert lat["workers"] == 2 and lat["purchases_unanswered"] == 0
    # the CPU split over the offered window names both workers, Redis and the bench itself (the broker
    # too when the bench started it; here it is the session's); CPU is counted in clock ticks
    assert set(lat["cpu_s"]) == {"worker-latency-0", "worker-latency-1", "redis", "bench", "producer"}
    assert lat["cpu_s"]["bench"] > 0 and lat["cpu_share_of_machine"] > 0
    assert 120 <= lat["achieved_rate"] <= 151  # ticks send what is due: never ahead of the offered rate
    # the workers committed part of the 600 paced messages while they were offered (Faust commits every
    # second), and never more than were produced: the live count is not clamped to a stale end offset
    assert 0 < lat["worker_msgs_while_offered"] <= 600 and lat["worker_us_per_msg"] > 0
    wb = lat["worker_breakdown"]  # the worker traced where each purchase's time went
    assert 0 < wb["samples"] <= lat["decisions_measured"] + 200
    assert wb["in_p99_ms"] >= wb["in_p50_ms"] > 0 and wb["apply_p99_ms"] >= wb["apply_p50_ms"] > 0
    # ... and timed every applied batch: the state read (the "per live batch" Redis target), engine,
    # publish, commit
    assert wb["batches"] > 0 and wb["batch_events_p50"] >= 1 and wb["batch_users_p50"] >= 1
    for stage in ("load", "engine", "publish", "commit"):
        assert wb[f"batch_{stage}_p99_ms"] >= wb[f"batch_{stage}_p50_ms"] >= 0, stage
    assert wb["batch_publish_p50_ms"] > 0 and wb["batch_commit_p50_ms"] > 0  # real round trips
    assert report["targets"]["redis read p99 < 2 ms (per live batch)"]["value"] == wb["batch_load_p99_ms"]
    # the state read's Redis round trip alone, over the batches that read from Redis (new users do)
    assert 0 < wb["batches_with_redis_read"] <= wb["batches"]
    assert wb["batch_redis_round_trip_p99_ms"] >= wb["batch_redis_round_trip_p50_ms"] > 0
    floor = report["latency_floor"]  # (e0): the same harness, workers with the plumbing only
    assert floor["workers"] == 2 and floor["purchases_unanswered"] == 0  # the floor answered every purchase too
    assert floor["decisions_measured"] > 0 and floor["max_ms"] >= floor["p99_ms"] >= floor["p50_ms"] > 0
    assert set(floor["cpu_s"]) == {"worker-latency-e0-0", "worker-latency-e0-1", "redis", "bench", "producer"}
    fb = floor["worker_breakdown"]  # it traced its batches as the real worker does: a read and a publish each
    assert fb["batches"] > 0 and fb["batch_load_p50_ms"] > 0 and fb["batch_publish_p50_ms"] > 0
    assert fb["batch_engine_p99_ms"] == 0  # no riskmon work
    assert report["targets"]["p99 event->decision < 50 ms"]["floor"] == floor["p99_ms"]
    assert report["targets"]["redis read p99 < 2 ms (per live batch)"]["floor"] == fb["batch_load_p99_ms"]
    mem = report["memory"]  # (g): one worker owning memory_users users, 4 events each
    assert mem["users"] == 200 and mem["events"] == 800 and 0 < mem["users_with_state"] <= 200
    assert mem["worker_us_per_msg"] > 0 and mem["redis_mb_per_1k_users"] > 0
    rss = report["targets"]["worker peak RSS < 1 GB at 200 users"]
    assert rss["value"] == max(v["peak_rss_mb"] for v in mem["rss"].values()) > 0
    assert set(report["ratios"]) == {"c_over_b", "c_over_a", "d_over_c", "pure_cpu_over_compiled_cpu",
                                     "d_over_c_same_events"}
    if compiled:  # each pair worker ran its own code, on its own Redis database, and both finished
        logs = {name: (Path(report["log_dir"]) / f"worker{name}-0.log").read_text() for name in ("compiled", "pure")}
        assert "riskmon worker: compiled (" in logs["compiled"], logs["compiled"][-500:]
        assert "riskmon worker: pure Python (RISKMON_ACCEL=0)" in logs["pure"], logs["pure"][-500:]
        counted = [{k: v for k, v in stages[f"c_pair_{name}"]["pipeline_counters"].items() if k != "batches"}
                   for name in ("compiled", "pure")]  # batch counts depend on timing; what was counted does not
        assert counted[0] == counted[1] and counted[0]["events_valid"] > 0
    else:
        assert report["ratios"]["pure_cpu_over_compiled_cpu"] is None
    assert all(t["met"] in (True, False) for t in report["targets"].values())
    assert {"produce (a,b)", "(a) raw", "(e0) floor", "(e) latency"} <= seen
    render(report)  # the table renders from the report alone
