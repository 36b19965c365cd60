"""Stage (a): the ceiling — aiokafka fetches every input message and orjson decodes it, nothing else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def _consume(bootstrap: str, topics: Sequence[str], total: int, timeout_s: float,
                   progress: Callable[[int], None] | None) -> dict[str, float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:  # metadata not loaded yet for unsubscribed topics
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
            tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n = decoded = 0
        t0 = None
        deadline = time.monotonic() + timeout_s
        while n < total:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            if batches and t0 is None:
                t0 = time.perf_counter()
            got = 0
            for records in batches.values():
                for rec in records:
                    try:
                        orjson.loads(rec.value)
                        decoded += 1
                    except orjson.JSONDecodeError:
                        pass
                got += len(records)
            n += got
            if progress and got:
                progress(got)
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw consumer read {n}/{total} messages in {timeout_s:.0f}s")
        seconds = time.perf_counter() - (t0 or time.perf_counter())
        return {"events": n, "decoded": decoded, "seconds": round(seconds, 3),
                "events_per_s": round(n / seconds, 1) if seconds > 0 else 0.0}
    finally:
        await consumer.stop()


def raw_consume(bootstrap: str, topics: Sequence[str], total: int, *, timeout_s: float = 600,
                progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """Read ``total`` messages from the start of ``topics`` (no group, no commits) and decode each.

    The clock starts at the first non-empty fetch, so connection set-up is excluded."""
    return asyncio.run(_consume(bootstrap, topics, total, timeout_s, progress))
