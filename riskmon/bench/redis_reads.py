"""Stage (f): the Redis round trips of a batch, timed on the states the full pipeline left behind.

``AccountStore.load`` of ``batch`` cold users (a fresh store: no cache, so one round trip that HMGETs
them all + deserialisation; the round trip alone is also timed, as ``fetch``, at ``batch`` and at 50
users) and ``AccountStore.commit`` of the same states (the CAS Lua script: version
check, state writes, TTLs, timers, counters) — the two Redis costs the worker pays per batch.
"""

from __future__ import annotations

import asyncio
import random
import time

from riskmon.bench.latency import percentile
from riskmon.state.accounts import AccountStore
from riskmon.state.redis_client import connect as redis_connect

SMALL_BATCH = 50  # cold users of a typical live batch (a few hundred events, most users cached)


async def _run(redis_url: str, batch: int, rounds: int, seed: int) -> dict[str, float]:
    client = redis_connect(redis_url)  # the worker's client (hiredis packing)
    try:
        users = sorted([k.decode()[5:] async for k in client.scan_iter("rm:u:*", count=5000)])
        if not users:
            raise RuntimeError("no account states in Redis: run the pipeline first")
        rng = random.Random(seed)
        load_ms, commit_ms, fetch_ms, fetch_small_ms, blob_bytes = [], [], [], [], 0
        for _ in range(rounds):
            store = AccountStore(client, ttl_s=86_400 * 400)
            chosen = set(rng.sample(users, min(batch, len(users))))
            t = time.perf_counter()
            await store.fetch(sorted(chosen))
            fetch_ms.append((time.perf_counter() - t) * 1000)
            small = rng.sample(users, min(SMALL_BATCH, len(users)))
            t = time.perf_counter()
            await store.fetch(small)
            fetch_small_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            states = await store.load(chosen)
            load_ms.append((time.perf_counter() - t) * 1000)
            timers = [(0, u, None) for u in chosen]
            t = time.perf_counter()
            res = await store.commit(list(states.values()), timers, 0, {})
            commit_ms.append((time.perf_counter() - t) * 1000)
            if not res.ok:
                raise RuntimeError(f"commit conflicted on {len(res.conflicts)} users (is a worker still running?)")
            blob_bytes += sum(len(s.to_bytes()) for s in states.values())
        n = sum(min(batch, len(users)) for _ in range(rounds))
        return {
            "batch": min(batch, len(users)),
            "rounds": rounds,
            "users_in_redis": len(users),
            "mean_state_bytes": round(blob_bytes / n, 1),
            "load_p50_ms": round(percentile(load_ms, 0.5), 2),
            "load_p99_ms": round(percentile(load_ms, 0.99), 2),
            "load_per_user_us": round(sum(load_ms) / n * 1000, 1),
            "fetch_p50_ms": round(percentile(fetch_ms, 0.5), 2),
            "fetch_p99_ms": round(percentile(fetch_ms, 0.99), 2),
            "fetch_small_batch": min(SMALL_BATCH, len(users)),
            "fetch_small_p50_ms": round(percentile(fetch_small_ms, 0.5), 2),
            "fetch_small_p99_ms": round(percentile(fetch_small_ms, 0.99), 2),
            "commit_p50_ms": round(percentile(commit_ms, 0.5), 2),
            "commit_p99_ms": round(percentile(commit_ms, 0.99), 2),
        }
    finally:
        await client.aclose()


def redis_round_trips(redis_url: str, *, batch: int = 500, rounds: int = 100, seed: int = 1) -> dict[str, float]:
    """Time ``rounds`` cold loads and commits of ``batch`` random users already in Redis."""
    return asyncio.run(_run(redis_url, batch, rounds, seed))
