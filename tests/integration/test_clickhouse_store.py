"""Migrations and the FactSink writer on the real ClickHouse engine (chdb in a tmp dir)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from riskmon import outputs
from riskmon.eventtime import parse_ts
from sinks.clickhouse.client import DsnError, connect, dsn_kind
from sinks.clickhouse.migrations import MIGRATIONS_DIR, MigrationError, load_migrations, migrate, status
from sinks.clickhouse.rows import TABLES, RowError, to_row
from sinks.clickhouse.writer import FactSink, FlushError, SinkClosed

pytestmark = pytest.mark.integration
T0 = parse_ts("2026-03-01T08:00:00Z")


@pytest.fixture()
def ch(tmp_path):
    """A migrated in-process ClickHouse; closed after the test (one chdb path per process)."""
    client = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(client)
    yield client
    client.close()


def _decision(i: int, amount: int = 1234, ts: int = T0) -> dict:
    return outputs.decision(
        event_id=f"p{i}", ts=ts + i, user_id=f"u{i % 7}", order_id=f"o{i}", amount=amount, channel="app",
        category="travel", installments=3, pd=0.05, anomaly=0.1, grade="B", apr_bps=1299,
        model_version="m1", utilisation=0.4, approved_within_limit=True)


def _count(client, table: str, final: bool = False) -> int:
    return client.query(f"SELECT count() FROM {table}{' FINAL' if final else ''}").result_rows[0][0]


class Flaky:
    """A real client whose inserts fail on demand: before writing (outage) or after (lost ack)."""

    def __init__(self, client, fail_before: int = 0, fail_after: int = 0) -> None:
        self.client, self.fail_before, self.fail_after = client, fail_before, fail_after
        self.gate = threading.Event()
        self.gate.set()
        self.inserts = 0

    def insert(self, *args, **kwargs):
        self.gate.wait()
        self.inserts += 1
        if self.fail_before > 0:
            self.fail_before -= 1
            raise ConnectionError("ClickHouse unavailable")
        self.client.insert(*args, **kwargs)
        if self.fail_after > 0:
            self.fail_after -= 1
            raise TimeoutError("ack lost after the insert landed")


# -- migrations --------------------------------------------------------------------------------------
def test_migrate_creates_every_fact_table_and_is_idempotent(ch):
    tables = {r[0] for r in ch.query("SHOW TABLES").result_rows}
    assert set(TABLES) | {"schema_migrations", "enterprise_signals", "dpd_transitions"} <= tables
    assert migrate(ch) == []
    states = status(ch)
    assert [s.migration.version for s in states] == [m.version for m in load_migrations()]
    assert all(s.applied and s.checksum_ok for s in states)
    engines = dict(ch.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows)
    assert all(engines[t] == "ReplacingMergeTree" for t in TABLES)


def test_pending_failed_and_edited_migrations(tmp_path):
    mig = tmp_path / "mig"
    shutil.copytree(MIGRATIONS_DIR, mig)
    (mig / "0099_broken.sql").write_text("CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = NoSuchEngine;\n")
    client = connect(f"chdb://{tmp_path / 'ch'}")
    try:
        assert not any(s.applied for s in status(client, mig))
        with pytest.raises(MigrationError, match="0099_broken"):
            migrate(client, mig)
        states = {s.migration.version: s.applied for s in status(client, mig)}
        assert states[99] is False and all(v for k, v in states.items() if k != 99)
        (mig / "0099_broken.sql").write_text("CREATE TABLE IF NOT EXISTS x (a UInt8) ENGINE = Memory;\n")
        assert [m.version for m in migrate(client, mig)] == [99]
        (mig / "0099_broken.sql").write_text("CREATE TABLE IF NOT EXISTS x (a UInt16) ENGINE = Memory;\n")
        assert [s.checksum_ok for s in status(client, mig)][-1] is False
        with pytest.raises(MigrationError, match="different content"):
            migrate(client, mig)
    finally:
        client.close()


def test_dsn_kinds():
    assert dsn_kind("chdb:///tmp/x") == "chdb"
    assert dsn_kind("https://ro:pw@ch.example:8443/riskmon") == "http"
    with pytest.raises(DsnError):
        dsn_kind("postgres://x")


# -- rows ---------------------------------------------------------------------------------------------
def test_rows_parse_money_exactly_and_reject_bad_records():
    spec, row = to_row(outputs.TOPIC_DECISIONS, _decision(1, amount=123456789012))
    assert spec.table == "decisions" and row[4] == Decimal("1234567890.12")
    with pytest.raises(RowError, match="amount"):
        to_row(outputs.TOPIC_DECISIONS, {**_decision(1), "amount": "1.234"})
    with pytest.raises(RowError, match="ts: required"):
        to_row(outputs.TOPIC_DECISIONS, {k: v for k, v in _decision(1).items() if k != "ts"})
    with pytest.raises(RowError, match="no ClickHouse table"):
        to_row("purchases", {})
    with pytest.raises(RowError, match="industry"):
        to_row("business-metrics", {"event_id": "m1", "ts": "2026-03-01T00:00:00Z", "enterprise_id": "e1",
                                    "industry": "mining", "metric": "revenue", "value": 1.0})


# -- writer -------------------------------------------------------------------------------------------
def test_money_and_time_round_trip_exactly(ch):
    amounts = [1, 99, 10**11 - 1, 12345]
    with FactSink(ch, background=False) as sink:
        for i, a in enumerate(amounts):
            sink.add(outputs.TOPIC_DECISIONS, _decision(i, amount=a, ts=T0 + 7))
    rows = ch.query("SELECT event_id, amount, toUnixTimestamp64Milli(ts) FROM decisions ORDER BY event_id").result_rows
    assert [r[1] for r in rows] == [Decimal(a).scaleb(-2) for a in amounts]
    assert [r[2] for r in rows] == [T0 + 7 + i for i in range(len(amounts))]
    total = ch.query("SELECT sum(amount) FROM decisions").result_rows[0][0]
    assert total == Decimal(sum(amounts)).scaleb(-2)


def test_flush_by_size_and_by_time(ch):
    sink = FactSink(ch, max_rows=10, max_interval_s=0.05, max_buffer_rows=100)
    try:
        for i in range(10):
            sink.add(outputs.TOPIC_DECISIONS, _decision(i))
        sink.add(outputs.TOPIC_DECISIONS, _decision(99))
        deadline = time.monotonic() + 60  # generous: we wait for the flusher, we do not time it
        while sink.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.pending == 0 and sink.rows_written == 11
        assert _count(ch, "decisions") == 11
    finally:
        sink.close()


def test_lost_ack_retry_does_not_duplicate_rows(ch):
    flaky = Flaky(ch, fail_after=2)
    sink = FactSink(flaky, background=False, sleep=lambda s: None)
    for i in range(50):
        sink.add(outputs.TOPIC_DECISIONS, _decision(i))
    assert sink.flush() == 50
    assert flaky.inserts == 3 and sink.retries_done == 2
    assert _count(ch, "decisions") == 50  # the token dropped the re-sent batch: not even pre-merge dupes


def test_outage_keeps_rows_until_clickhouse_returns(ch):
    flaky = Flaky(ch, fail_before=100)
    sleeps: list[float] = []
    sink = FactSink(flaky, background=False, retries=3, backoff_s=0.1, max_backoff_s=0.3, sleep=sleeps.append)
    for i in range(20):
        sink.add(outputs.TOPIC_DECISIONS, _decision(i))
    sink.add(outputs.TOPIC_ALERTS, outputs.alert(ts=T0, kind="k", severity="high", subject_type="user",
                                                 subject_id="u1", dedup_key="d1", summary="s", details={}))
    with pytest.raises(FlushError):
        sink.flush()
    assert sleeps == [0.1, 0.2, 0.3]
    assert sink.pending == 21 and _count(ch, "decisions") == 0
    flaky.fail_before = 0
    assert sink.flush() == 21
    assert sink.pending == 0 and _count(ch, "decisions") == 20 and _count(ch, "alerts") == 1


def test_replayed_records_collapse_under_final(ch):
    with FactSink(ch, background=False) as sink:
        for i in range(30):
            sink.add(outputs.TOPIC_DECISIONS, _decision(i))
    with FactSink(ch, background=False) as sink:  # a replay from older offsets, other batch shape
        for i in range(10, 40):
            sink.add(outputs.TOPIC_DECISIONS, _decision(i))
    assert _count(ch, "decisions", final=True) == 40
    assert ch.query("SELECT uniqExact(event_id) FROM decisions").result_rows[0][0] == 40


def test_bounded_buffer_applies_backpressure(ch):
    flaky = Flaky(ch)
    flaky.gate.clear()  # ClickHouse "hangs": the flusher's insert blocks
    sink = FactSink(flaky, max_rows=5, max_interval_s=0.01, max_buffer_rows=20)
    produced = []

    def producer() -> None:
        for i in range(60):
            sink.add(outputs.TOPIC_DECISIONS, _decision(i))
            produced.append(i)

    t = threading.Thread(target=producer)
    t.start()
    deadline = time.monotonic() + 60
    while sink.pending < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.pending == 20
    assert sink.add(outputs.TOPIC_DECISIONS, _decision(1000), block=False) is False
    assert len(produced) == 20 and t.is_alive()  # the producer is parked, the buffer did not grow
    flaky.gate.set()
    t.join(60)
    sink.close()
    assert len(produced) == 60 and _count(ch, "decisions") == 60


def test_add_async_waits_for_room(ch):
    flaky = Flaky(ch)
    flaky.gate.clear()
    sink = FactSink(flaky, max_rows=2, max_interval_s=0.01, max_buffer_rows=4)

    async def main() -> int:
        async def produce() -> None:
            for i in range(12):
                await sink.add_async(outputs.TOPIC_DECISIONS, _decision(i))

        task = asyncio.create_task(produce())
        while sink.pending < 4:
            await asyncio.sleep(0.01)
        ticks = 0
        for _ in range(5):  # the event loop keeps running while add_async waits
            await asyncio.sleep(0)
            ticks += 1
        assert not task.done()
        flaky.gate.set()
        await task
        return ticks

    assert asyncio.run(main()) == 5
    sink.close()
    assert _count(ch, "decisions") == 12
    with pytest.raises(SinkClosed):
        sink.add(outputs.TOPIC_DECISIONS, _decision(1))


def test_every_output_topic_and_business_metrics_land(ch, tmp_path: Path):
    from sinks.clickhouse.sample import load, sample_records

    recs = sample_records(days=4, users=100, enterprises=8)
    assert load(ch, recs) == len(recs)
    by_table: dict[str, int] = {}
    for topic, _ in recs:
        t = to_row.__globals__["SPECS"][topic].table
        by_table[t] = by_table.get(t, 0) + 1
    assert set(by_table) == set(TABLES)
    for table, n in by_table.items():
        assert _count(ch, table, final=True) == n, table
