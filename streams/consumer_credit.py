"""The worker side of the consumer-credit core: batches in, state round trip, outputs out.

One :class:`ConsumerCreditRuntime` per worker process is shared by the accounts, purchases and
repayments agents (co-partitioned, so one worker owns a user's three partitions); a lock serialises
their batches so a user's state is never applied twice at once.

Order of effects per batch, which is what makes redelivery harmless:
1. decode; rejected messages become dead letters;
2. load states (cache, else one Redis round trip), run the engine in event time;
3. publish outputs and dead letters and wait for the broker (ids are deterministic, so a re-send after
   a crash is a duplicate that every consumer drops by id);
4. commit states + applied event ids + timers atomically (one round trip, version-checked);
5. only then does the agent return and Faust ack the offsets.
Redis or broker errors retry with backoff inside step 2-4; the batch is never acked half-done.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import redis.asyncio as aioredis
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from online_models.anomaly import PurchaseAnomaly
from online_models.default_model import DefaultModel
from riskmon.config import Settings
from riskmon.contract import Rejected, decode
from riskmon.engine import Engine
from riskmon.eventtime import Watermark
from riskmon.policy import Policy
from riskmon.state.accounts import AccountStore
from streams.emit import dead_letter_for
from streams.topics import USER_TOPICS, unprefixed

Publish = Callable[[list[tuple[str, str, dict[str, Any]]]], Awaitable[Any]]

log = logging.getLogger(__name__)
MODEL_KEY = "rm:model:default"


def faust_runtime_hooks(app: faust.App, prefix: str) -> dict[str, Any]:
    """``publish`` and ``assigned_partitions`` for a runtime inside a Faust worker."""
    from streams.emit import publish

    def assigned() -> list[int]:
        assignment = app.consumer.assignment() if app.consumer else set()
        return sorted({tp.partition for tp in assignment if unprefixed(tp.topic, prefix) in USER_TOPICS})

    async def send(records: list[tuple[str, str, dict[str, Any]]]) -> int:
        return await publish(app, records, prefix)

    return {"publish": send, "assigned_partitions": assigned}
ANOMALY_KEY = "rm:model:anomaly"


class ConsumerCreditRuntime:
    """Engine + store + timers of one worker (see module docstring)."""

    def __init__(self, settings: Settings, policy: Policy, client: aioredis.Redis, worker_id: str, *,
                 publish: Publish, assigned_partitions: Callable[[], list[int]]) -> None:
        self.publish = publish
        self.assigned_partitions = assigned_partitions
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.client = client
        self.store = AccountStore(client, ttl_s=settings.state_ttl_days * 86_400)
        self.engine = Engine(policy, lateness_ms=settings.allowed_lateness_s * 1000,
                             dedup_window_ms=settings.dedup_window_days * 86_400_000, worker_id=worker_id,
                             model=DefaultModel(min_labels=settings.min_labels_for_model))
        self.wm = Watermark(settings.allowed_lateness_s * 1000)
        self.lock = asyncio.Lock()
        self.heap: list[tuple[int, str]] = []
        self.timer_at: dict[str, tuple[int, int]] = {}  # user -> (instant, partition)
        self.reload_timers = True
        self.models_loaded = False
        self.batches = 0

    def on_rebalance(self) -> None:
        """Partitions moved: cached states and timers may belong to another worker now."""
        self.store.invalidate()
        self.heap.clear()
        self.timer_at.clear()
        self.reload_timers = True

    async def _load_models(self) -> None:
        blob, ablob = await self.client.mget(MODEL_KEY, ANOMALY_KEY)
        if blob:
            self.engine.model = DefaultModel.from_bytes(blob)
        if ablob:
            self.engine.anomaly = PurchaseAnomaly.from_bytes(ablob)
        self.models_loaded = True
        log.info("models restored: %s", self.engine.model.version)

    async def _load_timers(self) -> None:
        parts = self.assigned_partitions()
        self.heap.clear()
        self.timer_at.clear()
        for at, user, part in await self.store.timers_of(parts):
            self._set_timer(user, part, at)
        self.reload_timers = False

    def _set_timer(self, user: str, part: int, at: int | None) -> None:
        if at is None:
            self.timer_at.pop(user, None)
            return
        self.timer_at[user] = (at, part)
        heapq.heappush(self.heap, (at, user))

    def _due(self, until: int) -> dict[str, int]:
        due: dict[str, int] = {}
        while self.heap and self.heap[0][0] <= until:
            at, user = heapq.heappop(self.heap)
            cur = self.timer_at.get(user)
            if cur and cur[0] == at:
                due[user] = cur[1]
        return due

    async def handle(self, batch: list[faust.types.EventT]) -> None:
        """Process one batch of events from any of the three user topics."""
        valid = []
        dead = []
        for event in batch:
            msg = event.message
            ev = decode(unprefixed(msg.topic, self.prefix), msg.value, self.settings.max_message_bytes)
            if isinstance(ev, Rejected):
                dead.append(dead_letter_for(event, ev, self.prefix))
            else:
                valid.append((ev, msg.partition))
        async with self.lock:
            await self._apply(valid, dead)

    async def _apply(self, valid: list, dead: list) -> None:
        delay = 0.2
        while True:
            due: dict[str, int] = {}
            try:
                if not self.models_loaded:
                    await self._load_models()
                if self.reload_timers:
                    await self._load_timers()
                part_of = {ev.user_id: p for ev, p in valid}
                wm = Watermark(self.wm.lateness_ms, self.wm.max_seen)
                for ev, _ in valid:
                    wm.observe(ev.ts)
                due = self._due(wm.value)
                for u, p in due.items():
                    part_of.setdefault(u, p)
                states = await self.store.load(set(part_of))
                res = self.engine.process([ev for ev, _ in valid], states, wm, due)
                await self.publish(res.outputs + dead)
                timers = [(part_of[u], u, self.engine.next_timer(states[u])) for u in part_of]
                checkpoints = None
                if self.engine.labels_since_checkpoint >= self.settings.model_checkpoint_every:
                    checkpoints = {MODEL_KEY: self.engine.model.to_bytes(), ANOMALY_KEY: self.engine.anomaly.to_bytes()}
                stats = {"events_valid": res.applied, "duplicates": res.duplicates, "dead_letters": len(dead),
                         "batches": 1}
                result = await self.store.commit([states[u] for u in part_of], timers, wm.max_seen, stats,
                                                 checkpoints)
                if not result.ok:
                    log.warning("state version conflict for %d users; retrying batch", len(result.conflicts))
                    self.store.invalidate(list(part_of))
                    self._requeue(due)
                    continue
                if checkpoints:
                    self.engine.labels_since_checkpoint = 0
                for part, user, at in timers:
                    self._set_timer(user, part, at)
                self.wm.max_seen = max(wm.max_seen, result.global_max_seen)
                self.batches += 1
                return
            except (RedisError, KafkaError, OSError, ConnectionError) as exc:
                log.warning("redis or broker unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
                self.store.invalidate()
                self._requeue(due)
                self.reload_timers = True
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    def _requeue(self, due: dict[str, int]) -> None:
        for user, part in due.items():
            at = self.timer_at.get(user, (None,))[0]
            if at is not None:
                heapq.heappush(self.heap, (at, user))
            self.timer_at.setdefault(user, (at or 0, part))
