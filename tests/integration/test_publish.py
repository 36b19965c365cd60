"""``streams.emit.publish`` on real Apache Kafka: batched sends land where per-record sends would."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from riskmon.services.stack import Stack
from streams.emit import partition_for, publish


def test_partition_for_matches_aiokafkas_default_partitioner() -> None:
    default = DefaultPartitioner()
    for parts in (1, 3, 4, 12):
        all_parts = list(range(parts))
        for _ in range(2):  # the second pass is answered from the cache
            for i in range(2_000):
                key = f"user-{i}".encode()
                assert partition_for(default, key, tuple(all_parts)) == default(key, all_parts, all_parts)


async def _publish_and_read(bootstrap: str, topic: str, records: list[tuple[str, str, dict[str, Any]]]) -> list:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=2048)  # small: several batches
    await producer.start()
    try:
        app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
        sent = await publish(app, records, prefix="")  # type: ignore[arg-type]
        assert sent == len(records)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    got: list = []
    try:
        while len(got) < len(records):
            batch = await consumer.getmany(timeout_ms=5_000)
            assert batch, f"only {len(got)} of {len(records)} records arrived"
            for tp, msgs in batch.items():
                got += [(tp.partition, m.offset, m.key.decode(), orjson.loads(m.value)) for m in msgs]
    finally:
        await consumer.stop()
    return got


def test_batched_publish_keeps_partition_and_per_key_order(kafka_stack: Stack) -> None:
    topic = f"pub-{uuid.uuid4().hex[:8]}"
    kafka_stack.create_topics([topic], partitions=4)
    records = [(topic, f"user-{i % 37}", {"seq": i, "pad": "x" * 40}) for i in range(1_000)]
    got = asyncio.run(_publish_and_read(kafka_stack.bootstrap, topic, records))
    assert sorted(r["seq"] for *_, r in got) == list(range(1_000))  # each record once
    default = DefaultPartitioner()
    per_key: dict[str, list[int]] = {}
    for part, _offset, key, rec in sorted(got, key=lambda g: (g[0], g[1])):
        assert part == default(key.encode(), [0, 1, 2, 3], [0, 1, 2, 3])  # where a plain send puts it
        per_key.setdefault(key, []).append(rec["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_key.values())  # order per key kept
    assert len({p for p, *_ in got}) == 4
