"""A batch costs one Redis round trip once its users are cached; state survives a new runtime."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from riskmon.config import Settings
from riskmon.eventtime import fmt_ts, parse_ts
from riskmon.policy import load_policy
from streams.consumer_credit import ConsumerCreditRuntime

T0 = parse_ts("2026-03-01T02:00:00Z")


class CountingConnection(Connection):
    """Counts what goes over the socket: a pipeline or script call is one send."""

    sends = 0

    async def send_packed_command(self, command, check_health=True):  # type: ignore[override]
        CountingConnection.sends += 1
        return await super().send_packed_command(command, check_health)


@dataclass
class Msg:
    topic: str
    value: bytes
    partition: int
    offset: int
    refs: int = 1
    timestamp: float | None = 1772352000.0  # Faust gives the Kafka timestamp in seconds

    def incref(self) -> None:
        self.refs += 1


@dataclass
class Ev:
    message: Msg

    def ack(self) -> None:
        self.message.refs -= 1


def _batch(start: int, users: int, offset0: int) -> list[Ev]:
    out = []
    for i in range(users):
        v = {"event_id": f"p{offset0 + i}", "ts": fmt_ts(T0 + (offset0 + i) * 60_000), "user_id": f"u{i}",
             "order_id": f"o{offset0 + i}", "amount": "120.50", "merchant_id": "m1", "category": "digital",
             "channel": "app", "installments": 3}
        out.append(Ev(Msg("purchases", orjson.dumps(v), i % 4, offset0 + i)))
    out.append(Ev(Msg("purchases", b"{broken", 0, offset0 + users)))
    return out


def _runtime(url: str, sent: list) -> tuple[ConsumerCreditRuntime, aioredis.Redis]:
    pool = aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection)
    client = aioredis.Redis(connection_pool=pool)

    async def publish(records):
        sent.extend(records)

    settings = Settings(redis_url=url)
    rt = ConsumerCreditRuntime(settings, load_policy(settings.policy_path), client, "t",
                               publish=publish, assigned_partitions=lambda: [0, 1, 2, 3])
    return rt, client


@pytest.mark.integration
def test_one_round_trip_per_batch_when_warm_and_state_survives_restart(clean_redis_url: str) -> None:
    async def scenario() -> None:
        sent: list = []
        rt, client = _runtime(clean_redis_url, sent)
        await rt.handle(_batch(0, 50, 0))  # cold: models + timers + one read for 50 users + commit
        CountingConnection.sends = 0
        await rt.handle(_batch(0, 50, 100))
        assert CountingConnection.sends == 1, "a warm batch must be exactly one Redis round trip"
        CountingConnection.sends = 0
        await rt.handle(_batch(0, 50, 100))  # redelivery of the same batch: still one trip, no change
        assert CountingConnection.sends == 1
        dead = [r for t, _, r in sent if t == "dead-letters"]
        assert len(dead) == 3 and dead[0]["reason"].startswith("payload: malformed JSON")
        stats = await client.hgetall("rm:stats")
        assert int(stats[b"events_valid"]) == 100 and int(stats[b"duplicates"]) == 50
        await client.aclose()

        rt2, client2 = _runtime(clean_redis_url, [])
        states = await rt2.store.load({"u7"})
        assert states["u7"].ledger.outstanding == 2 * 12050
        assert states["u7"].ledger.purchased == 2 * 12050
        CountingConnection.sends = 0
        await rt2.handle(_batch(0, 50, 100))  # cold cache after restart: one read + one commit
        assert CountingConnection.sends == 4  # model checkpoint, timers, one read for 49 users, commit
        st = (await rt2.store.load({"u7"}))["u7"]
        assert st.ledger.outstanding == 2 * 12050  # the redelivered events were recognised
        await client2.aclose()

    asyncio.run(scenario())
