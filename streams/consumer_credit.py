"""The worker side of the consumer-credit core: batches in, state round trip, outputs out.

One :class:`ConsumerCreditRuntime` per worker process takes the batches of the consumer-credit agent,
one stream over the accounts, purchases and repayments topics (co-partitioned, so one worker owns a
user's three partitions; ``streams/agents/consumer_credit.py``). A lock serialises batches (the agent's
and the timer tick's) so a user's state is never applied twice at once.

Order of effects per batch, which is what makes redelivery harmless:
1. decode; rejected messages become dead letters; valid ones wait in an event-time merge buffer (their
   offsets stay uncommitted) until every backlogged input partition has been read past their time, so
   events of the three topics are applied in event-time order however fast each topic is consumed;
2. load states (cache, else one Redis round trip), run the engine in event time;
3. publish outputs and dead letters and wait for the broker (ids are deterministic, so a re-send after
   a crash is a duplicate that every consumer drops by id);
4. commit states + applied event ids + timers atomically (one round trip, version-checked);
5. only then are the applied messages acked, so Faust may commit their offsets.
Redis or broker errors retry with backoff inside step 2-4; the batch is never acked half-done.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
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
from riskmon.policy import Policy
from riskmon.state.accounts import AccountStore
from riskmon.state.layout import LayoutError, ensure_layout
from streams.emit import dead_letter_for
from streams.gc_pauses import freeze_long_lived_objects
from streams.latency_trace import LatencyTrace
from streams.topics import USER_TOPICS, unprefixed

TOPIC_RANK = {"accounts": 0, "purchases": 1, "repayments": 2}  # same-instant order: open, buy, pay
Publish = Callable[[list[tuple[str, str, dict[str, Any]]]], Awaitable[Any]]

log = logging.getLogger(__name__)
MODEL_KEY = "rm:model:default"


def _log_failed_batch(task: asyncio.Future[None]) -> None:
    """A failed batch's error is raised to the agent by its next submit; log it now in case none comes."""
    if not task.cancelled() and task.exception() is not None:
        log.error("applying a batch failed: %r", task.exception())


PartitionInfo = tuple[tuple[str, int], int | None, int | None]  # ((topic, partition), highwater, committed)


def faust_runtime_hooks(app: faust.App, prefix: str) -> dict[str, Any]:
    """``publish``, ``assigned_partitions`` and ``input_partitions`` for a runtime in a Faust worker."""
    from streams.emit import publish

    def user_tps() -> list[Any]:
        assignment = app.consumer.assignment() if app.consumer else set()
        return [tp for tp in assignment if unprefixed(tp.topic, prefix) in USER_TOPICS]

    def assigned() -> list[int]:
        return sorted({tp.partition for tp in user_tps()})

    def inputs() -> list[PartitionInfo]:
        consumer = app.consumer
        out = []
        for tp in user_tps():
            try:
                hw = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - not fetched yet: unknown
                hw = None
            out.append(((unprefixed(tp.topic, prefix), tp.partition), hw, consumer._committed_offset.get(tp)))
        return out

    async def send(records: list[tuple[str, str, dict[str, Any]]]) -> int:
        return await publish(app, records, prefix)

    return {"publish": send, "assigned_partitions": assigned, "input_partitions": inputs}
ANOMALY_KEY = "rm:model:anomaly"


class ConsumerCreditRuntime:
    """Engine + store + timers of one worker (see module docstring)."""

    def __init__(self, settings: Settings, policy: Policy, client: aioredis.Redis, worker_id: str, *,
                 publish: Publish, assigned_partitions: Callable[[], list[int]],
                 input_partitions: Callable[[], list[PartitionInfo]] = list, freeze_gc: bool = False,
                 layout_checked: bool = False, on_fatal: Callable[[BaseException], None] | None = None) -> None:
        self.publish = publish
        self.assigned_partitions = assigned_partitions
        self.input_partitions = input_partitions
        self.part_seen: dict[tuple[str, int], int] = {}  # max event time read per input partition
        self.part_next: dict[tuple[str, int], int] = {}  # next offset to read per input partition
        self.pending: list[tuple] = []  # merge buffer: (ts, topic rank, partition, offset, seq, event, ack entry)
        self.ack_queues: dict[tuple[str, int], deque[list[Any]]] = {}  # per partition: [offset, event, done]
        self._seq = 0
        self.applied_max = 0
        self.wm_value = 0
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.client = client
        self.store = AccountStore(client, ttl_s=settings.state_ttl_days * 86_400,
                                  cache_bytes=settings.state_cache_mb * 2**20)
        self.engine = Engine.for_settings(settings, policy, worker_id)
        self.lock = asyncio.Lock()
        self.heap: list[tuple[int, str]] = []
        self.timer_at: dict[str, tuple[int, int]] = {}  # user -> (instant, partition)
        self.reload_timers = True
        self.models_loaded = False
        self.layout_checked = layout_checked  # riskmon.state.layout: checked once before any state read
        self.on_fatal = on_fatal  # told of an error no retry can fix, before it is raised (a worker stops)
        self.batches = 0
        self.generation = 0  # bumped by every rebalance
        self.trace = LatencyTrace() if settings.trace_latency else None
        self.freeze_gc = freeze_gc  # a worker process (not a test driving the runtime in-process)
        self.held = 0  # events taken in but not applied yet because more of a full batch is in the broker
        self.takes_held = 0  # how many takes were held so (the latency trace reports it)
        self.held_dead: list = []
        self.inflight: asyncio.Future[None] | None = None  # the task applying batches (see submit)
        self.taken = asyncio.Event()  # set when that task takes in what is held

    def on_rebalance(self) -> None:
        """Partitions moved: cached states and timers may belong to another worker now.

        Faust then seeks every assigned partition back to its committed offset, so whatever was buffered
        or is in flight is read again; ``generation`` tells an in-flight batch to drop itself.
        """
        self.generation += 1
        self.part_seen.clear()
        self.part_next.clear()
        self.pending.clear()  # not acked: the partitions' new owner reads them again
        self._take_held()  # held takes are not acked either: read again
        self.ack_queues.clear()
        self.store.invalidate()
        self.heap.clear()
        self.timer_at.clear()
        self.reload_timers = True

    async def _check_layout(self) -> None:
        try:
            await ensure_layout(self.client)
        except LayoutError as exc:
            log.critical("%s", exc)
            if self.on_fatal is not None:
                self.on_fatal(exc)
            raise
        self.layout_checked = True

    async def _load_models(self) -> None:
        blob, ablob = await self.client.mget(MODEL_KEY, ANOMALY_KEY)
        try:
            if blob:
                self.engine.model = DefaultModel.from_bytes(blob, self.engine.model.scorecard)
            if ablob:
                self.engine.anomaly = PurchaseAnomaly.from_bytes(ablob)
        except ValueError as exc:  # a checkpoint from an older build: keep learning from the scorecard
            log.warning("model checkpoint not restored (%s); starting from the scorecard prior", exc)
        self.models_loaded = True
        log.info("models restored: %s", self.engine.model.version)
        if self.freeze_gc:
            freeze_long_lived_objects()  # the restored trees live as long as the process

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

    def _changed_timers(self, part_of: dict[str, int], states: dict[str, Any]) -> list[tuple[int, str, int | None]]:
        """(partition, user, next instant or None) of the batch's users whose next timer moved.

        Why only those: ``timer_at`` mirrors the stored timers (it is loaded from them and changed only
        after a commit wrote them), and most events leave a user's next timer where it was (measured:
        77 % of 71.6k timer writes over a 100k-event replay were the stored value again). Writing those
        cost a ZADD each in the commit script and a stale duplicate on the heap.
        """
        out = []
        timer_at, next_timer = self.timer_at, self.engine.next_timer
        for u, part in part_of.items():
            at = next_timer(states[u])
            cur = timer_at.get(u)
            if (cur[0] if cur is not None else None) != at:
                out.append((part, u, at))
        return out

    def _due(self, until: int) -> dict[str, int]:
        due: dict[str, int] = {}
        while self.heap and self.heap[0][0] <= until:
            at, user = heapq.heappop(self.heap)
            cur = self.timer_at.get(user)
            if cur and cur[0] == at:
                due[user] = cur[1]
        return due

    async def handle(self, batch: list[faust.types.EventT]) -> None:
        """:meth:`submit` a batch and wait until it is applied (or held): what tests and tools call."""
        await self.submit(batch)
        await self.settle()

    async def submit(self, batch: list[faust.types.EventT]) -> None:
        """Take one batch from any of the three user topics into the event-time merge buffer.

        Valid events are held (their Kafka message is not acked) until every input partition that still
        has a backlog has been read past their event time; then they are applied in event-time order,
        whatever topic they came from. Dead letters go out with the next applied batch.

        Batches fill up under a backlog: when the rest of a full batch (``batch_size``) is already in
        the broker, unread by this worker, the events are taken in and applied with the next take.
        Why: Faust's ``take_events`` ends a batch after ``batch_within_s`` even under a backlog (it only
        buffers inside that window), so a short window meant small batches and more round trips and CPU
        per message (measured: 350 vs 279 µs per message at 10 vs 50 ms). Below capacity there is no
        such backlog and a batch is applied at once, so a short window keeps its low latency. The
        timer tick applies whatever is held, should the rest never come.

        A full batch (a backlog) is applied by a task, and this returns without waiting for it. Why:
        ``take_events`` fills no buffer while the agent is busy, so when the agent awaited each batch the
        worker sat idle through its publish and commit round trips (8 % of a backlogged run, measured).
        While it is in flight, takes are held, and the task applies them as the next batch when it is
        done; once a full batch is held the agent waits until the task has taken it in. A smaller batch
        (below capacity) is awaited as before: what arrives meanwhile waits in Faust and becomes the
        next batch. Returning early there made batches one take window long (measured at 2.5k/s per
        worker: batches of 14-25 events instead of ~130, and two workers fell behind at 5k/s). Nothing
        changes for redelivery: events are acked only after their commit, in offset order.
        """
        self.held_dead.extend(self._ingest(batch))
        self.held += len(batch)
        while self._applying():
            if self.held < self.settings.batch_size:
                return  # the task takes these in when its batch is done
            self.taken.clear()  # a full batch waits: back-pressure on the agent, one batch ahead at most
            waiter = asyncio.ensure_future(self.taken.wait())
            try:
                await asyncio.wait([waiter, self.inflight], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[list-item]
            finally:
                waiter.cancel()
        if self._fill_held():
            self.takes_held += 1
            return
        await self.settle()  # a finished task's error is raised here
        full = self.held >= self.settings.batch_size
        self.inflight = asyncio.ensure_future(self._apply_held())
        if full:
            self.inflight.add_done_callback(_log_failed_batch)  # nobody awaits it until the next submit
        else:
            await self.settle()  # below capacity: the next batch gathers while this one is applied

    def _fill_held(self) -> bool:
        """Hold what is taken in: a full batch is not in yet but the rest of one is in the broker."""
        return self.held < self.settings.batch_size and self.held + self.unread() >= self.settings.batch_size

    def _applying(self) -> bool:
        return self.inflight is not None and not self.inflight.done()

    async def _apply_held(self) -> None:
        """Apply what is held, then what was taken in meanwhile, until nothing is (or a fill holds it)."""
        while True:
            async with self.lock:
                dead = self._take_held()
                self.taken.set()
                await self._release(dead)
            if not self.held or self._fill_held():
                return

    async def settle(self) -> None:
        """Wait until what was submitted is applied (or held to fill a batch); a failure is raised here.

        The task stays ``inflight`` until it is done, so the timer tick keeps off meanwhile (it would find
        the lock still free before the task's first step and apply the held events itself).
        """
        task = self.inflight
        if task is not None:
            try:
                await task
            finally:
                if self.inflight is task:
                    self.inflight = None

    def cancel_inflight(self) -> None:
        """Stop the batch in flight (the agent is stopping). It is not acked, so it is read again."""
        task, self.inflight = self.inflight, None
        if task is not None and not task.done():
            task.cancel()

    def _take_held(self) -> list:
        dead, self.held_dead, self.held = self.held_dead, [], 0
        return dead

    def unread(self) -> int:
        """Messages in the broker this worker has not read yet, over its assigned user-topic partitions."""
        return sum(hw - nxt for _, hw, nxt in self._read_positions() if hw is not None and hw > nxt)

    def _read_positions(self) -> Iterator[tuple[tuple[str, int], int | None, int]]:
        """(partition, highwater or None if not fetched yet, next offset to read) of each assigned input
        partition: what both the merge horizon and the batch filling judge a backlog by."""
        for key, highwater, committed in self.input_partitions():
            yield key, highwater, self.part_next.get(key, committed or 0)

    def _ingest(self, batch: list[faust.types.EventT]) -> list:
        """Bookkeeping and decoding of a batch: valid events into the merge buffer; the dead letters."""
        dead = []
        for event in batch:
            msg = event.message
            topic = unprefixed(msg.topic, self.prefix)
            key = (topic, msg.partition)
            self.part_next[key] = max(self.part_next.get(key, 0), msg.offset + 1)
            # Every message holds one extra reference until it is done (applied and committed, or
            # dead-lettered) and every earlier offset of its partition is done: Faust commits the highest
            # contiguous acked offset, so acks must come in offset order (late events are applied early).
            msg.incref()
            entry = [msg.offset, event, False]
            if self.trace is not None:
                entry.append((time.time(), msg.timestamp))
            self.ack_queues.setdefault(key, deque()).append(entry)
            ev = decode(topic, msg.value, self.settings.max_message_bytes)
            if isinstance(ev, Rejected):
                dead.append((dead_letter_for(event, ev, self.prefix), entry))
                continue
            self.part_seen[key] = max(self.part_seen.get(key, 0), ev.ts)
            self._seq += 1
            heapq.heappush(self.pending, (ev.ts, TOPIC_RANK[topic], msg.partition, msg.offset, self._seq, ev, entry))
        return dead

    async def tick(self) -> None:
        """Release buffered events and fire timers once other partitions' backlogs have cleared."""
        if self.lock.locked() or self._applying():
            return
        horizon = self.horizon()
        if self.held or (self.pending and self.pending[0][0] <= horizon) or (
                self.heap and self.heap[0][0] <= self.timeline_watermark(self.watermark())):
            async with self.lock:
                await self._release(self._take_held())

    def horizon(self) -> int | float:
        """Events up to this time may be applied: every backlogged input partition was read past it.

        Topics are consumed at different paces (a replay can read purchases days of event time ahead of
        repayments), so it is the minimum, over assigned input partitions with unread messages, of the
        latest event time read there. A partition with no backlog cannot hold it back (whatever it sends
        next is newer, or late by contract); a backlogged one not read yet holds everything.
        """
        holds = [self.part_seen.get(key, 0) for key, highwater, nxt in self._read_positions()
                 if highwater is None or highwater > nxt]
        if len(self.pending) > self.settings.merge_buffer_max:
            return self.pending[0][0]  # bounded memory: degrade to arrival order for the oldest event
        return min(holds) if holds else float("inf")

    def watermark(self) -> int:
        """Applied event time less the allowed lateness (monotonic)."""
        if self.applied_max:
            self.wm_value = max(self.wm_value, self.applied_max - self.settings.allowed_lateness_s * 1000)
        return self.wm_value

    def timeline_watermark(self, wm: int) -> int:
        """How far account timelines (collection steps, labels, dedup pruning) may run: ``wm``, but never
        past what every backlogged input partition has been read to, less the allowed lateness.

        Why: after a rebalance a worker can be handed a partition whose committed offset is days of event
        time behind what this worker has applied elsewhere. Its users' timers must not fire at this
        worker's watermark before their own unread repayments are applied (a payer would be frozen), and
        their dedup window must not be pruned past events still to be read (they would be refused).
        """
        horizon = self.horizon()
        if horizon == float("inf"):
            return wm
        return min(wm, int(horizon) - self.settings.allowed_lateness_s * 1000)

    async def _release(self, dead: list) -> None:
        horizon = self.horizon()
        released = []
        while self.pending and self.pending[0][0] <= horizon:
            item = heapq.heappop(self.pending)
            released.append(item)
        t_released = time.time()
        if not await self._apply([(it[5], it[2], it[6]) for it in released], [d for d, _ in dead]):
            return  # partitions moved mid-batch: nothing is acked, every partition is re-read
        for it in released:
            self.applied_max = max(self.applied_max, it[0])
            it[6][2] = True
        for _, entry in dead:
            entry[2] = True
        for queue in self.ack_queues.values():
            while queue and queue[0][2]:
                queue.popleft()[1].ack()  # in offset order: the offset becomes committable
        if self.trace is not None:
            await self._trace(released, t_released)

    async def _apply(self, valid: list, dead: list) -> bool:
        """Apply a batch and commit it; False if a rebalance overtook it (then nothing was committed).

        Why drop rather than finish: a batch stuck in the Redis retry loop across a rebalance would apply
        events of partitions another worker now reads, with this worker's watermark, pruning those
        accounts' dedup windows past events the new owner still has to read (seen: 111 refused).
        """
        delay = 0.2
        gen = self.generation
        while True:
            due: dict[str, int] = {}
            if self.generation != gen:
                return self._drop_overtaken_batch()
            try:
                if not self.layout_checked:
                    await self._check_layout()  # a LayoutError is not retried: it fails the batch
                if not self.models_loaded:
                    await self._load_models()
                if self.reload_timers:
                    await self._load_timers()
                part_of = {ev.user_id: p for ev, p, _ in valid}
                max_seen = max([self.applied_max] + [ev.ts for ev, _, _ in valid])
                wm = self.timeline_watermark(max(self.watermark(), max_seen - self.settings.allowed_lateness_s * 1000))
                due = self._due(wm)
                for u, p in due.items():
                    part_of.setdefault(u, p)
                t0 = time.perf_counter()
                states = await self.store.load(set(part_of))
                t1, cold, fetch_s = time.perf_counter(), self.store.last_fetched, self.store.last_fetch_s
                res = self.engine.process([ev for ev, _, _ in valid], states, wm, due)
                t2 = time.perf_counter()
                await self.publish(res.outputs + dead)
                t3 = time.perf_counter()
                timers = self._changed_timers(part_of, states)
                checkpoints = None
                if self.engine.labels_since_checkpoint >= self.settings.model_checkpoint_every:
                    checkpoints = {MODEL_KEY: self.engine.model.to_bytes(), ANOMALY_KEY: self.engine.anomaly.to_bytes()}
                stats = {"events_valid": res.applied, "duplicates": res.duplicates, "dead_letters": len(dead),
                         "batches": 1}
                if self.generation != gen:  # a rebalance while publishing
                    return self._drop_overtaken_batch()
                result = await self.store.commit([states[u] for u in part_of], timers, max_seen, stats,
                                                 checkpoints)
                if not result.ok:
                    log.warning("state version conflict for %d users; retrying batch", len(result.conflicts))
                    self.store.invalidate(list(part_of))
                    self._requeue(due)
                    continue
                if checkpoints:
                    self.engine.labels_since_checkpoint = 0
                if self.trace is not None:
                    self.trace.record_batch(len(valid), len(part_of), cold,
                                            (t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3), self.takes_held,
                                            fetch_s)
                for part, user, at in timers:
                    self._set_timer(user, part, at)
                self.batches += 1
                return True
            except (RedisError, KafkaError, OSError, ConnectionError) as exc:
                log.warning("redis or broker unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
                self.store.invalidate()
                self._requeue(due)
                self.reload_timers = True
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    async def _trace(self, released: list[tuple], t_released: float) -> None:
        """Record the purchases of a finished batch (``RISKMON_TRACE_LATENCY``); ship samples now and then."""
        trace = self.trace
        assert trace is not None
        t_done = time.time()
        for it in released:
            if it[1] == TOPIC_RANK["purchases"] and len(it[6]) > 3:
                trace.record(it[6][3][0], it[6][3][1], t_released, t_done)
        if trace.due():
            try:
                await trace.flush(self.client)
            except (RedisError, OSError) as exc:  # best effort: tracing never fails a batch
                log.warning("latency trace not shipped (%s)", type(exc).__name__)

    def _drop_overtaken_batch(self) -> bool:
        """Forget a batch a rebalance overtook: its events are read again from the committed offsets, and
        cached states it may have changed without committing are dropped. (Labels it learnt are learnt
        again when re-read: a few duplicate SGD steps, no effect on the ledger.)"""
        log.warning("partitions moved while a batch was in flight; dropping it (it is read again)")
        self.store.invalidate()
        self.reload_timers = True
        return False

    def _requeue(self, due: dict[str, int]) -> None:
        for user, part in due.items():
            at = self.timer_at.get(user, (None,))[0]
            if at is not None:
                heapq.heappush(self.heap, (at, user))
            self.timer_at.setdefault(user, (at or 0, part))
