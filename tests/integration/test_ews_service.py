"""EwsService against a real redis-server: round trips, restart survival, idempotency, snapshot."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from riskmon.contract import TOPIC_METRICS, BusinessMetric, decode
from riskmon.eventtime import parse_ts
from riskmon.ews import EwsService, run_offline
from riskmon.ews.service import INDEX_KEY, STATE_PREFIX
from riskmon.outputs import TOPIC_ALERTS, TOPIC_ENTERPRISE_HEALTH
from simulator.enterprises import generate

pytestmark = pytest.mark.integration

START = parse_ts("2026-01-01T00:00:00Z")
TTL_S = 3 * 86_400


class CountingConnection(aioredis.Connection):
    """Counts writes to the socket: one per command, one per pipeline (= one round trip)."""

    sent = 0

    async def send_packed_command(self, command, check_health=True):  # type: ignore[override]
        CountingConnection.sent += 1
        return await super().send_packed_command(command, check_health)


def counting_client(url: str, decode_responses: bool = False) -> aioredis.Redis:
    pool = aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection,
                                            decode_responses=decode_responses)
    return aioredis.Redis(connection_pool=pool)


def events(seed: int, n: int, days: int) -> list[BusinessMetric]:
    evs, _ = generate(seed, n, START, days)
    out = [decode(TOPIC_METRICS, orjson.dumps(msg)) for _, msg in evs]
    assert all(isinstance(e, BusinessMetric) for e in out)
    return out


def batches(evs: list[BusinessMetric], size: int) -> list[list[BusinessMetric]]:
    return [evs[i:i + size] for i in range(0, len(evs), size)]


def _commandstats(url: str) -> dict[str, int]:
    info = redis.Redis.from_url(url).info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items()}


def test_round_trips_restart_and_duplicates(clean_redis_url: str) -> None:
    evs = events(seed=4, n=12, days=150)
    expected_alerts, expected_health, _ = run_offline(
        [(e.ts, {"event_id": e.event_id, "ts": _ts(e.ts), "enterprise_id": e.enterprise_id,
                 "industry": e.industry, "metric": e.metric, "value": e.value}) for e in evs])
    assert expected_alerts, "scenario must produce alerts to compare"
    parts = batches(evs, 400)
    half = len(parts) // 2

    async def scenario() -> tuple[list, list, list[dict]]:
        got: list = []
        stats_before = _commandstats(clean_redis_url)
        client = counting_client(clean_redis_url)
        svc = EwsService(client, {}, TTL_S)
        await svc.redis.ping()  # connection handshake (HELLO/CLIENT SETINFO) is not part of a batch
        for batch in parts[:half]:
            CountingConnection.sent = 0
            got += await svc.handle_batch(batch)
            assert CountingConnection.sent == 2  # one load pipeline + one MULTI/EXEC save
        stats = _commandstats(clean_redis_url)
        assert stats["multi"] - stats_before.get("multi", 0) == half
        assert stats["exec"] - stats_before.get("exec", 0) == half
        # states are read once (first batch), then served from the worker's cache, written through
        assert stats["mget"] - stats_before.get("mget", 0) == 1
        assert stats.get("get", 0) == stats_before.get("get", 0)  # no per-key reads
        await client.aclose()

        # a new service instance (a restarted worker) continues from the Redis state,
        # even through a client that decodes responses
        client2 = counting_client(clean_redis_url, decode_responses=True)
        svc2 = EwsService(client2, {"ews": {}}, TTL_S)
        await svc2.redis.ping()
        # redelivery of an already applied batch changes nothing: no output, no write
        raw = redis.Redis.from_url(clean_redis_url)
        blobs = {k: raw.get(k) for k in raw.scan_iter(STATE_PREFIX + "*")}
        CountingConnection.sent = 0
        dup = await svc2.handle_batch(parts[half - 1])
        assert dup == [] and CountingConnection.sent == 1
        assert {k: raw.get(k) for k in raw.scan_iter(STATE_PREFIX + "*")} == blobs
        for batch in parts[half:]:
            got += await svc2.handle_batch(batch)
        # mixed: half duplicates, half new events in one batch
        again = await svc2.handle_batch(parts[-1][:50] + parts[-2][:50])
        assert again == []
        snap = await svc2.snapshot()
        return got, [], snap

    got, _, snap = asyncio.run(scenario())
    alerts = [r for t, _, r in got if t == TOPIC_ALERTS]
    health = [r for t, _, r in got if t == TOPIC_ENTERPRISE_HEALTH]
    # the Redis-backed service decides exactly like the in-memory core
    assert [a["dedup_key"] for a in alerts] == [a["dedup_key"] for a in expected_alerts]
    assert [a["ts"] for a in alerts] == [a["ts"] for a in expected_alerts]
    assert [(h["enterprise_id"], h["grade"]) for h in health] == [(h["enterprise_id"], h["grade"])
                                                                 for h in expected_health]
    # TTL on every key, index and snapshot cover all enterprises
    raw = redis.Redis.from_url(clean_redis_url)
    keys = list(raw.scan_iter("ews:*"))
    assert keys and all(0 < raw.ttl(k) <= TTL_S for k in keys)
    ents = sorted({e.enterprise_id for e in evs})
    assert sorted(m.decode() for m in raw.smembers(INDEX_KEY)) == ents
    assert [r["enterprise_id"] for r in snap] == ents
    last = {}
    for h in expected_health:
        last[h["enterprise_id"]] = h
    assert snap == [last[e] for e in ents]


def _ts(ms: int) -> str:
    from riskmon.eventtime import fmt_ts

    return fmt_ts(ms)


def test_the_state_cache_stays_within_its_budget_and_decides_the_same(clean_redis_url: str) -> None:
    """A budget of a few enterprises forces evictions on every batch; evicted states are read back from
    Redis, so the alerts and health records are exactly those of an unbounded cache."""
    evs = events(seed=4, n=12, days=150)
    parts = batches(evs, 400)

    async def run(cache_bytes: int | None) -> tuple[list, EwsService]:
        client = aioredis.from_url(clean_redis_url)
        await client.flushdb()
        svc = EwsService(client, {}, TTL_S) if cache_bytes is None else EwsService(client, {}, TTL_S, cache_bytes)
        got: list = []
        for batch in parts:
            got += await svc.handle_batch(batch)
            assert cache_bytes is None or svc.cache.used_bytes <= cache_bytes or len(svc.cache) == 1
        await client.aclose()
        return got, svc

    unbounded, big = asyncio.run(run(None))
    small_budget = 3 * max(big.cache.sizes.values())
    bounded, small = asyncio.run(run(small_budget))
    assert len(big.cache) == 12 and big.cache.evictions == 0
    assert small.cache.evictions > 0 and len(small.cache) < 12
    assert bounded == unbounded
