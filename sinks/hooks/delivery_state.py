"""Delivery state in Redis: who is sending which (destination, action, dedup_key), and what is done.

Why Redis and why a lease: a dedup key must reach each destination at most once even when the
worker restarts, and several workers may run. Each delivery key ``<prefix>sent:<dest>:<action>:<dedup_key>``
moves through:

- absent -> ``pending|<owner>|<lease_until_ms>``: :meth:`claim` (atomic, Lua). Only the claimer sends.
  The owner renews the lease before every attempt.
- ``pending`` -> ``done|<ms>|<meta json>``: :meth:`complete` after a 2xx. Later claims see ``done`` and
  the delivery is counted as deduplicated. Keys expire after ``dedup_ttl_days``.
- ``pending`` -> absent: :meth:`release` when the delivery was dead-lettered (so a replay may retry).
- a ``pending`` whose lease has expired means its owner died between claim and mark. The next claim
  takes it over and the resend carries ``X-Riskmon-Redelivery: 1`` plus the same dedup key: the one
  case where a receiver can see a delivery twice, and it is flagged, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

CLAIMED = "claimed"  # fresh claim: send
TAKEOVER = "takeover"  # previous owner's lease expired: send, flagged as possible redelivery
DONE = "done"  # delivered before: skip
BUSY = "busy"  # another live owner is sending: retry after its lease

_CLAIM = """
local v = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[2])
local val = 'pending|' .. ARGV[1] .. '|' .. string.format('%d', now + tonumber(ARGV[3]))
if not v then
  redis.call('SET', KEYS[1], val, 'PX', ARGV[4])
  return {1, ''}
end
if string.sub(v, 1, 5) == 'done|' then return {0, v} end
local lease = string.match(v, '|(%d+)$')
if lease == nil or tonumber(lease) <= now then
  redis.call('SET', KEYS[1], val, 'PX', ARGV[4])
  return {2, v}
end
return {3, lease}
"""

_RENEW = """
local v = redis.call('GET', KEYS[1])
local head = 'pending|' .. ARGV[1] .. '|'
if v and string.sub(v, 1, string.len(head)) == head then
  redis.call('SET', KEYS[1], head .. string.format('%d', tonumber(ARGV[2]) + tonumber(ARGV[3])), 'KEEPTTL')
  return 1
end
return 0
"""

_RELEASE = """
local v = redis.call('GET', KEYS[1])
local head = 'pending|' .. ARGV[1] .. '|'
if v and string.sub(v, 1, string.len(head)) == head then
  if ARGV[2] == 'expire' then
    redis.call('SET', KEYS[1], head .. '0', 'KEEPTTL')
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Claim:
    """Result of :meth:`DeliveryState.claim`; ``lease_until_ms`` is set when ``BUSY``."""

    status: str
    lease_until_ms: int = 0


@dataclass(frozen=True)
class Record:
    """The stored state of one delivery key."""

    done: bool
    meta: dict[str, Any] | None = None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class DeliveryState:
    """Claims and marks of deliveries for one owner (one dispatcher instance)."""

    def __init__(self, redis_client: Any, owner: str, prefix: str = "hooks:", retention_ms: int = 30 * 86_400_000) -> None:
        if "|" in owner:
            raise ValueError("owner must not contain '|'")
        self.redis = redis_client
        self.owner = owner
        self.prefix = prefix
        self.retention_ms = retention_ms
        self._claim = redis_client.register_script(_CLAIM)
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)

    def key(self, dest: str, action: str, dedup_key: str) -> str:
        """The Redis key of one delivery."""
        return f"{self.prefix}sent:{dest}:{action}:{dedup_key}"

    async def claim(self, dest: str, action: str, dedup_key: str, now_ms: int, lease_ms: int) -> Claim:
        """Atomically claim a delivery for this owner (see module doc for the outcomes)."""
        code, info = await self._claim(
            keys=[self.key(dest, action, dedup_key)], args=[self.owner, now_ms, lease_ms, self.retention_ms]
        )
        code = int(code)
        if code == 1:
            return Claim(CLAIMED)
        if code == 2:
            return Claim(TAKEOVER)
        if code == 0:
            return Claim(DONE)
        return Claim(BUSY, int(_text(info)))

    async def renew(self, dest: str, action: str, dedup_key: str, now_ms: int, lease_ms: int) -> bool:
        """Extend this owner's lease; False when the claim was lost (taken over or gone)."""
        res = await self._renew(keys=[self.key(dest, action, dedup_key)], args=[self.owner, now_ms, lease_ms])
        return int(res) == 1

    async def complete(self, dest: str, action: str, dedup_key: str, now_ms: int, meta: dict[str, Any] | None) -> None:
        """Mark delivered (kept ``retention_ms``); ``meta`` is returned to later resolves."""
        value = f"done|{now_ms}|".encode() + orjson.dumps(meta)
        await self.redis.set(self.key(dest, action, dedup_key), value, px=self.retention_ms)

    async def release(self, dest: str, action: str, dedup_key: str, *, maybe_delivered: bool = False) -> None:
        """Give up this owner's claim: delete it, or (``maybe_delivered``) expire its lease so the next
        claimer takes over with the redelivery flag."""
        await self._release(
            keys=[self.key(dest, action, dedup_key)], args=[self.owner, "expire" if maybe_delivered else "delete"]
        )

    async def get(self, dest: str, action: str, dedup_key: str) -> Record:
        """The state of a delivery (``done`` with its meta, or not done)."""
        v = await self.redis.get(self.key(dest, action, dedup_key))
        if v is None:
            return Record(False)
        raw = v if isinstance(v, bytes) else str(v).encode()
        if not raw.startswith(b"done|"):
            return Record(False)
        _, _, rest = raw[5:].partition(b"|")
        try:
            meta = orjson.loads(rest) if rest else None
        except orjson.JSONDecodeError:
            meta = None
        return Record(True, meta if isinstance(meta, dict) else None)
