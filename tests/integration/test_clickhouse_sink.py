"""`run_sink` against real Apache Kafka and the real ClickHouse engine: rows, commits, outage, replay."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from sinks.clickhouse.client import connect
from sinks.clickhouse.consumer import SinkStats, bootstrap_servers, run_sink, sink_group_id
from sinks.clickhouse.rows import SPECS
from sinks.clickhouse.sample import sample_records

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, records, extra: list[tuple[str, bytes]] = ()) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for topic, rec in records:
        key = str(rec.get("user_id") or rec.get("enterprise_id") or rec.get("subject_id") or "k").encode()
        producer.send(topic, key=key, value=orjson.dumps(rec))
    for topic, raw in extra:
        producer.send(topic, key=b"bad", value=raw)
    producer.flush()
    producer.close()


def _wait(cond, what: str, thread: threading.Thread | None = None, deadline_s: float = 120) -> None:
    """Wait for a condition with a generous deadline (we wait for progress; we never time it)."""
    end = time.monotonic() + deadline_s
    while not cond():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        assert thread is None or thread.is_alive(), f"the sink died while waiting for {what}"
        time.sleep(0.05)


def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        return {tp: om.offset for tp, om in offsets.items() if om.offset > 0}
    finally:
        admin.close()


def _end_offsets(bootstrap: str, topics) -> dict[TopicPartition, int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in (c.partitions_for_topic(t) or ())]
        return {tp: off for tp, off in c.end_offsets(tps).items() if off}
    finally:
        c.close()


class Outage:
    """The real client, with inserts refused until ``up`` is set (ClickHouse down)."""

    def __init__(self, client, up: threading.Event) -> None:
        self.client, self.up, self.refused = client, up, 0

    def insert(self, table, *a, **kw):
        if not self.up.is_set() and table != "schema_migrations":
            self.refused += 1
            raise ConnectionError("ClickHouse is down")
        return self.client.insert(table, *a, **kw)

    def __getattr__(self, name):
        return getattr(self.client, name)


def _start(settings, stats, up=None, **kw):
    stop = threading.Event()
    wrappers = []

    def factory(dsn):
        c = connect(dsn)
        if up is None:
            return c
        wrappers.append(Outage(c, up))
        return wrappers[-1]

    t = threading.Thread(target=run_sink, args=(settings,), daemon=True,
                         kwargs={"stop_event": stop, "stats": stats, "client_factory": factory, **kw})
    t.start()
    return stop, t, wrappers


def test_sink_writes_commits_survives_outage_and_replays_idempotently(settings, tmp_path):
    dsn = f"chdb://{tmp_path / 'ch'}"
    s = settings(broker="apache", redis=False, clickhouse=False, clickhouse_dsn=dsn)
    bootstrap = bootstrap_servers(s)
    records = sample_records(days=2, users=30, enterprises=4, seed=11)
    bad = [("decisions", b"{not json"),
           ("business-metrics", orjson.dumps({"event_id": "m", "ts": "2026-03-01T00:00:00Z", "enterprise_id": "e",
                                              "industry": "mining", "metric": "revenue", "value": 1}))]
    _produce(bootstrap, records, bad)
    want = Counter(SPECS[t].table for t, _ in records)
    topics = sorted({t for t, _ in records})

    # 1) ClickHouse is down: the sink consumes, retries, and commits nothing
    up = threading.Event()
    stats = SinkStats()
    stop, t, wrappers = _start(s, stats, up=up, max_rows=500, max_interval_s=0.2)
    _wait(lambda: stats.flush_failures >= 1, "a failed flush", t)
    assert _committed(bootstrap, sink_group_id(s)) == {}
    assert stats.written == 0 and wrappers[0].refused >= 1
    # 2) ClickHouse is back: every record lands once, then offsets are committed up to the end
    up.set()
    _wait(lambda: stats.written == len(records), "all rows written", t)
    ends = _end_offsets(bootstrap, topics)
    _wait(lambda: _committed(bootstrap, sink_group_id(s)) == ends, "offsets committed to the end", t)
    stop.set()
    t.join(60)
    assert not t.is_alive()
    assert stats.skipped == Counter({"malformed JSON": 1, "business-metrics: invalid record": 1})

    # 3) a replay from offset 0 (new consumer group) adds no visible row
    replay = settings(broker="apache", redis=False, clickhouse=False, clickhouse_dsn=dsn)
    stats2 = SinkStats()
    stop2, t2, _ = _start(replay, stats2, max_rows=137, max_interval_s=0.2)
    _wait(lambda: stats2.written == len(records), "replayed rows written", t2)
    stop2.set()
    t2.join(60)

    client = connect(dsn)
    try:
        for table, n in want.items():
            key = next(s.id_column for s in SPECS.values() if s.table == table)
            final, ids = client.query(f"SELECT count(), uniqExact({key}) FROM {table} FINAL").result_rows[0]
            assert final == ids == n, table
        amount = client.query("SELECT sum(amount) FROM decisions FINAL").result_rows[0][0]
        assert amount == sum(Decimal(r["amount"]) for tp, r in records if tp == "decisions")
    finally:
        client.close()
