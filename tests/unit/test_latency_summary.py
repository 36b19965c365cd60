"""``riskmon.bench.latency.summarise_worker_trace``: the per-batch figures the bench prints."""

from __future__ import annotations

import orjson

from riskmon.bench.latency import latency_by_window, summarise_worker_trace


def _batch(t: float, cold: int, load_s: float, fetch_s: float | None) -> list[float]:
    row = [t, 100, 90, cold, load_s, 0.010, 0.005, 0.008, 0]
    return row if fetch_s is None else [*row, fetch_s]


def test_the_redis_round_trip_is_summarised_over_batches_that_read_from_redis() -> None:
    batches = [_batch(100.0 + i, 5, 0.004, 0.001 * (i + 1)) for i in range(10)]  # 1..10 ms
    batches += [_batch(120.0 + i, 0, 0.0005, 0.0) for i in range(30)]  # all cached: no round trip (0.5 ms reads)
    doc = orjson.dumps({"s": [[100.0, 0.01, 0.0, 0.02]], "gc": [], "b": batches})
    out = summarise_worker_trace([doc], 0.0)
    assert out["batches"] == 40 and out["batches_with_redis_read"] == 10
    assert out["batch_redis_round_trip_p50_ms"] == 6.0 and out["batch_redis_round_trip_p99_ms"] == 10.0
    assert out["batch_load_p99_ms"] == 4.0  # the whole read, over every batch


def test_traces_from_before_the_round_trip_was_recorded_still_summarise() -> None:
    doc = orjson.dumps({"s": [[100.0, 0.01, 0.0, 0.02]], "gc": [], "b": [_batch(100.0, 5, 0.004, None)]})
    out = summarise_worker_trace([doc], 0.0)
    assert out["batches"] == 1 and out["batches_with_redis_read"] == 0
    assert "batch_redis_round_trip_p99_ms" not in out


def test_latencies_are_also_summarised_per_window_of_sending() -> None:
    # 25 s of sends, one a second: the first 10 s at 5 ms, the next 10 at 50, the last 5 at 500
    samples = [(int(t * 1e9), 5.0 if t < 10 else 50.0 if t < 20 else 500.0) for t in range(25)]
    out = latency_by_window(samples, window_s=10.0)
    assert [(w["from_s"], w["n"], w["p50_ms"], w["p99_ms"]) for w in out] == [
        (0.0, 10, 5.0, 5.0), (10.0, 10, 50.0, 50.0), (20.0, 5, 500.0, 500.0)]
    assert latency_by_window([]) == []
