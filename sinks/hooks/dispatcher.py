"""The delivery engine: one bounded queue and one worker task per destination.

Why this shape:

- ``submit`` is called from the stream agent, so it must never wait on a receiver: it routes the
  alert and does a non-blocking put into each destination's bounded queue. A full queue means the
  destination has been failing for a long time; the job is dead-lettered (counted) instead of
  back-pressuring the credit stream.
- One worker per destination delivers its jobs *in order*, so a page's ``resolve`` never overtakes
  its ``trigger``; a slow or dead destination only delays its own queue.
- Each attempt takes a token from the destination's bucket; failures are retried with exponential
  backoff and full jitter (honouring ``Retry-After``), then dead-lettered with the last error in the
  Redis list ``<prefix>dead`` and passed to ``on_dead_letter`` (the worker wires it to the
  ``hook-dead-letters`` topic).
- At-most-once per (destination, action, dedup_key) across restarts is kept in Redis by
  :class:`~sinks.hooks.delivery_state.DeliveryState`; docs/hooks.md states the exact guarantee.

Wall-clock time is read here on purpose: signatures, leases and backoff are about real delivery, not
about the event-time domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from riskmon.config import Settings
from sinks.hooks.delivery_state import BUSY, DONE, TAKEOVER, DeliveryState
from sinks.hooks.formats import (
    ACTION_RESOLVE,
    ACTION_TRIGGER,
    Job,
    Prepared,
    attempt_headers,
    jobs_for,
    prepare,
)
from sinks.hooks.ratelimit import TokenBucket
from sinks.hooks.routing import Destination, HookConfig, load_hook_config, warn_once

log = logging.getLogger("riskmon.hooks")

DEAD_LIST_MAX = 100_000
STAT_KEYS = (
    "submitted", "delivered", "retried", "dead_lettered", "deduplicated", "queue_full", "redelivered",
    "resolve_skipped", "deferred", "lost_lease",
)
DeadLetterCallback = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True)
class Outcome:
    """Result of one HTTP attempt."""

    ok: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False
    maybe_delivered: bool = False  # the receiver may have processed it (timeout, dropped connection)
    retry_after_s: float | None = None


def classify(status: int) -> tuple[bool, bool]:
    """(ok, permanent) for an HTTP status: 2xx ok; 408/425/429/5xx retryable; other codes permanent."""
    if 200 <= status < 300:
        return True, False
    if status in (408, 425, 429) or status >= 500:
        return False, False
    return False, True


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_s)
    except (TypeError, ValueError):
        return None


def lease_ms_for(dest: Destination) -> int:
    """A claim lease long enough to cover the longest gap between two renewals (attempt + backoff)."""
    gap = float(dest.opt("timeout_s")) + max(float(dest.opt("backoff_max_s")), float(dest.opt("retry_after_max_s")))
    return int((2 * gap + 30) * 1000)


class HookDispatcher:
    """Routes alerts to destinations and delivers them reliably (see module doc)."""

    def __init__(
        self,
        settings: Settings,
        policy: dict[str, Any],
        redis_client: Any,
        *,
        session: aiohttp.ClientSession | None = None,
        on_dead_letter: DeadLetterCallback | None = None,
        env: dict[str, str] | None = None,
        key_prefix: str = "hooks:",
        rng: random.Random | None = None,
    ) -> None:
        self.config: HookConfig = load_hook_config(settings, policy, env)
        warn_once(self.config)
        self.redis = redis_client
        self.key_prefix = key_prefix
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".replace("|", "_")
        self.on_dead_letter = on_dead_letter
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        self.enabled: dict[str, Destination] = {n: d for n, d in self.config.destinations.items() if d.enabled}
        self.stats: dict[str, dict[str, int]] = {n: dict.fromkeys(STAT_KEYS, 0) for n in self.enabled}
        self._states: dict[str, DeliveryState] = {}
        self._queues: dict[str, asyncio.Queue[Job]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[asyncio.TimerHandle, Job] = {}
        self._outstanding = 0
        self._idle: asyncio.Event | None = None
        self._started = False
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Create the HTTP session (unless given), the queues and one worker per enabled destination."""
        if self._started:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._idle = asyncio.Event()
        self._idle.set()
        for name, dest in self.enabled.items():
            retention = int(float(dest.opt("dedup_ttl_days")) * 86_400_000)
            self._states[name] = DeliveryState(self.redis, self.owner, self.key_prefix, retention)
            self._queues[name] = asyncio.Queue(maxsize=int(dest.opt("queue_size")))
            self._buckets[name] = TokenBucket(float(dest.opt("rate_per_s")), int(dest.opt("burst")))
            self._workers[name] = asyncio.create_task(self._worker(dest), name=f"hook-{name}")
        self._started = True

    async def submit(self, alert: dict[str, Any]) -> None:
        """Route ``alert`` and enqueue its deliveries; never waits for a receiver.

        A full destination queue dead-letters that delivery (``queue_full``) instead of blocking.
        """
        if self._stopping:
            raise RuntimeError("HookDispatcher is stopping")
        if not self._started:  # an agent may consume before the app's startup task ran start()
            await self.start()
        if not alert.get("dedup_key"):
            alert = {**alert, "dedup_key": str(alert.get("alert_id") or "")}
        for name in self.config.route(alert):
            dest = self.enabled[name]
            for job in jobs_for(alert, dest):
                self.stats[name]["submitted"] += 1
                if not self._enqueue(job):
                    self.stats[name]["queue_full"] += 1
                    await self._dead_letter(job, "queue full", 0, count_outstanding=False)

    async def drain(self, timeout_s: float) -> None:
        """Wait until every submitted delivery is finished (delivered, deduplicated or dead-lettered).

        Raises ``TimeoutError`` when deliveries are still pending after ``timeout_s``.
        """
        if not self._started or self._idle is None:
            return
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Drain for up to ``drain_timeout_s``, then cancel the workers.

        Jobs still queued are dead-lettered with error ``shutdown`` (never dropped silently); a
        delivery interrupted mid-request leaves its claim for takeover with the redelivery flag.
        """
        if not self._started:
            return
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await self.drain(drain_timeout_s)
        for handle, job in list(self._timers.items()):
            handle.cancel()
            await self._dead_letter(job, "shutdown while deferred", 0)
        self._timers.clear()
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        for q in self._queues.values():
            while not q.empty():
                job = q.get_nowait()
                await self._dead_letter(job, "shutdown", 0)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
        self._workers.clear()
        self._started = False
        self._stopping = False

    # ------------------------------------------------------------------ internals
    def _enqueue(self, job: Job, *, counted: bool = False) -> bool:
        try:
            self._queues[job.dest].put_nowait(job)
        except asyncio.QueueFull:
            return False
        if not counted:
            self._outstanding += 1
            assert self._idle is not None
            self._idle.clear()
        return True

    def _finish(self) -> None:
        self._outstanding -= 1
        if self._outstanding <= 0 and self._idle is not None:
            self._outstanding = 0
            self._idle.set()

    def _defer(self, job: Job, delay_s: float) -> None:
        """Re-queue ``job`` after ``delay_s`` (another owner holds its lease); stays outstanding."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(handle, None)
            if self._stopping:
                asyncio.ensure_future(self._dead_letter(job, "shutdown while deferred", 0))
            elif not self._enqueue(job, counted=True):
                asyncio.ensure_future(self._dead_letter(job, "queue full", 0))

        handle = loop.call_later(delay_s, fire)
        self._timers[handle] = job

    async def _worker(self, dest: Destination) -> None:
        queue = self._queues[dest.name]
        while True:
            job = await queue.get()
            finished = True
            try:
                finished = await self._deliver(dest, job)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await self._dead_letter(job, "shutdown during delivery", 0, count_outstanding=False)
                raise
            except Exception as exc:  # noqa: BLE001 - a bug in one delivery must not kill the worker
                log.error("hook %s: internal error on alert_id=%s: %s", dest.name, job.alert.get("alert_id"),
                          type(exc).__name__)
                await self._dead_letter(job, f"internal error: {type(exc).__name__}", 0, count_outstanding=False)
            finally:
                queue.task_done()
                if finished:
                    self._finish()

    async def _deliver(self, dest: Destination, job: Job) -> bool:
        """Deliver one job; returns False when it was deferred (still outstanding)."""
        stats = self.stats[dest.name]
        state = self._states[dest.name]
        trigger_meta = None
        if job.action == ACTION_RESOLVE:
            rec = await state.get(dest.name, ACTION_TRIGGER, job.dedup_key)
            if not rec.done:  # never paged here (or the page is still in flight elsewhere)
                stats["resolve_skipped"] += 1
                return True
            trigger_meta = rec.meta
        lease_ms = lease_ms_for(dest)
        claim = await state.claim(dest.name, job.action, job.dedup_key, self._now_ms(), lease_ms)
        if claim.status == DONE:
            stats["deduplicated"] += 1
            return True
        if claim.status == BUSY:
            stats["deferred"] += 1
            wait_s = max(0.05, (claim.lease_until_ms - self._now_ms()) / 1000 + 0.05)
            self._defer(job, wait_s)
            return False
        redelivery = claim.status == TAKEOVER
        prepared = prepare(dest, job, self.config.masker, trigger_meta, time.time())
        max_attempts = int(dest.opt("max_attempts"))
        maybe_delivered = False
        in_flight = False
        attempt = 0
        last: Outcome | None = None
        try:
            while True:
                attempt += 1
                await self._buckets[dest.name].acquire()
                # the claim itself started the lease; later attempts extend it (and detect a takeover)
                if attempt > 1 and not await state.renew(dest.name, job.action, job.dedup_key, self._now_ms(),
                                                         lease_ms):
                    stats["lost_lease"] += 1  # another owner took over after our lease ran out
                    return True
                in_flight = True
                last = await self._attempt(dest, prepared, attempt, redelivery)
                in_flight = False
                if last.ok:
                    await state.complete(dest.name, job.action, job.dedup_key, self._now_ms(), prepared.meta)
                    stats["delivered"] += 1
                    if redelivery:
                        stats["redelivered"] += 1
                    log.info("hook %s: %s alert_id=%s kind=%s delivered (attempt %d, HTTP %s)", dest.name,
                             job.action, job.alert.get("alert_id"), job.alert.get("kind"), attempt, last.status)
                    return True
                maybe_delivered |= last.maybe_delivered
                log.debug("hook %s: %s alert_id=%s attempt %d failed: %s", dest.name, job.action,
                          job.alert.get("alert_id"), attempt, last.error)
                if last.permanent or attempt >= max_attempts:
                    break
                stats["retried"] += 1
                await asyncio.sleep(self._backoff(dest, attempt, last.retry_after_s))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    state.release(dest.name, job.action, job.dedup_key, maybe_delivered=maybe_delivered or in_flight)
                )
            raise
        await state.release(dest.name, job.action, job.dedup_key)
        assert last is not None
        await self._dead_letter(job, last.error, attempt, count_outstanding=False, delivery_id=prepared.delivery_id)
        return True

    def _backoff(self, dest: Destination, attempt: int, retry_after_s: float | None) -> float:
        """Full jitter: U(0, min(max, base * 2**(attempt-1))); a receiver's Retry-After wins (capped)."""
        if retry_after_s is not None:
            return min(retry_after_s, float(dest.opt("retry_after_max_s")))
        ceiling = min(float(dest.opt("backoff_max_s")), float(dest.opt("backoff_base_s")) * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    async def _attempt(self, dest: Destination, prepared: Prepared, attempt: int, redelivery: bool) -> Outcome:
        assert self._session is not None
        headers = attempt_headers(dest, prepared, attempt, redelivery, time.time())
        timeout = aiohttp.ClientTimeout(total=float(dest.opt("timeout_s")))
        try:
            async with self._session.post(prepared.url, data=prepared.body, headers=headers, timeout=timeout) as resp:
                await resp.read()
                ok, permanent = classify(resp.status)
                if ok:
                    return Outcome(True, resp.status)
                return Outcome(
                    False, resp.status, f"HTTP {resp.status}", permanent=permanent,
                    retry_after_s=parse_retry_after(resp.headers.get("Retry-After"), time.time()),
                )
        except TimeoutError:
            return Outcome(False, None, "timeout", maybe_delivered=True)
        except aiohttp.ClientConnectorError as exc:
            return Outcome(False, None, f"connect failed: {type(exc).__name__}")
        except aiohttp.ClientError as exc:
            # e.g. the server closed the connection after reading the request: it may have acted on it
            return Outcome(False, None, f"{type(exc).__name__}", maybe_delivered=True)

    async def _dead_letter(
        self, job: Job, error: str, attempts: int, *, count_outstanding: bool = True, delivery_id: str = ""
    ) -> None:
        """Record a failed delivery in ``<prefix>dead`` and hand it to ``on_dead_letter``."""
        if job.dest in self.stats:
            self.stats[job.dest]["dead_lettered"] += 1
        record = {
            "dest": job.dest,
            "action": job.action,
            "dedup_key": job.dedup_key,
            "delivery_id": delivery_id,
            "alert_id": job.alert.get("alert_id"),
            "kind": job.alert.get("kind"),
            "error": error,
            "attempts": attempts,
            "failed_at_ms": self._now_ms(),
            "alert": job.alert,  # internal store: kept unmasked so the alert can be replayed
        }
        log.warning("hook %s: %s alert_id=%s kind=%s dead-lettered after %d attempt(s): %s", job.dest, job.action,
                    record["alert_id"], record["kind"], attempts, error)
        try:
            key = f"{self.key_prefix}dead"
            await self.redis.lpush(key, orjson.dumps(record))
            await self.redis.ltrim(key, 0, DEAD_LIST_MAX - 1)
        except Exception as exc:  # noqa: BLE001 - still hand the record to the callback
            log.error("hook %s: could not store dead letter: %s", job.dest, type(exc).__name__)
        if self.on_dead_letter is not None:
            try:
                res = self.on_dead_letter(record)
                if inspect.isawaitable(res):
                    await res
            except Exception as exc:  # noqa: BLE001
                log.error("hook %s: on_dead_letter failed: %s", job.dest, type(exc).__name__)
        if count_outstanding:
            self._finish()

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)


async def read_dead_letters(redis_client: Any, limit: int = 20, key_prefix: str = "hooks:") -> list[dict[str, Any]]:
    """The newest ``limit`` dead-letter records (for `riskmon hooks dead` and operators)."""
    rows = await redis_client.lrange(f"{key_prefix}dead", 0, max(0, limit - 1))
    return [orjson.loads(r) for r in rows]
