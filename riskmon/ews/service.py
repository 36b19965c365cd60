"""EwsService: the EWS core over Redis, one round trip to load a batch and one to save it.

Why pickle for the state: the state holds River detectors (Page-Hinkley, HalfSpaceTrees), which have no
stable serialisation format of their own; pickling them is what River documents for persistence. The
bytes are written only by this module into our own Redis and carry a format prefix (``EWS2``), so a
schema change starts fresh states instead of mis-reading old ones. ``EWS1`` states (a River
HalfSpaceTrees inside, before ``FlatHST``) are still read: their forest is converted as it is unpickled
(``ChangeAnomaly.__setstate__``); a build that only knows ``EWS1`` starts an ``EWS2`` state fresh.
Unpickling runs code named in the payload, so the Redis instance must not be writable by untrusted
clients (use ACLs/TLS - the same requirement as for every other piece of riskmon state).

Why one round trip each way: a batch touches up to hundreds of enterprises; per-key GET/SET would cost
hundreds of network round trips per batch. Loading is one non-transactional pipeline (MGET of the
states + HGETALL of the batch's industry peer tables); saving is one MULTI/EXEC pipeline, so a crash
leaves either the old or the new state of every enterprise, never half - and because processed event
ids live inside each state, a redelivered batch is recognised and changes nothing.
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING, Any

from riskmon.contract import BusinessMetric
from riskmon.ews.monitor import EnterpriseMonitor, EnterpriseState, Output
from riskmon.ews.peers import PeerBoard
from riskmon.ews.thresholds import EwsPolicy
from riskmon.state.lru import BudgetedLRU

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

STATE_PREFIX = "ews:state:"
PEERS_PREFIX = "ews:peers:"
INDEX_KEY = "ews:index"
FORMAT = b"EWS2"
READABLE_FORMATS = (FORMAT, b"EWS1")  # EWS1: the anomaly forest is a River HalfSpaceTrees (converted)
SNAPSHOT_CHUNK = 500


STATS_KEY = "rm:stats"
# In-memory size of a cached enterprise state per byte of its pickle. With the flat HalfSpaceTrees (EWS2)
# the pickle shrank more than the memory: tracemalloc over the bench's 200 enterprises gives 33 KB in
# memory for an 8.2 KB pickle (4.06x), and 4.4x for 400-day histories; rounded up, the budget is a ceiling.
MEMORY_PER_BLOB_BYTE = 4.5
NEW_STATE_BYTES = 64 * 1024  # an enterprise not stored yet, until its first save says better


def encode_state(state: EnterpriseState) -> bytes:
    """Serialise one enterprise's state (format prefix + pickle)."""
    return FORMAT + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def decode_state(blob: bytes | None) -> EnterpriseState | None:
    """Deserialise a state; None for a missing, foreign-format or corrupt blob."""
    if not blob or not blob.startswith(READABLE_FORMATS):
        return None
    try:
        state = pickle.loads(blob[len(FORMAT):])  # noqa: S301 - our own trusted store; all prefixes are 4 bytes
    except Exception:  # noqa: BLE001 - a corrupt blob must not stop the partition
        log.warning("ews: undecodable state blob (%d bytes); starting fresh", len(blob))
        return None
    return state if isinstance(state, EnterpriseState) else None


def _binary_client(client: redis.asyncio.Redis) -> redis.asyncio.Redis:
    """The same server through a pool that returns bytes (state blobs are binary pickles)."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    if not kwargs.get("decode_responses"):
        return client
    import redis.asyncio as aioredis

    kwargs["decode_responses"] = False
    return aioredis.Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))


class EwsService:
    """Applies batches of business metrics to Redis-held enterprise states; returns output records."""

    def __init__(self, redis_client: redis.asyncio.Redis, policy: dict, state_ttl_s: int,
                 cache_bytes: int = 128 * 2**20) -> None:
        self.redis = _binary_client(redis_client)
        self.policy = EwsPolicy.from_dict(policy)
        self.state_ttl_s = int(state_ttl_s)
        self.monitor = EnterpriseMonitor(self.policy)
        # States of this worker's enterprises stay in memory between batches (a partition is owned by one
        # worker); Redis is written through every batch. Unpickling ~40 KB per enterprise per batch was
        # the worker's hottest spot in a replay. ``invalidate`` on rebalance or error.
        # Bounded by an estimated memory budget (~36 KB per enterprise: 10k enterprises would be 360 MB);
        # the least recently used go first and are read back in their next batch's one load.
        self.cache: BudgetedLRU[EnterpriseState] = BudgetedLRU(cache_bytes)

    def invalidate(self) -> None:
        """Forget cached states (partitions moved, or a write failed)."""
        self.cache.clear()

    async def handle_batch(self, events: list[BusinessMetric]) -> list[tuple[str, str, dict]]:
        """Apply a batch in event order; returns ``(topic, key, record)`` for ``alerts`` / ``enterprise-health``.

        One round trip loads every state and peer table the batch needs; one MULTI/EXEC writes back the
        changed states (with their processed event ids), the peer entries and the index, all with TTLs.
        """
        if not events:
            return []
        ents = list(dict.fromkeys(e.enterprise_id for e in events))
        industries = sorted({e.industry for e in events})
        # taken before the await: an invalidate() meanwhile must not turn a cached state into a fresh one
        cached = {e: self.cache[e] for e in ents if e in self.cache}
        missing = [e for e in ents if e not in cached]
        pipe = self.redis.pipeline(transaction=False)
        if missing:
            pipe.mget([STATE_PREFIX + e for e in missing])
        for ind in industries:
            pipe.hgetall(PEERS_PREFIX + ind)
        loaded = await pipe.execute()
        blobs, peer_tables = (loaded[0], loaded[1:]) if missing else ([], loaded)

        peers = PeerBoard(self.policy.peer_stale_days)
        for ind, table in zip(industries, peer_tables, strict=True):
            entries = {}
            for k, v in (table or {}).items():
                parsed = PeerBoard.decode(v)
                if parsed is not None:
                    entries[k.decode() if isinstance(k, bytes) else k] = parsed
            peers.load(ind, entries)
        self.monitor.peers = peers

        states: dict[str, EnterpriseState] = cached
        blob_size: dict[str, int] = {}
        for ent, blob in zip(missing, blobs, strict=True):
            st = decode_state(blob)
            if st is not None:
                states[ent] = st
                blob_size[ent] = len(blob)
        first_industry = {}
        for e in events:
            first_industry.setdefault(e.enterprise_id, e.industry)
        before = {ent: st.events for ent, st in states.items()}

        out: list[Output] = []
        for ev in sorted(events, key=lambda e: e.ts):
            st = states.get(ev.enterprise_id)
            if st is None:
                st = states[ev.enterprise_id] = self.monitor.new_state(ev.enterprise_id, first_industry[ev.enterprise_id])
            out.extend(self.monitor.apply(st, ev))

        changed = [ent for ent, st in states.items() if st.events != before.get(ent, 0)]
        applied = sum(st.events - before.get(ent, 0) for ent, st in states.items())
        if changed or peers.dirty:
            tx = self.redis.pipeline(transaction=True)
            # the counter moves in the same transaction as the states, so each event counts once; a batch
            # of nothing but duplicates writes nothing (and is not counted)
            tx.hincrby(STATS_KEY, "metrics_valid", applied)
            for ent in changed:
                blob = encode_state(states[ent])
                blob_size[ent] = len(blob)
                tx.set(STATE_PREFIX + ent, blob, ex=self.state_ttl_s)
            for ind, entries in peers.dirty.items():
                tx.hset(PEERS_PREFIX + ind, mapping={e: PeerBoard.encode(v) for e, v in entries.items()})
                tx.expire(PEERS_PREFIX + ind, self.state_ttl_s)
            if changed:
                tx.sadd(INDEX_KEY, *changed)
                tx.expire(INDEX_KEY, self.state_ttl_s)
            try:
                await tx.execute()
            except BaseException:
                self.invalidate()
                raise
        for ent, st in states.items():
            known = blob_size.get(ent)
            size = int(known * MEMORY_PER_BLOB_BYTE) if known else self.cache.size_of(ent, NEW_STATE_BYTES)
            self.cache.put(ent, st, size)
        return out

    async def load_state(self, enterprise_id: str) -> EnterpriseState | None:
        """One enterprise's stored state (for inspection and tests)."""
        return decode_state(await self.redis.get(STATE_PREFIX + enterprise_id))

    async def snapshot(self) -> list[dict]:
        """Every enterprise's current health record (the rows of ``enterprises.jsonl``), sorted by id."""
        members = sorted(m.decode() if isinstance(m, bytes) else m for m in await self.redis.smembers(INDEX_KEY))
        records: list[dict[str, Any]] = []
        for i in range(0, len(members), SNAPSHOT_CHUNK):
            chunk = members[i:i + SNAPSHOT_CHUNK]
            for blob in await self.redis.mget([STATE_PREFIX + e for e in chunk]):
                st = decode_state(blob)
                if st is not None and st.health is not None:
                    records.append(st.health)
        return records
