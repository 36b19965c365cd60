"""Stage (e0): the latency floor — a worker with riskmon's plumbing and none of its work.

Why it exists: stage (e)'s p99 and per-batch Redis read are measured on two cores that the broker, Redis,
the paced producer and both workers share. Whether a miss is riskmon's cost or the machine's needs a
denominator from the same run, as (a) and (b) are for throughput. This worker is that denominator: it is
started exactly as riskmon's worker is (``streams.app.create_app``: the same consumer class, fetch
settings, event loop, log level, GC freeze and batching window) and reads the same four topics, but per
batch it only does the round trips the architecture cannot avoid:

1. decode every message (``riskmon.contract.decode``, as the runtime does);
2. one Redis ``MGET`` of one key per user of the batch (the state read; the keys are absent, so Redis
   returns nils: the round trip and the wait for the event loop, not the decoding of states);
3. publish one record per purchase to ``decisions`` (carrying the purchase's ``event_id``, which is all
   the harness matches on) and wait for the broker's ack, through ``streams.emit.publish``;
4. one Redis ``MSET`` of a small marker per user (the state commit's round trip).

The keys are under a prefix of the floor's own (``KEY_PREFIX``), never riskmon's account keys: pointed
at a live Redis by mistake, it must not overwrite a state.

No engine, no event-time merge buffer, no timers, no EWS. It records the same latency trace as the
real worker (``streams.latency_trace``; the read is the "state read" and its Redis round trip), so the
bench summarises both the same way. Run as ``python -m riskmon.bench.floor_app`` with the usual
``RISKMON_*`` variables; ``RISKMON_TRACE_LATENCY`` is implied.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import faust
from redis.exceptions import RedisError

from riskmon import outputs as out
from riskmon.config import Settings
from riskmon.contract import TOPIC_METRICS, TOPIC_PURCHASES, Rejected, decode
from riskmon.state.redis_client import connect as redis_connect
from streams.app import create_app, drop_per_message_monitor, keep_root_log_level, use_event_loop
from streams.emit import publish
from streams.gc_pauses import freeze_long_lived_objects
from streams.latency_trace import LatencyTrace
from streams.topics import input_topic, unprefixed, user_topics

MARKER = b"floor"  # what step 4 writes per user: a few bytes, so the write is the round trip and no more
KEY_PREFIX = "rm:bench:floor:"  # its own keys, never riskmon's account states


def build_app(settings: Settings) -> faust.App:
    """The floor worker's app: riskmon's ``create_app`` with two pass-through agents."""
    app = create_app(settings)
    client = redis_connect(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
    trace = LatencyTrace()
    prefix = settings.topic_prefix

    @app.agent(user_topics(app, prefix), name="floor.consumer_credit")
    async def user_events(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await _pass_through(app, client, trace, settings, batch)

    @app.agent(input_topic(app, TOPIC_METRICS, prefix), name="floor.business_metrics")
    async def metrics(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            for event in batch:
                decode(TOPIC_METRICS, event.message.value, settings.max_message_bytes)

    keep_root_log_level(app, "warn")
    drop_per_message_monitor(app)
    return app


async def _pass_through(app: faust.App, client: Any, trace: LatencyTrace, settings: Settings,
                        batch: list[faust.types.EventT]) -> None:
    """Steps 1-4 of the module docstring for one batch of the user topics, timed like the runtime's."""
    prefix = settings.topic_prefix
    arrived = time.time()
    users: set[str] = set()
    purchases: list[tuple[Any, float | None]] = []
    for event in batch:
        msg = event.message
        topic = unprefixed(msg.topic, prefix)
        ev = decode(topic, msg.value, settings.max_message_bytes)
        if isinstance(ev, Rejected):
            continue
        users.add(ev.user_id)
        if topic == TOPIC_PURCHASES:
            purchases.append((ev, msg.timestamp))
    if not users:
        return
    keys = [KEY_PREFIX + u for u in users]
    t0 = time.perf_counter()
    try:
        await client.mget(keys)
        t1 = time.perf_counter()
        await publish(app, [(out.TOPIC_DECISIONS, ev.user_id, {"event_id": ev.event_id, "user_id": ev.user_id,
                                                               "ts": ev.ts, "floor": True})
                            for ev, _ in purchases], prefix)
        t2 = time.perf_counter()
        await client.mset(dict.fromkeys(keys, MARKER))
    except RedisError:
        return  # a floor measurement only: the harness counts a missing decision as not answered
    t3 = time.perf_counter()
    done = time.time()
    for _, created in purchases:
        trace.record(arrived, created, arrived, done)
    trace.record_batch(len(batch), len(users), len(users), (t1 - t0, 0.0, t2 - t1, t3 - t2), 0, t1 - t0)
    if trace.due():
        with contextlib.suppress(RedisError):  # best effort, as in the runtime
            await trace.flush(client)


def main() -> None:
    """Run the floor worker until SIGTERM."""
    settings = Settings()
    if not settings.redis_url:
        raise SystemExit("RISKMON_REDIS_URL is not set")
    use_event_loop(settings.event_loop)
    app = build_app(settings)
    sys.argv = ["riskmon-bench-floor", "worker", "--without-web", "-l", "warn"]
    freeze_long_lived_objects()
    app.main()


if __name__ == "__main__":
    main()
