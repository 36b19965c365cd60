"""``FactSink``: buffered, bounded, retried and idempotent inserts of output records into fact tables.

Why this shape:

- ClickHouse wants few large inserts, so records are buffered per table and flushed when ``max_rows``
  are waiting or ``max_interval_s`` passed since the oldest waiting row (a background flusher thread).
- Memory must stay bounded when ClickHouse is slow or down, so at most ``max_buffer_rows`` rows are
  held (buffered + being written); ``add`` then blocks and ``add_async`` waits - backpressure reaches
  the Kafka consumer, which simply stops polling.
- A retry must never duplicate rows: each batch carries an ``insert_deduplication_token`` derived from
  its record ids (the tables keep a non-replicated deduplication window), and the tables are
  ReplacingMergeTree by record id, so even a replay of old offsets collapses under ``FINAL``.
- A batch that still fails after the retries goes back to the head of the buffer and ``flush`` raises,
  so the consumer does not commit offsets for rows ClickHouse never got.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse.rows import TableSpec, to_row

log = logging.getLogger(__name__)


class SinkClosed(RuntimeError):
    """``add`` after ``close``."""


class FlushError(RuntimeError):
    """ClickHouse refused a batch after all retries; the rows are still buffered."""


class FactSink:
    """Buffered writer of output records into the ClickHouse fact tables (thread-safe)."""

    def __init__(
        self,
        client: Client,
        *,
        max_rows: int = 5000,
        max_interval_s: float = 1.0,
        max_buffer_rows: int = 100_000,
        retries: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        background: bool = True,
    ) -> None:
        if max_rows < 1 or max_buffer_rows < max_rows:
            raise ValueError("need 1 <= max_rows <= max_buffer_rows")
        self.client = client
        self.max_rows = max_rows
        self.max_interval_s = max_interval_s
        self.max_buffer_rows = max_buffer_rows
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._cond = threading.Condition()
        self._io = threading.Lock()  # one insert at a time: keeps batches ordered and tokens stable
        self._buf: dict[str, list[list[Any]]] = defaultdict(list)
        self._ids: dict[str, list[str]] = defaultdict(list)
        self._specs: dict[str, TableSpec] = {}
        self._buffered = 0
        self._held = 0  # buffered + in flight: what the bound applies to
        self._oldest: float | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.rows_written = 0
        self.batches_written = 0
        self.retries_done = 0
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="factsink-flusher", daemon=True)
            self._thread.start()

    # -- producing side -------------------------------------------------------------------------
    def add(self, topic: str, record: dict[str, Any], *, kafka_ts_ms: int | None = None,
            block: bool = True) -> bool:
        """Map ``record`` of ``topic`` to its table row and buffer it.

        Blocks while ``max_buffer_rows`` rows are held (backpressure); with ``block=False`` returns
        False instead. Raises :class:`sinks.clickhouse.rows.RowError` for a record that cannot be a row
        (the caller dead-letters or counts it) and :class:`SinkClosed` after :meth:`close`.
        """
        fallback = kafka_ts_ms if kafka_ts_ms is not None else int(time.time() * 1000)
        spec, row = to_row(topic, record, fallback_ts_ms=fallback)
        with self._cond:
            while self._held >= self.max_buffer_rows and not self._closed:
                if not block:
                    return False
                self._cond.wait()
            if self._closed:
                raise SinkClosed("FactSink is closed")
            self._specs[spec.table] = spec
            self._buf[spec.table].append(row)
            self._ids[spec.table].append(str(row[0]))
            self._buffered += 1
            self._held += 1
            if self._oldest is None:
                self._oldest = time.monotonic()
                self._cond.notify_all()  # the flusher starts its max_interval_s clock
            elif self._buffered >= self.max_rows:
                self._cond.notify_all()
        return True

    async def add_async(self, topic: str, record: dict[str, Any], *, kafka_ts_ms: int | None = None) -> None:
        """Like :meth:`add`, but waits without blocking the event loop when the buffer is full."""
        while not self.add(topic, record, kafka_ts_ms=kafka_ts_ms, block=False):
            await asyncio.to_thread(self._wait_for_room)

    def _wait_for_room(self) -> None:
        with self._cond:
            while self._held >= self.max_buffer_rows and not self._closed:
                self._cond.wait()

    @property
    def pending(self) -> int:
        """Rows held (buffered or being written)."""
        with self._cond:
            return self._held

    # -- writing side ---------------------------------------------------------------------------
    def flush(self) -> int:
        """Write every row added before this call; returns the rows this call wrote.

        Raises :class:`FlushError` if ClickHouse still refuses after the retries (rows stay buffered).
        """
        with self._io:
            return self._write_all()

    def _take(self) -> list[tuple[TableSpec, list[list[Any]], list[str]]]:
        with self._cond:
            batches = [(self._specs[t], rows, self._ids[t]) for t, rows in self._buf.items() if rows]
            self._buf = defaultdict(list)
            self._ids = defaultdict(list)
            self._buffered = 0
            self._oldest = None
            return batches

    def _requeue(self, batches: list[tuple[TableSpec, list[list[Any]], list[str]]]) -> None:
        with self._cond:
            for spec, rows, ids in batches:
                self._buf[spec.table][:0] = rows
                self._ids[spec.table][:0] = ids
                self._buffered += len(rows)
            if self._oldest is None and self._buffered:
                self._oldest = time.monotonic()

    def _write_all(self) -> int:
        batches = self._take()
        written = 0
        for i, (spec, rows, ids) in enumerate(batches):
            try:
                self._insert(spec, rows, ids)
            except BaseException:
                self._requeue(batches[i:])
                raise
            written += len(rows)
            with self._cond:
                self._held -= len(rows)
                self.rows_written += len(rows)
                self.batches_written += 1
                self._cond.notify_all()
        return written

    def _insert(self, spec: TableSpec, rows: list[list[Any]], ids: list[str]) -> None:
        token = hashlib.blake2b(("\x1f".join([spec.table, *ids])).encode(), digest_size=16).hexdigest()
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                self.client.insert(
                    spec.table, rows, column_names=spec.column_names,
                    settings={"insert_deduplication_token": token},
                )
                return
            except Exception as exc:
                if attempt == self.retries:
                    raise FlushError(f"insert into {spec.table} failed after {attempt + 1} attempts: {exc}") from exc
                self.retries_done += 1
                log.warning("insert into %s failed (%s); retry %d in %.2fs", spec.table, exc, attempt + 1, delay)
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    def _due(self) -> bool:
        if self._buffered >= self.max_rows:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.max_interval_s

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._due():
                    timeout = None
                    if self._oldest is not None:
                        timeout = max(0.0, self.max_interval_s - (time.monotonic() - self._oldest))
                    self._cond.wait(timeout)
                if self._closed:
                    return
            try:
                self.flush()
                self._error = None
            except Exception as exc:  # noqa: BLE001 - keep flushing later; flush() callers see the error
                self._error = exc
                log.error("background flush failed: %s", exc)
                with self._cond:
                    self._cond.wait(self.max_backoff_s)

    @property
    def last_error(self) -> BaseException | None:
        """The last background flush failure (None after a later success)."""
        return self._error

    def close(self) -> None:
        """Flush what is buffered and stop the flusher; :class:`FlushError` if the rows cannot be written."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def __enter__(self) -> FactSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
