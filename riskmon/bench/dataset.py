"""The bench's input: simulator traffic truncated to an exact event count, produced under a topic prefix.

Each stage gets its own topic prefix (its own copy of the same events) so no stage reads another's
outputs (the worker also consumes ``alerts``) and every consumer group starts from offset 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
from kafka import KafkaProducer

from simulator import SimConfig, simulate

# Rough simulator yield (events per user per simulated day, per enterprise per day) used to pick ``days``.
_PER_USER_DAY = 0.23
_PER_ENTERPRISE_DAY = 5.0


@dataclass(frozen=True)
class Line:
    """One input message: topic (unprefixed), key, payload, purchase event id (None otherwise)."""

    topic: str
    key: bytes
    value: bytes
    purchase_id: str | None


def build_lines(n: int, users: int, enterprises: int, seed: int = 7) -> list[Line]:
    """The first ``n`` messages (emission order) of a simulation big enough to hold them."""
    days = max(30, int(n / (users * _PER_USER_DAY + enterprises * _PER_ENTERPRISE_DAY) * 1.3) + 1)
    while True:
        sim = simulate(SimConfig(users=users, enterprises=enterprises, days=days, seed=seed))
        if len(sim.lines) >= n or days > 3650:
            break
        days *= 2
    out = []
    for raw in sim.lines[:n]:
        topic, key, value, valid = raw[3], raw[4], raw[5], raw[6]
        pid = None
        if topic == "purchases" and valid == "valid":
            try:
                pid = orjson.loads(value).get("event_id")
            except orjson.JSONDecodeError:
                pid = None
        out.append(Line(topic, key.encode(), value, pid))
    return out


def produce(lines: list[Line], bootstrap: str, prefix: str,
            progress: Callable[[int], None] | None = None) -> None:
    """Produce every line to ``prefix + topic`` (acks=all) and wait until the broker has them all."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10, batch_size=512 * 1024,
                             max_request_size=2 * 1024 * 1024, client_id="riskmon-bench")
    try:
        for i, line in enumerate(lines, 1):
            producer.send(prefix + line.topic, key=line.key, value=line.value)
            if progress and i % 5000 == 0:
                progress(5000)
        producer.flush()
        if progress:
            progress(len(lines) % 5000)
    finally:
        producer.close()
