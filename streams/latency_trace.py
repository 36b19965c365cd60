"""Where an event's latency goes inside a worker (``RISKMON_TRACE_LATENCY=1``; `riskmon bench` stage e).

Per purchase, three wall-clock segments:

- ``in``: producer timestamp (the record's CreateTime) -> the batch reaches ``ConsumerCreditRuntime.handle``
  (producer linger, broker, Faust's fetcher thread and stream queue, the ``take_events`` window);
- ``wait``: -> released from the event-time merge buffer (waiting for other partitions to be read past
  its time, and for the batch ahead of it under the runtime lock);
- ``apply``: -> outputs published and state committed (Redis read, engine, publish + broker ack, CAS
  commit).

Per batch, the stages of ``apply``: the state read (``AccountStore.load``: cache, plus one Redis round trip
for the users not cached, plus decoding; the bench reports its p99 as the feature read per batch), the
engine, publish + broker ack, and the CAS commit, with the batch's event and user counts; and, within the
state read, the Redis round trip alone (send to reply, as the worker's event loop saw it), so that the
read's tail can be told apart: Redis and the wait for the loop, or decoding the states it returned.

And every full (generation-2) garbage collection's pause, since a stopped event loop delays everything
in flight. Samples go to the Redis list ``rm:trace:latency`` (one RPUSH per second at most, off the
per-event path); the bench reads them back (``riskmon.bench.latency.summarise_worker_trace``). Off by default: the clock reads cost a few µs per event.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson

TRACE_KEY = "rm:trace:latency"
FLUSH_EVERY_S = 1.0


class LatencyTrace:
    """Collects segment samples and GC pauses; :meth:`flush` ships them to Redis."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float, float]] = []  # (t_in, in, wait, apply) seconds
        self.gc_pauses_ms: list[tuple[float, float]] = []  # (wall time, pause ms)
        # (wall time, events, users, users read from Redis, load, engine, publish, commit seconds, takes
        # held so far to fill batches under a backlog, seconds of the load's Redis round trip)
        self.batches: list[tuple[float, int, int, int, float, float, float, float, int, float]] = []
        self._gc_start = 0.0
        self._last_flush = time.monotonic()
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif info.get("generation") == 2:
            self.gc_pauses_ms.append((time.time(), (time.perf_counter() - self._gc_start) * 1000))

    def record(self, t_in: float, created_s: float | None, t_released: float, t_done: float) -> None:
        """One purchase: wall times of arrival in ``handle``, release, done; ``created_s`` from Kafka."""
        self.samples.append((t_in, t_in - created_s if created_s else 0.0, t_released - t_in, t_done - t_released))

    def record_batch(self, events: int, users: int, cold: int, stages: tuple[float, float, float, float],
                     takes_held: int = 0, fetch_s: float = 0.0) -> None:
        """One applied batch: its size, the seconds of load, engine, publish and commit, the runtime's
        count of takes held back to fill a batch (cumulative), and the seconds of the load's Redis round
        trip (0.0 when every state was cached)."""
        self.batches.append((time.time(), events, users, cold, *stages, takes_held, fetch_s))

    def due(self) -> bool:
        """True when there is something to ship and the last flush is ``FLUSH_EVERY_S`` old."""
        return bool(self.samples or self.gc_pauses_ms or self.batches) and time.monotonic() - self._last_flush >= FLUSH_EVERY_S

    async def flush(self, client: Any) -> None:
        """RPUSH what was collected as one JSON document (errors are the caller's: tracing is best effort)."""
        doc = orjson.dumps({"s": self.samples, "gc": self.gc_pauses_ms, "b": self.batches})
        self.samples, self.gc_pauses_ms, self.batches = [], [], []
        self._last_flush = time.monotonic()
        await client.rpush(TRACE_KEY, doc)

