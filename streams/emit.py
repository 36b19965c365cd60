"""Publishing outputs and dead letters from agents (batched sends, one flush per batch)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
import orjson

from riskmon import outputs as out
from riskmon.contract import Rejected
from streams.topics import unprefixed


async def publish(app: faust.App, records: Iterable[tuple[str, str, dict[str, Any]]], prefix: str = "") -> int:
    """Send (topic, key, record) tuples and wait until the broker has them all.

    Records go out as one aiokafka batch per (topic, partition), not one ``send`` each: a per-record
    send costs a metadata wait, a murmur2 of the key, an accumulator append and a future (about 8 µs of a
    worker's ~150 per input message, docs/performance.md). The partition is the one aiokafka's default
    partitioner picks for the key (:func:`partition_for`, cached), so co-partitioning and per-key order are
    unchanged; ``tests/integration/test_publish.py`` checks both against plain sends.
    """
    producer = app.producer._ensure_producer()  # noqa: SLF001 - Faust exposes no batch API
    partitioner = producer._partitioner  # noqa: SLF001
    parts_of: dict[str, tuple[int, ...] | None] = {}  # per topic, once per call (aiokafka builds a set each ask)
    groups: dict[tuple[str, int | None], list[tuple[bytes, bytes]]] = {}
    for topic, key, rec in records:
        name = prefix + topic
        try:
            parts = parts_of[name]
        except KeyError:
            parts = _partitions(producer, name)
            if parts is None:
                await producer.client._wait_on_metadata(name)  # noqa: SLF001 - what send() itself awaits
                parts = _partitions(producer, name)
            parts_of[name] = parts
        kb = key.encode()
        part = partition_for(partitioner, kb, parts) if parts else None
        groups.setdefault((name, part), []).append((kb, orjson.dumps(rec)))
    futs = []
    for (name, part), rows in groups.items():
        batch = producer.create_batch()
        for kb, value in rows:
            if batch.append(key=kb, value=value, timestamp=None) is None:  # full: ship it, start another
                futs.append(await producer.send_batch(batch, name, partition=part))
                batch = producer.create_batch()
                batch.append(key=kb, value=value, timestamp=None)
        futs.append(await producer.send_batch(batch, name, partition=part))
    if futs:
        await asyncio.gather(*futs)
    return sum(map(len, groups.values()))


_PARTITION_CACHE: dict[tuple[int, ...], dict[bytes, int]] = {}  # partitions -> key -> partition
_PARTITION_CACHE_MAX = 200_000


def partition_for(partitioner: Any, key: bytes, partitions: tuple[int, ...]) -> int:
    """What ``partitioner`` (the producer's own) picks for ``key`` among ``partitions``; cached, as keys
    repeat and aiokafka's murmur2 is pure Python."""
    by_key = _PARTITION_CACHE.get(partitions)
    if by_key is None:
        by_key = _PARTITION_CACHE[partitions] = {}
    part = by_key.get(key)
    if part is None:
        if len(by_key) >= _PARTITION_CACHE_MAX:
            by_key.clear()
        part = by_key[key] = partitioner(key, list(partitions), list(partitions))
    return part


def _partitions(producer: Any, topic: str) -> tuple[int, ...] | None:
    """``topic``'s partitions in the order aiokafka's ``_partition`` hands them to the partitioner, or None
    while the producer has no metadata for the topic."""
    parts = producer.client.cluster.partitions_for_topic(topic)
    return tuple(parts) if parts else None


def dead_letter_for(event: faust.types.EventT, rejected: Rejected, prefix: str = "") -> tuple[str, str, dict[str, Any]]:
    """The dead-letter record of a rejected input message (keyed by its source topic)."""
    msg = event.message
    raw = msg.value if isinstance(msg.value, bytes | None) else str(msg.value).encode()
    ts = int(msg.timestamp * 1000) if msg.timestamp else None
    rec = out.dead_letter(topic=unprefixed(msg.topic, prefix), partition=msg.partition, offset=msg.offset, payload=raw,
                          reason=rejected.reason, ts=ts)
    return out.TOPIC_DEAD_LETTERS, rec["topic"], rec
