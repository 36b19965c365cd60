"""Stage (e): event -> decision latency at a fixed offered rate.

The bench produces purchases (and the other input traffic, in simulator order) at ``rate`` messages/s,
remembering the wall time of each purchase's ``send``; a consumer on ``decisions`` matches each decision
to its purchase by ``event_id`` and takes the time it was consumed. Latency therefore includes the
producer's linger, the broker (twice), the worker's batching window, processing and the output flush.
The first ``warmup_s`` seconds are left out (group join, model restore, first Redis reads).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from riskmon import outputs as out
from riskmon.bench.dataset import Line


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank (0.0 for no values)."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


async def _run(lines: Sequence[Line], bootstrap: str, prefix: str, rate: float, warmup_s: float,
               settle_s: float, progress: Callable[[int], None] | None) -> dict[str, float]:
    sent_at: dict[str, float] = {}
    lat_ms: list[float] = []
    warm_ids: set[str] = set()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=5)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks="all",
                                max_request_size=2 * 1024 * 1024)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    last_decision = [time.perf_counter()]

    async def consume() -> None:
        topic = prefix + out.TOPIC_DECISIONS
        await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata of an unsubscribed topic
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=20, max_records=5000)
            now = time.perf_counter()
            for records in batches.values():
                for rec in records:
                    eid = orjson.loads(rec.value).get("event_id")
                    t = sent_at.pop(eid, None)
                    if t is not None and eid not in warm_ids:
                        lat_ms.append((now - t) * 1000)
                    last_decision[0] = now

    task = asyncio.create_task(consume())
    try:
        t0 = time.perf_counter()
        for i, line in enumerate(lines):
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await producer.send(prefix + line.topic, line.value, key=line.key)
            if line.purchase_id is not None:
                sent_at.setdefault(line.purchase_id, time.perf_counter())
                if time.perf_counter() - t0 < warmup_s:
                    warm_ids.add(line.purchase_id)
            if progress and i % 1000 == 999:
                progress(1000)
        await producer.flush()
        if progress and len(lines) % 1000:
            progress(len(lines) % 1000)
        offered_s = time.perf_counter() - t0
        # Decisions trail the last send: wait until every measured purchase is answered, or none arrived
        # for ``settle_s`` (a purchase the pipeline never answers is reported, not waited for forever).
        while (set(sent_at) - warm_ids) and time.perf_counter() - max(last_decision[0], t0 + offered_s) < settle_s:
            await asyncio.sleep(0.1)
            if task.done():
                task.result()
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    return {
        "offered_rate": rate,
        "achieved_rate": round(len(lines) / offered_s, 1),
        "seconds": round(offered_s, 1),
        "warmup_s": warmup_s,
        "decisions_measured": len(lat_ms),
        "purchases_unanswered": len(set(sent_at) - warm_ids),
        "p50_ms": round(percentile(lat_ms, 0.50), 1),
        "p99_ms": round(percentile(lat_ms, 0.99), 1),
        "max_ms": round(max(lat_ms, default=0.0), 1),
    }


def measure_latency(lines: Sequence[Line], bootstrap: str, prefix: str, *, rate: float, warmup_s: float = 5.0,
                    settle_s: float = 15.0, progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """Produce ``lines`` paced at ``rate``/s to ``prefix`` topics and measure purchase -> decision latency.

    A worker consuming ``prefix`` topics must already be running and have joined its group."""
    return asyncio.run(_run(lines, bootstrap, prefix, rate, warmup_s, settle_s, progress))


def summarise_worker_trace(docs: list[bytes], warmup_s: float) -> dict[str, Any]:
    """p50 / p99 in ms of each segment the worker traced (``streams.latency_trace``; samples of its first
    ``warmup_s`` seconds left out) and its full GC pauses, from the ``rm:trace:latency`` documents."""
    samples: list[list[float]] = []
    pauses: list[list[float]] = []
    batches: list[list[float]] = []
    for raw in docs:
        d = orjson.loads(raw)
        samples += d["s"]
        pauses += d["gc"]
        batches += d.get("b", [])
    if not samples:
        return {"samples": 0}
    t0 = min(s[0] for s in samples) + warmup_s
    kept = [s for s in samples if s[0] >= t0] or samples
    out: dict[str, Any] = {"samples": len(kept)}
    for i, name in ((1, "in"), (2, "wait"), (3, "apply")):
        vals = [s[i] * 1000 for s in kept]
        out[f"{name}_p50_ms"] = round(percentile(vals, 0.5), 1)
        out[f"{name}_p99_ms"] = round(percentile(vals, 0.99), 1)
    live = [b for b in batches if b[0] >= t0] or batches
    if live:  # per applied batch: size, and the seconds of each stage of ``apply``
        out["batches"] = len(live)
        for i, name in ((1, "events"), (2, "users"), (3, "users_from_redis")):
            out[f"batch_{name}_p50"] = percentile([b[i] for b in live], 0.5)
        for i, name in ((4, "load"), (5, "engine"), (6, "publish"), (7, "commit")):
            vals = [b[i] * 1000 for b in live]
            out[f"batch_{name}_p50_ms"] = round(percentile(vals, 0.5), 2)
            out[f"batch_{name}_p99_ms"] = round(percentile(vals, 0.99), 2)
        held = [b[8] for b in live if len(b) > 8]
        out["takes_held_to_fill"] = (max(held) - min(held)) if held else 0  # during the measured window
        # the state read's Redis round trip alone, over the batches that read from Redis at all
        fetched = [b[9] * 1000 for b in live if len(b) > 9 and b[3] > 0]
        out["batches_with_redis_read"] = len(fetched)
        if fetched:
            out["batch_redis_round_trip_p50_ms"] = round(percentile(fetched, 0.5), 2)
            out["batch_redis_round_trip_p99_ms"] = round(percentile(fetched, 0.99), 2)
    late = [ms for t, ms in pauses if t >= t0]  # not the deliberate collection at start (gc_pauses.py)
    out["gc2_pauses"] = len(late)
    out["gc2_max_ms"] = round(max(late, default=0.0), 1)
    return out
