"""The ``riskmon sink`` consumer: output topics (+ ``business-metrics``) -> FactSink -> ClickHouse.

Why offsets are committed only after a flush: the Kafka offset is the sink's checkpoint. If ClickHouse
is down, ``flush`` retries with backoff and then raises; the consumer stops polling (backpressure), keeps
its rows and retries, and commits only once ClickHouse has them. If the process dies before the commit,
the next run re-reads those messages; the same record ids (and batch tokens) make the re-insert
invisible, so each record is one row: at-least-once delivery, exactly-once rows.

The audit trail (riskmon/audit.py, docs/audit.md) rides on the same checkpoint: the customer-affecting
records (limit-changes, alerts, bureau-reports) are appended to the hash-chained log, in consumption
order, after the rows are flushed and *before* the offsets are committed. A crash in between re-delivers
them and the idempotent append (by record id) skips what is already chained. Chains are anchored at most
every ``audit_anchor_interval_s`` on a flush and always on shutdown, which bounds the window in which
the newest records could be removed without trace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer

from riskmon.audit import AUDITED_TYPES, AuditLog
from riskmon.config import Settings
from sinks.clickhouse.client import connect
from sinks.clickhouse.migrations import migrate
from sinks.clickhouse.rows import SINK_TOPICS, RowError
from sinks.clickhouse.writer import FactSink, FlushError

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """Counters of one sink run (for progress output and tests)."""

    consumed: int = 0
    written: int = 0
    commits: int = 0
    flush_failures: int = 0
    audited: int = 0  # records newly appended to the audit log
    anchors: int = 0  # anchor records written
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> messages not turned into rows


def bootstrap_servers(settings: Settings) -> str:
    """``host:port[,host:port]`` of the broker the sink attaches to (it never starts one itself)."""
    url = settings.broker_url or settings.broker
    if "://" not in url:
        raise ValueError("riskmon sink needs a running broker: set RISKMON_BROKER_URL=kafka://host:port "
                         "(e.g. from `riskmon services up`)")
    rest = url.split("://", 1)[1]
    return ",".join(h.strip().rstrip("/") for h in rest.replace(";", ",").split(",") if h.strip())


def sink_group_id(settings: Settings) -> str:
    """The sink's own consumer group (separate from the workers' ``app_id`` group)."""
    return f"{settings.app_id}-clickhouse-sink"


class _Checkpoint(ConsumerRebalanceListener):
    """Flush and commit before partitions move to another sink instance."""

    def __init__(self, flush_and_commit: Callable[[], None]) -> None:
        self._flush_and_commit = flush_and_commit

    def on_partitions_revoked(self, revoked) -> None:  # noqa: ANN001 - kafka-python signature
        if revoked:
            self._flush_and_commit()

    def on_partitions_assigned(self, assigned) -> None:  # noqa: ANN001
        pass


class AuditError(RuntimeError):
    """The audit log refused an append or an anchor; the records stay pending, offsets uncommitted."""


class AuditTrail:
    """The sink's audit step: audited records wait here until the rows are flushed, then get chained.

    Why pending until flush: the append must happen before the offset commit (so nothing committed is
    missing from the log) and after the fact rows (so a record is in the log only if its row exists).
    Holding them in a list bounded by the sink's own buffer bound is enough: the consumer stops polling
    while a flush is failing.
    """

    def __init__(self, log: AuditLog, prefix: str = "", anchor_interval_s: float = 60.0) -> None:
        self.log = log
        self.prefix = prefix
        self.anchor_interval_s = anchor_interval_s
        self.pending: list[tuple[str, dict]] = []
        self._last_anchor = time.monotonic()

    def add(self, topic: str, record: object) -> None:
        """Remember ``record`` if its topic is an audited record type (others are ignored)."""
        name = topic[len(self.prefix):] if self.prefix and topic.startswith(self.prefix) else topic
        if name in AUDITED_TYPES and isinstance(record, dict):
            self.pending.append((name, record))

    def flush(self, stats: SinkStats, *, final: bool = False) -> None:
        """Append what is pending (idempotent by record id), anchor when due; raises AuditError."""
        try:
            if self.pending:
                stats.audited += self.log.append(self.pending)
                self.pending = []
            if final or time.monotonic() - self._last_anchor >= self.anchor_interval_s:
                stats.anchors += self.log.anchor()
                self._last_anchor = time.monotonic()
        except Exception as exc:
            raise AuditError(f"audit append failed: {exc}") from exc


def run_sink(settings: Settings, *, stop_event: threading.Event | None = None,
             topics: tuple[str, ...] = SINK_TOPICS, max_rows: int = 5000, max_interval_s: float = 1.0,
             max_buffer_rows: int = 100_000, stats: SinkStats | None = None,
             on_progress: Callable[[SinkStats], None] | None = None,
             client_factory: Callable[[str], object] = connect, audit: bool = True,
             audit_anchor_interval_s: float = 60.0) -> None:
    """Consume ``topics`` and write them to ``settings.clickhouse`` until ``stop_event`` is set.

    Applies pending migrations first. Commits offsets only after the rows they cover are flushed; a
    flush failure is retried (without polling more) until ClickHouse accepts the rows or stop is asked,
    in which case nothing more is committed and the next run re-reads (dedup makes that harmless).
    With ``audit`` (the default) the audited record types also go to the audit log before each commit.
    """
    stop_event = stop_event or threading.Event()
    stats = stats if stats is not None else SinkStats()
    client = client_factory(settings.clickhouse)
    migrate(client)
    sink = FactSink(client, max_rows=max_rows, max_interval_s=max_interval_s, max_buffer_rows=max_buffer_rows,
                    background=False)
    trail = AuditTrail(AuditLog.from_policy(client, settings.policy_path), settings.topic_prefix,
                       audit_anchor_interval_s) if audit else None
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=sink_group_id(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=min(max_rows, 2000),
        client_id=f"{settings.app_id}-sink",
        metadata_max_age_ms=5000,  # pick up output topics created after the sink started
    )
    last_flush = time.monotonic()
    committed_upto = [stats.consumed]

    def flush_and_commit() -> None:
        nonlocal last_flush
        backoff = 0.5
        while True:
            try:
                stats.written += sink.flush()
                if trail is not None:
                    trail.flush(stats, final=stop_event.is_set())
                break
            except (FlushError, AuditError) as exc:
                stats.flush_failures += 1
                log.error("ClickHouse flush failed, offsets not committed: %s", exc)
                if stop_event.is_set():
                    raise
                stop_event.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        last_flush = time.monotonic()
        if stats.consumed == committed_upto[0]:
            return  # nothing new polled: nothing to acknowledge
        consumer.commit()  # every polled message is in ClickHouse now
        committed_upto[0] = stats.consumed
        stats.commits += 1
        if on_progress:
            on_progress(stats)

    consumer.subscribe(list(topics), listener=_Checkpoint(flush_and_commit))
    try:
        while not stop_event.is_set():
            batches = consumer.poll(timeout_ms=200, max_records=min(max_rows, 2000))
            for tp, messages in batches.items():
                for msg in messages:
                    stats.consumed += 1
                    try:
                        record = orjson.loads(msg.value) if msg.value is not None else None
                        sink.add(tp.topic, record, kafka_ts_ms=msg.timestamp if msg.timestamp >= 0 else None)
                        if trail is not None:
                            trail.add(tp.topic, record)
                    except orjson.JSONDecodeError:
                        stats.skipped["malformed JSON"] += 1
                    except RowError as exc:
                        stats.skipped[str(exc).split(":")[0] + ": invalid record"] += 1
                        log.warning("skipping %s[%d]@%d: %s", tp.topic, tp.partition, msg.offset, exc)
            if sink.pending >= max_rows or (time.monotonic() - last_flush >= max_interval_s):
                flush_and_commit()
        flush_and_commit()
    finally:
        consumer.close(autocommit=False)
        client.close()
