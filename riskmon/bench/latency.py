"""Stage (e): event -> decision latency at a fixed offered rate.

The bench produces purchases (and the other input traffic, in simulator order) at ``rate`` messages/s,
remembering the wall time of each purchase's send; a consumer on ``decisions`` matches each decision to
its purchase by ``event_id`` and takes the time it was consumed. Latency therefore includes the
producer's linger, the broker (twice), the worker's batching window, processing and the output flush.
The first ``warmup_s`` seconds are left out (group join, model restore, first Redis reads).

Why librdkafka (confluent-kafka) here and not aiokafka: the harness shares the machine's cores with what
it measures. Paced at 5k/s, aiokafka's producer cost ~100 µs of CPU per message (half a core, as much as
the broker) and the stage measured the bench's own load as much as the pipeline's; librdkafka's costs
a fraction of it (docs/performance.md, session 10). Pacing is by ticks: every ``tick_s`` what is due is
sent in one go, and each purchase's clock starts just before its own ``produce``, so a tick never
flatters a measurement; it only sets how bursty the offered rate is within ``tick_s``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from riskmon import outputs as out
from riskmon.bench.dataset import Line
from riskmon.bench.drain import consumers_cpu, cpu_snapshot


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank (0.0 for no values)."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


class _Decisions(threading.Thread):
    """Reads ``decisions`` from the beginning and times each one against its purchase's send.

    A thread of its own: librdkafka waits for records without the GIL, so the producer's pacing in the
    main thread is not held up by it."""

    def __init__(self, bootstrap: str, topic: str, sent_at: dict[str, float], warm_ids: set[str]) -> None:
        super().__init__(name="bench-decisions", daemon=True)
        # fetch.min.bytes stays 1, so the broker answers a fetch as soon as a decision is there; the wait
        # only bounds an empty poll. At 5 ms the empty polls alone cost the broker ~0.13 core (measured)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-latency-{os.getpid()}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
        meta = self.consumer.list_topics(topic, timeout=30).topics[topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)])
        self.sent_at, self.warm_ids = sent_at, warm_ids
        self.lat_ms: list[float] = []
        self.last_decision = time.perf_counter()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                msgs = self.consumer.consume(num_messages=5000, timeout=0.02)
                now = time.perf_counter()
                for msg in msgs:
                    if msg.error() is not None:
                        continue  # end-of-partition notices and transient errors: librdkafka retries
                    eid = orjson.loads(msg.value()).get("event_id")
                    t = self.sent_at.pop(eid, None)
                    if t is not None and eid not in self.warm_ids:
                        self.lat_ms.append((now - t) * 1000)
                    self.last_decision = now
        except BaseException as exc:  # noqa: BLE001 - reported by the producer side (measure)
            self.error = exc
        finally:
            self.consumer.close()


def measure_latency(lines: Sequence[Line], bootstrap: str, prefix: str, *, rate: float, warmup_s: float = 5.0,
                    settle_s: float = 15.0, progress: Callable[[int], None] | None = None,
                    pids: dict[str, int] | None = None, tick_s: float = 0.005,
                    consumed: Callable[[], int] | None = None) -> dict[str, Any]:
    """Produce ``lines`` paced at ``rate``/s to ``prefix`` topics and measure purchase -> decision latency.

    A worker consuming ``prefix`` topics must already be running and have joined its group. ``pids``
    (name -> pid; this process is added as ``bench``) are the processes whose CPU over the offered
    window is reported: a p99 over target with the cores saturated is the machine's bound, one with
    idle cores is the pipeline's. ``tick_s``: pacing granularity (see the module docstring).
    ``consumed()`` (the workers' committed input messages) turns their CPU into CPU per message.
    """
    pids = {**(pids or {}), "bench": os.getpid()}
    sent_at: dict[str, float] = {}
    warm_ids: set[str] = set()
    decisions = _Decisions(bootstrap, prefix + out.TOPIC_DECISIONS, sent_at, warm_ids)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all",
                         "message.max.bytes": 2 * 1024 * 1024})
    decisions.start()
    try:
        t0 = time.perf_counter()
        cpu0 = cpu_snapshot(pids)
        done0 = consumed() if consumed else 0
        i, n = 0, len(lines)
        while i < n:
            due_until = min(n, int((time.perf_counter() - t0) * rate) + 1)
            while i < due_until:
                line = lines[i]
                if line.purchase_id is not None:
                    sent = time.perf_counter()  # before produce: the decision cannot overtake it
                    sent_at.setdefault(line.purchase_id, sent)
                    if sent - t0 < warmup_s:
                        warm_ids.add(line.purchase_id)
                try:
                    producer.produce(prefix + line.topic, line.value, key=line.key)
                except BufferError:  # librdkafka's queue is full: let it deliver, then this line again
                    producer.poll(0.01)
                    continue
                i += 1
                if progress and i % 1000 == 0:
                    progress(1000)
            producer.poll(0)  # delivery reports (none registered) and errors
            if decisions.error is not None:
                raise decisions.error
            if i < n:
                time.sleep(max(tick_s, t0 + i / rate - time.perf_counter()))
        if producer.flush(60):
            raise RuntimeError("the latency producer could not deliver everything within 60 s")
        if progress and n % 1000:
            progress(n % 1000)
        offered_s = time.perf_counter() - t0
        cpu1 = cpu_snapshot(pids)
        done1 = consumed() if consumed else 0
        # Decisions trail the last send: wait until every measured purchase is answered, or none arrived
        # for ``settle_s`` (a purchase the pipeline never answers is reported, not waited for forever).
        while (set(sent_at) - warm_ids) and time.perf_counter() - max(decisions.last_decision, t0 + offered_s) < settle_s:
            time.sleep(0.1)
            if decisions.error is not None:
                raise decisions.error
    finally:
        decisions.stop.set()
        decisions.join(10)
    lat_ms = decisions.lat_ms
    cpu_s = {k: round(cpu1[k] - cpu0[k], 2) for k in pids}
    worker_cpu = consumers_cpu(cpu_s)
    return {
        "offered_rate": rate,
        "achieved_rate": round(len(lines) / offered_s, 1),
        "seconds": round(offered_s, 1),
        "warmup_s": warmup_s,
        "tick_ms": tick_s * 1000,
        "decisions_measured": len(lat_ms),
        "purchases_unanswered": len(set(sent_at) - warm_ids),
        "p50_ms": round(percentile(lat_ms, 0.50), 1),
        "p99_ms": round(percentile(lat_ms, 0.99), 1),
        "max_ms": round(max(lat_ms, default=0.0), 1),
        "cpu_s": cpu_s,
        "cpu_share_of_machine": round(sum(cpu_s.values()) / (offered_s * (os.cpu_count() or 1)), 2),
        # what the workers got through while the rate was offered (committed; below the offered count
        # when they fell behind), and their CPU per message, to set beside (c)'s
        "worker_msgs_while_offered": done1 - done0 if consumed else None,
        "worker_us_per_msg": round(worker_cpu / (done1 - done0) * 1e6, 1) if consumed and done1 > done0 else None,
    }


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
