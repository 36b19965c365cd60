"""Account state in Redis: one round trip to commit a batch, a write-through cache for reads.

Layout (version 2, ``riskmon.state.layout``): ``rm:u:<user>`` is a string ``<version>|<state blob>``;
``rm:timers:<partition>`` a sorted set of users by their next timer instant; ``rm:wm`` the stream's
highest event time (shared by all workers); ``rm:stats`` counters; ``rm:model:*`` checkpoints.

Why this design (docs/state.md): a partition is owned by one worker at a time, so that worker keeps
the states of its users in memory and only *writes* per batch — one EVALSHA that checks every user's
version (compare-and-set, so a zombie worker that lost its partition cannot overwrite the new owner),
writes states, timers, watermark, counters and optional checkpoints atomically. Reads happen only for
users not cached yet (after start or a rebalance): one MGET of all of them.

Why a string with the version in front rather than a hash {v, s} (layout 1): a hash cannot be read for
many users in one command without a Lua script, and the script copied every blob into Lua and back:
50 cold users of 2.6 KB took Redis 520 µs of its single thread (MGET: 130 µs), and the round trip
1.05 ms p50 (MGET: 0.56-0.62). The commit checks the version with GETRANGE (the first bytes only) and
writes version, blob and TTL in one SET instead of HGET + HSET + EXPIRE.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from riskmon.account import AccountState
from riskmon.state.layout import ACCOUNT_PATTERN, ACCOUNT_PREFIX
from riskmon.state.lru import BudgetedLRU

COMMIT_LUA = f"local ACCOUNT_PREFIX = '{ACCOUNT_PREFIX}'\n" + r"""
local n = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local max_seen = tonumber(ARGV[3])
local nt = tonumber(ARGV[4])
local ns = tonumber(ARGV[5])
local nm = tonumber(ARGV[6])
local i = 7
local conflicts = {}
for k = 0, n - 1 do
  local key = ACCOUNT_PREFIX .. ARGV[i + 3 * k]
  local v = string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|') or '0'
  if v ~= ARGV[i + 3 * k + 1] then table.insert(conflicts, ARGV[i + 3 * k]) end
end
if #conflicts > 0 then return {0, conflicts, redis.call('GET', 'rm:wm') or '0'} end
for k = 0, n - 1 do
  local key = ACCOUNT_PREFIX .. ARGV[i + 3 * k]
  redis.call('SET', key, ARGV[i + 3 * k + 2], 'EX', ttl)
end
i = i + 3 * n
for k = 0, nt - 1 do
  local zkey = 'rm:timers:' .. ARGV[i + 3 * k]
  local at = tonumber(ARGV[i + 3 * k + 2])
  if at < 0 then redis.call('ZREM', zkey, ARGV[i + 3 * k + 1])
  else redis.call('ZADD', zkey, at, ARGV[i + 3 * k + 1]) end
end
i = i + 3 * nt
for k = 0, ns - 1 do
  redis.call('HINCRBY', 'rm:stats', ARGV[i + 2 * k], tonumber(ARGV[i + 2 * k + 1]))
end
i = i + 2 * ns
for k = 0, nm - 1 do
  redis.call('SET', ARGV[i + 2 * k], ARGV[i + 2 * k + 1])
end
local cur = tonumber(redis.call('GET', 'rm:wm') or '0')
if max_seen > cur then redis.call('SET', 'rm:wm', max_seen); cur = max_seen end
return {1, {}, tostring(cur)}
"""


def split_stored(raw: bytes | None) -> tuple[int, bytes | None]:
    """``(version, state blob)`` of a stored ``rm:u:<user>`` value; ``(0, None)`` when there is none."""
    if not raw:
        return 0, None
    sep = raw.index(b"|")  # a ValueError here is not a layout-2 value: see riskmon.state.layout
    return int(raw[:sep]), raw[sep + 1:]


def scan_states(client: redis.Redis, chunk: int = 1000) -> Iterator[AccountState]:
    """Every stored account state, in key order, read with one MGET per ``chunk`` keys (tools and tests:
    replay snapshots, ledger checks; not the worker's path)."""
    keys = sorted(client.scan_iter(ACCOUNT_PATTERN, count=2000))
    for i in range(0, len(keys), chunk):
        for raw in client.mget(keys[i:i + chunk]):
            version, blob = split_stored(raw)
            if blob:
                yield AccountState.from_bytes(blob, version)


# In-memory size of a cached state per byte of its blob: decoded, a state's dicts, lists, numbers and
# strings take 3-4x its JSON (tracemalloc, pending labels held compactly by riskmon.label_features: 2.95x
# for blobs under 2 KB up to 3.97x at 14-16 KB, over the 20k states of a 300k-event replay). The top of
# that range: the budget is a ceiling, not a guess that may run over.
STATE_MEMORY_PER_BLOB_BYTE = 4
NEW_STATE_BYTES = 4096  # a user with no stored state yet, until its first commit says better


@dataclass
class CommitResult:
    """Outcome of a commit: ok, or the users whose stored version moved under us."""

    ok: bool
    conflicts: list[str]


class AccountStore:
    """Cached, version-checked account states (see module docstring)."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int, cache_size: int = 200_000,
                 cache_bytes: int = 384 * 2**20) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        # Why a memory budget as well as a count: a state takes ~10 KB in memory (more for a mature account
        # with many pending labels), so 100k cached users alone would be ~1 GB. Estimated per state from
        # its blob (STATE_MEMORY_PER_BLOB_BYTE); least recently used states go first.
        self.cache: BudgetedLRU[AccountState] = BudgetedLRU(cache_bytes, cache_size)
        self._commit = client.register_script(COMMIT_LUA)
        self.round_trips = 0  # counted for tests and benchmarks
        self.last_fetched = 0  # users the last load() read from Redis (0: all were cached)
        self.last_fetch_s = 0.0  # wall seconds of that read's round trip alone (0.0: none), for the trace

    def invalidate(self, users: list[str] | None = None) -> None:
        """Forget cached states (all of them on a rebalance)."""
        if users is None:
            self.cache.clear()
        else:
            for u in users:
                self.cache.discard(u)

    async def load(self, users: set[str]) -> dict[str, AccountState]:
        """States of ``users``: cached ones directly, the rest in one round trip (:meth:`fetch`)."""
        self.last_fetched = 0
        self.last_fetch_s = 0.0
        out: dict[str, AccountState] = {}
        missing = []
        for u in users:
            st = self.cache.get(u)
            if st is None:
                missing.append(u)
            else:
                out[u] = st
        if missing:
            rows = await self.fetch(missing)
            for u, (v, blob) in zip(missing, rows, strict=True):
                st = AccountState.from_bytes(blob, v) if blob else AccountState(u)
                out[u] = st
                self.cache.put(u, st, len(blob) * STATE_MEMORY_PER_BLOB_BYTE if blob else NEW_STATE_BYTES)
        return out

    async def fetch(self, users: list[str]) -> list[tuple[int, bytes | None]]:
        """``(version, state blob)`` of each user as stored ((0, None) when absent): one MGET."""
        t0 = time.perf_counter()
        raw = await self.redis.mget([ACCOUNT_PREFIX + u for u in users])
        self.last_fetch_s = time.perf_counter() - t0
        rows = [split_stored(r) for r in raw]
        self.round_trips += 1
        self.last_fetched = len(users)
        return rows

    async def commit(self, states: list[AccountState], timers: list[tuple[int, str, int | None]], max_seen: int,
                     stats: dict[str, int], checkpoints: dict[str, bytes] | None = None) -> CommitResult:
        """Write states (CAS), timers (partition, user, instant|None), watermark, counters, checkpoints."""
        args: list[object] = [len(states), self.ttl_s, max_seen, len(timers), len(stats), len(checkpoints or {})]
        sizes = []
        for st in states:
            blob = st.to_bytes()
            sizes.append(len(blob) * STATE_MEMORY_PER_BLOB_BYTE)
            # the stored value, next version in front, built here: a '..' in the script would copy (and
            # intern) every blob in Lua once more, which made the commit 20-30 % slower than layout 1's
            args += [st.user_id, st.version, b"%d|%b" % (st.version + 1, blob)]
        for part, user, at in timers:
            args += [part, user, -1 if at is None else at]
        for name, n in stats.items():
            args += [name, n]
        for key, blob in (checkpoints or {}).items():
            args += [key, blob]
        ok, conflicts, _max_seen = await self._commit(args=args)
        self.round_trips += 1
        if ok:
            for st, size in zip(states, sizes, strict=True):
                st.version += 1
                self.cache.put(st.user_id, st, size)
        else:
            self.invalidate([c.decode() if isinstance(c, bytes) else c for c in conflicts])
        return CommitResult(bool(ok), [c.decode() if isinstance(c, bytes) else c for c in conflicts])

    async def timers_of(self, partitions: list[int]) -> list[tuple[int, str, int]]:
        """All (instant, user, partition) timers of the given partitions (after an assignment)."""
        if not partitions:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for p in partitions:
            pipe.zrange(f"rm:timers:{p}", 0, -1, withscores=True)
        rows = await pipe.execute()
        self.round_trips += 1
        out = []
        for p, row in zip(partitions, rows, strict=True):
            for user, score in row:
                out.append((int(score), user.decode() if isinstance(user, bytes) else user, p))
        return out
