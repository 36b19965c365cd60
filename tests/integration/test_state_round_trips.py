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
        # once per runtime: the state layout marker (riskmon.state.layout), model checkpoint, timers; then
        # the batch: one read for 49 users, commit
        assert CountingConnection.sends == 5
        st = (await rt2.store.load({"u7"}))["u7"]
        assert st.ledger.outstanding == 2 * 12050  # the redelivered events were recognised
        await client2.aclose()

    asyncio.run(scenario())


@pytest.mark.integration
def test_under_a_backlog_takes_are_held_until_a_full_batch(clean_redis_url: str) -> None:
    """When the rest of a full batch is already in the broker (unread), a take is held and applied with
    the next one; with no backlog a take is applied at once; the tick applies what is held if the rest
    never comes. Nothing held is acked before it is applied."""

    async def scenario() -> None:
        sent: list = []
        lag = {"n": 10_000}  # messages in the broker past what the runtime has read
        client = aioredis.Redis.from_url(clean_redis_url)

        async def publish(records):
            sent.extend(records)

        def inputs():
            read = max((rt.part_next.get(("purchases", p), 0) for p in range(4)), default=0)
            return [(("purchases", p), read + lag["n"] if p == 0 else 0, None) for p in range(4)]  # 1-3 empty

        def one_partition(batch: list[Ev]) -> list[Ev]:  # the lagging partition is the one read
            for ev in batch:
                ev.message.partition = 0
            return batch

        settings = Settings(redis_url=clean_redis_url, batch_size=120)
        rt = ConsumerCreditRuntime(settings, load_policy(settings.policy_path), client, "t", publish=publish,
                                   assigned_partitions=lambda: [0, 1, 2, 3], input_partitions=inputs)
        b1, b2, b3 = (one_partition(_batch(0, 50, o)) for o in (0, 100, 200))
        await rt.handle(b1)
        assert sent == [] and rt.held == 51 and all(ev.message.refs == 2 for ev in b1)  # held, not acked
        await rt.handle(b2)  # 102 taken, still under 120: held
        assert sent == [] and rt.takes_held == 2
        await rt.handle(b3)  # 153 >= 120: applied together
        assert rt.held == 0 and all(ev.message.refs == 1 for ev in b1 + b2 + b3)
        assert sum(1 for t, _, _ in sent if t == "decisions") == 150
        assert sum(1 for t, _, _ in sent if t == "dead-letters") == 3

        lag["n"] = 0  # caught up: a take is applied at once
        await rt.handle(one_partition(_batch(0, 10, 300)))
        assert rt.held == 0 and rt.takes_held == 2

        lag["n"] = 10_000  # held again, and the rest never comes: the timer tick applies it
        b5 = one_partition(_batch(0, 10, 400))
        await rt.handle(b5)
        assert rt.held == 11 and all(ev.message.refs == 2 for ev in b5)
        await rt.tick()
        assert rt.held == 0 and all(ev.message.refs == 1 for ev in b5)
        stats = await client.hgetall("rm:stats")
        assert int(stats[b"events_valid"]) == 170 and int(stats[b"dead_letters"]) == 5
        await client.aclose()

    asyncio.run(scenario())


@pytest.mark.integration
def test_stored_timers_follow_each_next_timer_and_unchanged_ones_are_not_rewritten(clean_redis_url: str) -> None:
    """The timers sorted sets hold every user's next timer; a batch writes only the ones that moved."""

    async def stored(client: aioredis.Redis) -> dict[str, int]:
        out = {}
        for p in range(4):
            for user, score in await client.zrange(f"rm:timers:{p}", 0, -1, withscores=True):
                out[user.decode()] = int(score)
        return out

    async def scenario() -> None:
        rt, client = _runtime(clean_redis_url, [])
        written: list[list] = []
        commit = rt.store.commit

        async def spy(states, timers, *args, **kwargs):  # type: ignore[no-untyped-def]
            written.append(list(timers))
            return await commit(states, timers, *args, **kwargs)

        rt.store.commit = spy  # type: ignore[method-assign]
        users = {f"u{i}" for i in range(50)}
        await rt.handle(_batch(0, 50, 0))
        assert len(written[-1]) == 50  # 50 new accounts with installments due: each gets its first timer
        await rt.handle(_batch(0, 50, 0))  # redelivered: nothing changes, so no timer is written
        assert written[-1] == []
        assert len(rt.heap) == 50  # and no stale duplicate is pushed
        await rt.handle(_batch(0, 50, 100))  # a second purchase each, a minute later in event time
        states = await rt.store.load(users)
        expected = {u: rt.engine.next_timer(st) for u, st in states.items()}
        assert None not in expected.values()
        assert await stored(client) == expected
        assert {u: at for u, (at, _) in rt.timer_at.items()} == expected
        assert len(written[-1]) < 50  # most users' next due date stayed where the first purchase put it

        rt2, client2 = _runtime(clean_redis_url, [])  # a restart reads back what was stored
        await rt2._load_timers()
        assert {u: at for u, (at, _) in rt2.timer_at.items()} == expected
        await client.aclose()
        await client2.aclose()

    asyncio.run(scenario())


@pytest.mark.integration
def test_submit_returns_while_a_full_batch_is_in_flight_and_acks_only_after_the_commit(clean_redis_url: str) -> None:
    """The agent's path under a backlog: a full batch applied in the background, takes held meanwhile and
    applied after it as one batch, back-pressure once a full batch is held, acks only after each commit.
    Below a full batch, submit waits as before."""

    async def scenario() -> None:
        gate = asyncio.Event()
        sent: list = []
        batches: list[int] = []
        client = aioredis.Redis.from_url(clean_redis_url)

        async def slow_publish(records):  # a broker that has not acknowledged yet
            batches.append(sum(1 for t, _, _ in records if t == "decisions"))
            await gate.wait()
            sent.extend(records)

        settings = Settings(redis_url=clean_redis_url, batch_size=60)
        rt = ConsumerCreditRuntime(settings, load_policy(settings.policy_path), client, "t",
                                   publish=slow_publish, assigned_partitions=lambda: [0, 1, 2, 3])
        b1 = _batch(0, 60, 0)
        b2, b3, b4 = (_batch(0, 25, o) for o in (100, 200, 300))
        await rt.submit(b1)  # a full batch: returns while it is applied
        await asyncio.sleep(0.05)  # b1's state read and engine ran; it waits on the broker
        assert rt.inflight is not None and not rt.inflight.done()
        assert all(ev.message.refs == 2 for ev in b1), "acked before its commit"
        await rt.submit(b2)  # returns at once: held while b1 is in flight
        assert rt.held == 26 and len(rt.pending) == 25
        third = asyncio.ensure_future(rt.submit(b3))  # 52 held: still under a batch
        await asyncio.sleep(0.01)
        assert third.done()
        fourth = asyncio.ensure_future(rt.submit(b4))  # 78 held >= 60: the agent waits
        await asyncio.sleep(0.05)
        assert not fourth.done(), "a full batch held must wait until the applying task takes it in"
        gate.set()
        await fourth  # returns once b2-b4 are taken in, while they are applied
        await rt.settle()
        assert batches == [60, 75], "what arrived during b1 must be applied after it as one batch"
        assert all(ev.message.refs == 1 for ev in b1 + b2 + b3 + b4)
        assert sum(1 for t, _, _ in sent if t == "decisions") == 135
        assert int((await client.hgetall("rm:stats"))[b"events_valid"]) == 135

        b5 = _batch(0, 5, 400)
        await rt.submit(b5)  # below a full batch: applied and committed before submit returns
        assert rt.inflight is None and all(ev.message.refs == 1 for ev in b5)

        async def broken_publish(records):
            raise ValueError("encoder bug")

        rt.publish = broken_publish
        b6 = _batch(0, 60, 500)
        await rt.submit(b6)  # a full batch: the failure shows on the agent's next submit
        await asyncio.sleep(0.05)
        with pytest.raises(ValueError, match="encoder bug"):
            await rt.submit(_batch(0, 5, 600))
        assert all(ev.message.refs == 2 for ev in b6), "a failed batch must not be acked"
        assert int((await client.hgetall("rm:stats"))[b"events_valid"]) == 140
        await client.aclose()

    asyncio.run(scenario())
