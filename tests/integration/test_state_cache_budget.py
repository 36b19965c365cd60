"""The worker's state cache stays within its memory budget; evicted states come back from Redis intact.

Why: a decoded account state takes ~10 KB in memory, so a worker that cached every user it owns would
pass 1 GB at ~70k users (1.17 GB measured at 82k). The budget (``RISKMON_STATE_CACHE_MB``) bounds it;
Redis holds every state anyway, so an evicted user costs one more read in its next batch's single round
trip, never correctness.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from riskmon.account import AccountState
from riskmon.config import Settings
from riskmon.policy import load_policy
from riskmon.state.accounts import STATE_MEMORY_PER_BLOB_BYTE, AccountStore
from streams.consumer_credit import ConsumerCreditRuntime

pytestmark = pytest.mark.integration


def _state(i: int) -> AccountState:
    st = AccountState(f"u{i}", opened_ts=1_000, credit_limit=500_000)
    st.ledger.purchase(f"p{i}", 2_000, 12_050 + i, 3, 0)
    st.labels.append([f"p{i}", 3_000, {"utilisation": 0.1, "limit": 5000.0, "anomaly": i / 100}, 0.02, 0.03, 0])
    return st


def test_the_cache_evicts_least_recently_used_states_beyond_its_budget(clean_redis_url: str) -> None:
    async def scenario() -> None:
        client = aioredis.from_url(clean_redis_url)
        one = len(_state(0).to_bytes()) * STATE_MEMORY_PER_BLOB_BYTE
        store = AccountStore(client, ttl_s=3600, cache_bytes=20 * one)
        for start in range(0, 100, 10):
            res = await store.commit([_state(i) for i in range(start, start + 10)], [], 0, {})
            assert res.ok
            assert store.cache.used_bytes <= store.cache.max_bytes
        assert 15 <= len(store.cache) <= 20 and store.cache.evictions == 100 - len(store.cache)
        assert list(store.cache)[-1] == "u99"  # the newest stay

        # u0 was evicted: it comes back from Redis in the batch's one read, exactly as committed
        trips = store.round_trips
        states = await store.load({"u0", "u99"})
        assert store.round_trips == trips + 1 and store.last_fetched == 1
        assert store.last_fetch_s > 0  # the round trip alone, for the latency trace
        assert states["u0"].to_bytes() == _state(0).to_bytes() and states["u0"].version == 1
        assert states["u0"].ledger.outstanding == 12_050
        assert "u0" in store.cache and store.cache.used_bytes <= store.cache.max_bytes

        # a cache hit makes a state the most recently used: the next evictions take others first
        oldest = next(iter(store.cache))
        await store.load({oldest})
        assert store.last_fetched == 0 and store.last_fetch_s == 0.0  # all cached: no round trip
        await store.commit([_state(200)], [], 0, {})
        assert oldest in store.cache
        await client.aclose()

    asyncio.run(scenario())


def test_the_runtime_takes_its_budget_from_the_config(clean_redis_url: str) -> None:
    async def scenario() -> None:
        client = aioredis.from_url(clean_redis_url)
        settings = Settings(redis_url=clean_redis_url, state_cache_mb=7)

        async def publish(records: list) -> None:
            return None

        rt = ConsumerCreditRuntime(settings, load_policy(settings.policy_path), client, "t",
                                   publish=publish, assigned_partitions=lambda: [0])
        assert rt.store.cache.max_bytes == 7 * 2**20
        await client.aclose()

    asyncio.run(scenario())
