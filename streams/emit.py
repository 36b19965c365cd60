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
    """Send (topic, key, record) tuples and wait until the broker has them all."""
    futs = []
    for topic, key, rec in records:
        futs.append(await app.producer.send(prefix + topic, key.encode(), orjson.dumps(rec), None, None, None))
    if futs:
        await asyncio.gather(*futs)
    return len(futs)


def dead_letter_for(event: faust.types.EventT, rejected: Rejected, prefix: str = "") -> tuple[str, str, dict[str, Any]]:
    """The dead-letter record of a rejected input message (keyed by its source topic)."""
    msg = event.message
    raw = msg.value if isinstance(msg.value, bytes | None) else str(msg.value).encode()
    ts = int(msg.timestamp * 1000) if msg.timestamp else None
    rec = out.dead_letter(topic=unprefixed(msg.topic, prefix), partition=msg.partition, offset=msg.offset, payload=raw,
                          reason=rejected.reason, ts=ts)
    return out.TOPIC_DEAD_LETTERS, rec["topic"], rec
