"""Which layout the account states in Redis are stored in, and the one-off migration between layouts.

Layout 1 (riskmon until December 2026): ``rm:u:<user>`` a hash {v: version, s: state blob}.
Layout 2 (now): ``rm:u:<user>`` a string ``<version>|<state blob>``, read for many users with one MGET
(why: ``riskmon.state.accounts``).

Why a marker key and a check before a worker reads any state: a layout-2 worker reading layout-1 data
would not fail loudly at the read (MGET answers nil for a hash, which reads as "no state yet": decisions
would be made, and published, on empty accounts), only at the commit (GETRANGE on a hash: WRONGTYPE).
So a worker checks ``rm:layout`` at start (and, if Redis was down then, before its first state read) and
stops unless it says 2; a Redis with no account hashes (a fresh one) is marked on the spot, one with
hashes needs ``riskmon state migrate`` first (workers stopped: an old worker would write hashes again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import redis
import redis.asyncio as aioredis

LAYOUT_KEY = "rm:layout"
CURRENT_LAYOUT = 2
ACCOUNT_PREFIX = "rm:u:"  # + user id: one account state (every reader and writer spells the key from here)
ACCOUNT_PATTERN = ACCOUNT_PREFIX + "*"

# Per key of a batch: a layout-1 hash becomes the layout-2 string with the same version, blob and
# remaining TTL; anything else (already converted, or gone since the scan) is left alone. Atomic per
# batch, so an interrupted migration leaves every key in one layout or the other, and a rerun finishes.
MIGRATE_LUA = r"""
local done = 0
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local vs = redis.call('HMGET', key, 'v', 's')
    local ttl = redis.call('PTTL', key)
    redis.call('DEL', key)
    if vs[2] then
      redis.call('SET', key, (vs[1] or '0') .. '|' .. vs[2])
      if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    end
    done = done + 1
  end
end
return done
"""


class LayoutError(RuntimeError):
    """The account states in Redis are not in the layout this build reads."""


def stored_layout(client: redis.Redis) -> int | None:
    """The layout ``rm:layout`` records, or None when it records none (fresh, or layout 1)."""
    raw = client.get(LAYOUT_KEY)
    return int(raw) if raw is not None else None


def _old_keys(client: redis.Redis, count: int = 5000) -> Iterator[bytes]:
    return client.scan_iter(match=ACCOUNT_PATTERN, count=count, _type="hash")


LAYOUT_1_FOUND = ("Redis holds account states in layout 1 (hashes rm:u:<user>); stop every worker and run "
                  "`riskmon state migrate` once, then start the workers again")


def _is_current(raw: bytes | None) -> bool:
    """True when ``rm:layout`` says this build's layout, False when unset; raises for another one."""
    if raw is None:
        return False
    if int(raw) == CURRENT_LAYOUT:
        return True
    raise LayoutError(f"Redis records account-state layout {int(raw)} ({LAYOUT_KEY}); this build reads "
                      f"layout {CURRENT_LAYOUT} only: run the riskmon version that wrote it")


def check_layout(client: redis.Redis) -> int:
    """Check (and on a fresh Redis, record) the layout; :class:`LayoutError` says what to do otherwise.

    The scan for layout-1 hashes runs only while no marker is set: once per Redis, not at every start.
    """
    if _is_current(client.get(LAYOUT_KEY)):
        return CURRENT_LAYOUT
    if next(iter(_old_keys(client)), None) is not None:
        raise LayoutError(LAYOUT_1_FOUND)
    client.set(LAYOUT_KEY, CURRENT_LAYOUT, nx=True)
    return CURRENT_LAYOUT


async def ensure_layout(client: aioredis.Redis) -> int:
    """:func:`check_layout` on the worker's asyncio client (its first state read, when the start-time
    check could not reach Redis)."""
    if _is_current(await client.get(LAYOUT_KEY)):
        return CURRENT_LAYOUT
    async for _ in client.scan_iter(match=ACCOUNT_PATTERN, count=5000, _type="hash"):
        raise LayoutError(LAYOUT_1_FOUND)
    await client.set(LAYOUT_KEY, CURRENT_LAYOUT, nx=True)
    return CURRENT_LAYOUT


def count_old(client: redis.Redis) -> int:
    """How many layout-1 account hashes Redis holds (a full SCAN: for the CLI, not the hot path)."""
    return sum(1 for _ in _old_keys(client))


def migrate(client: redis.Redis, *, batch: int = 500,
            progress: Callable[[int], None] | None = None) -> int:
    """Convert every layout-1 account hash to layout 2, then record layout 2. Returns keys converted.

    Idempotent: a rerun converts what is left (nothing, once done) and sets the marker. ``progress`` is
    called with the number of keys converted by each batch.
    """
    script = client.register_script(MIGRATE_LUA)
    converted = 0
    chunk: list[bytes] = []

    def flush() -> None:
        nonlocal converted
        n = int(script(keys=chunk))
        converted += n
        if progress is not None:
            progress(n)
        chunk.clear()

    for key in _old_keys(client):
        chunk.append(key)
        if len(chunk) >= batch:
            flush()
    if chunk:
        flush()
    client.set(LAYOUT_KEY, CURRENT_LAYOUT)
    return converted
