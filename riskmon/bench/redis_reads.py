"""Stage (f): the Redis round trips of a batch, timed on the states the full pipeline left behind.

``AccountStore.load`` of ``batch`` cold users (a fresh store: no cache, so one MGET of them all +
deserialisation; the round trip alone is also timed, as ``fetch``, at ``batch`` and at 50 users) and
``AccountStore.commit`` of the same states (the CAS Lua script: version check, state writes, TTLs,
timers, counters) — the two Redis costs the worker pays per batch.

Side by side with the 50-user read, the same users read as the account-state layout 1 stored them
(``riskmon.state.layout``: a hash per user, read by a Lua script that HMGETs them all), from copies
under a scratch prefix, alternating which read goes first: what the layout change bought, measured
in the same run on the same states.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from typing import Any

from riskmon.bench.latency import percentile
from riskmon.state.accounts import AccountStore, split_stored
from riskmon.state.layout import ACCOUNT_PATTERN, ACCOUNT_PREFIX
from riskmon.state.redis_client import connect as redis_connect
from streams.gc_pauses import freeze_long_lived_objects

SMALL_BATCH = 50  # cold users of a typical live batch (a few hundred events, most users cached)
SMALL_READS_PER_ROUND = 10  # 50-user reads are ~1 ms: 10 a round give a p99 of 1,000 samples, not 100
LAYOUT_1_PREFIX = "rm:bench:l1:"  # scratch copies of the sampled states in layout 1, deleted at the end
LAYOUT_1_READ_LUA = "local out = {} for i, k in ipairs(KEYS) do out[i] = redis.call('HMGET', k, 'v', 's') end return out"


async def _copy_as_layout_1(client: Any, users: set[str]) -> None:
    """Write each user's stored state again as layout 1 would have: a hash {v, s} under the scratch prefix."""
    ordered = sorted(users)
    raw = await client.mget([ACCOUNT_PREFIX + u for u in ordered])
    pipe = client.pipeline(transaction=False)
    for u, value in zip(ordered, raw, strict=True):
        version, blob = split_stored(value)
        if blob:
            pipe.hset(LAYOUT_1_PREFIX + u, mapping={"v": version, "s": blob})
    await pipe.execute()


async def _run(redis_url: str, batch: int, rounds: int, seed: int) -> dict[str, float]:
    client = redis_connect(redis_url)  # the worker's client (hiredis packing)
    try:
        users = sorted([k.decode()[len(ACCOUNT_PREFIX):] async for k in client.scan_iter(ACCOUNT_PATTERN, count=5000)])
        if not users:
            raise RuntimeError("no account states in Redis: run the pipeline first")
        rng = random.Random(seed)
        smalls = [rng.sample(users, min(SMALL_BATCH, len(users))) for _ in range(rounds * SMALL_READS_PER_ROUND)]
        await _copy_as_layout_1(client, {u for small in smalls for u in small})
        read_layout_1 = client.register_script(LAYOUT_1_READ_LUA)
        load_ms, commit_ms, fetch_ms, fetch_small_ms, layout_1_ms, blob_bytes = [], [], [], [], [], 0
        for r in range(rounds):
            store = AccountStore(client, ttl_s=86_400 * 400)
            chosen = set(rng.sample(users, min(batch, len(users))))
            t = time.perf_counter()
            await store.fetch(sorted(chosen))
            fetch_ms.append((time.perf_counter() - t) * 1000)
            for j in range(r * SMALL_READS_PER_ROUND, (r + 1) * SMALL_READS_PER_ROUND):
                small = smalls[j]
                for which in ((0, 1) if j % 2 else (1, 0)):
                    t = time.perf_counter()
                    if which:
                        await store.fetch(small)
                        fetch_small_ms.append((time.perf_counter() - t) * 1000)
                    else:
                        await read_layout_1(keys=[LAYOUT_1_PREFIX + u for u in small])
                        layout_1_ms.append((time.perf_counter() - t) * 1000)
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
            "fetch_small_reads": len(fetch_small_ms),
            "fetch_small_p50_ms": round(percentile(fetch_small_ms, 0.5), 2),
            "fetch_small_p99_ms": round(percentile(fetch_small_ms, 0.99), 2),
            "fetch_small_layout_1_p50_ms": round(percentile(layout_1_ms, 0.5), 2),
            "fetch_small_layout_1_p99_ms": round(percentile(layout_1_ms, 0.99), 2),
            "layout_1_over_2_p50": round(percentile(layout_1_ms, 0.5) / percentile(fetch_small_ms, 0.5), 2),
            "commit_p50_ms": round(percentile(commit_ms, 0.5), 2),
            "commit_p99_ms": round(percentile(commit_ms, 0.99), 2),
        }
    finally:
        keys = [k async for k in client.scan_iter(LAYOUT_1_PREFIX + "*", count=5000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def redis_round_trips(redis_url: str, *, batch: int = 500, rounds: int = 100, seed: int = 1) -> dict[str, float]:
    """Time ``rounds`` cold loads and commits of ``batch`` random users already in Redis.

    With a worker's garbage-collector settings (``streams.gc_pauses``): the bench process holds the
    simulated stream, and a full collection of it stopped a 500-user load for 150-160 ms (20 of them in
    100 rounds: load p99 212 ms, against 52 with the worker's settings, side by side in one process),
    a pause a worker, which freezes its long-lived objects, does not take. Restored afterwards.
    """
    thresholds = gc.get_threshold()
    freeze_long_lived_objects()
    try:
        return asyncio.run(_run(redis_url, batch, rounds, seed))
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
