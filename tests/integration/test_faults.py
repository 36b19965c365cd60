"""Issue 7's outage tests on real services: Redis restarted mid-stream, a slow hook destination,
ClickHouse unreachable (rows bounded, written once, audit chained once).

The kill -9 test is in test_kill9.py; the shared rig in test_faults_rig.py; docs/reliability.md maps
each guarantee to its test.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from riskmon import contract
from riskmon.audit import AUDITED_TYPES, AuditLog
from riskmon.replay import produce_file
from riskmon.services import procs
from riskmon.services.redis import start_redis
from riskmon.services.stack import Stack
from simulator import SimConfig, write_jsonl
from sinks.clickhouse import consumer as sink_consumer
from sinks.clickhouse.client import connect
from sinks.clickhouse.consumer import SinkStats, bootstrap_servers, run_sink
from sinks.clickhouse.rows import SINK_TOPICS, SPECS
from sinks.clickhouse.sample import sample_records
from sinks.clickhouse.writer import FactSink
from tests.integration.test_faults_rig import (
    HOOK_SECRET,
    HookReceiver,
    Pipeline,
    fast_hooks_policy,
    ledger_outstanding,
    truth_mismatches,
    valid_user_events,
    wait_for,
)

pytestmark = pytest.mark.integration

RETRY_LINE = re.compile(rb"redis or broker unavailable")


def _simulate(tmp: Path, sim: SimConfig) -> tuple[Path, dict]:
    src, truth_path = tmp / "in.jsonl", tmp / "truth.json"
    write_jsonl(sim, src, truth_path)
    return src, orjson.loads(truth_path.read_bytes())


def _committed_inputs(bootstrap: str, group: str, prefix: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    inputs = {prefix + t for t in contract.INPUT_TOPICS}
    return {tp: om.offset for tp, om in offsets.items() if tp.topic in inputs}


def _settled_offsets(bootstrap: str, group: str, prefix: str, deadline_s: float = 30) -> dict[TopicPartition, int]:
    """Committed input offsets once two reads 2 s apart agree (commit interval 1 s)."""
    end = time.monotonic() + deadline_s
    last = _committed_inputs(bootstrap, group, prefix)
    while time.monotonic() < end:
        time.sleep(2)
        cur = _committed_inputs(bootstrap, group, prefix)
        if cur == last:
            return cur
        last = cur
    raise AssertionError("committed offsets kept moving while Redis was down")


# ------------------------------------------------------------------------------ Redis restarted
def _redis_outage_rig(tmp_path: Path, settings, seed: int) -> tuple[Path, dict, Any, Stack, Pipeline]:  # noqa: ANN001
    """A 450-user simulation, a persistent redis-server the test may stop, Apache Kafka, no worker yet."""
    src, truth = _simulate(tmp_path, SimConfig(days=100, users=450, enterprises=0, seed=seed))
    server = start_redis(tmp_path / "redis-var", persist=True)
    s = settings(broker="apache", redis=False, clickhouse=False, redis_url=server.url, partitions=4)
    stack = Stack(s, broker=s.broker_url)
    stack.start()  # external broker, the redis-server above: starts nothing
    return src, truth, server, stack, Pipeline(stack, s, tmp_path / "logs")


def test_redis_restart_mid_stream_loses_nothing_and_applies_nothing_twice(tmp_path: Path, settings) -> None:  # noqa: ANN001
    """Stop redis-server mid-stream, start a new one on the same port from its append-only file."""
    src, truth, server, stack, pipe = _redis_outage_rig(tmp_path, settings, seed=41)
    n_valid = valid_user_events(truth)
    retry_lines = 0
    try:
        pipe.start_worker(0)
        pipe.start_worker(1)
        # both in the group before any data: this test is about Redis going away, not about a rebalance
        # during the outage (docs/reliability.md, "Known limits")
        pipe.wait_assigned(0)
        pipe.wait_assigned(1)
        produce_file(src, stack.bootstrap, prefix=pipe.prefix)
        wait_for(lambda: pipe.stats().get("events_valid", 0) >= n_valid // 3, "a third of the stream applied",
                 300, pipe.check_alive)
        procs.stop(server.proc)  # SIGTERM: redis-server fsyncs its AOF and exits; clients get connection errors

        def retries() -> int:
            return sum(len(RETRY_LINE.findall(p.log_path.read_bytes())) for p in pipe.workers.values())

        # offsets must not move while every batch fails: wait past the 1 s commit interval, then compare
        wait_for(lambda: retries() >= 6, "workers backing off", 120, pipe.check_alive)
        # offsets acked before Redis stopped may still be committed by a delayed commit timer: let them settle
        before = _settled_offsets(stack.bootstrap, pipe.app_id, pipe.prefix)
        seen = retries()
        wait_for(lambda: retries() >= seen + 4, "more retries", 120, pipe.check_alive)
        during = _committed_inputs(stack.bootstrap, pipe.app_id, pipe.prefix)
        retry_lines = retries()
        server = start_redis(tmp_path / "redis-var", persist=True, port=server.port)
        pipe.drain()
        stats = pipe.stats()
        outstanding = ledger_outstanding(server.url)
        resets = pipe.offset_resets()
    finally:
        pipe.stop()
        procs.stop(server.proc)
    assert during == before, "offsets were committed while Redis was down"
    assert sum(before.values()) < sum(truth["counts"]["per_topic"][t]["lines"] for t in contract.INPUT_TOPICS)
    assert retry_lines >= 10
    assert resets == 0
    assert stats["events_valid"] == n_valid  # nothing lost, nothing applied twice
    assert truth_mismatches(truth, outstanding) == {}


def test_rebalance_while_redis_is_down_drops_the_stuck_batch_and_loses_nothing(tmp_path: Path, settings) -> None:  # noqa: ANN001
    """A second worker joins while Redis is down: the first one's stuck batch must not be applied later."""
    src, truth, server, stack, pipe = _redis_outage_rig(tmp_path, settings, seed=43)
    n_valid = valid_user_events(truth)
    try:
        pipe.start_worker(0)
        pipe.wait_assigned(0)
        produce_file(src, stack.bootstrap, prefix=pipe.prefix)
        wait_for(lambda: pipe.stats().get("events_valid", 0) >= n_valid // 3, "a third of the stream applied",
                 300, pipe.check_alive)
        procs.stop(server.proc)
        pipe.start_worker(1)  # joins the group during the outage: partitions move away from worker 0
        pipe.wait_assigned(1)
        server = start_redis(tmp_path / "redis-var", persist=True, port=server.port)
        pipe.drain()
        stats = pipe.stats()
        outstanding = ledger_outstanding(server.url)
        resets = pipe.offset_resets()
        dropped = sum(p.log_path.read_bytes().count(b"dropping it") for p in pipe.workers.values())
    finally:
        pipe.stop()
        procs.stop(server.proc)
    print("rebalance during outage", {"stats": stats, "dropped_batches": dropped})
    assert resets == 0
    assert stats["events_valid"] == n_valid  # nothing lost, nothing applied twice
    assert truth_mismatches(truth, outstanding) == {}


# ------------------------------------------------------------------------------ slow hook destination
def test_slow_hook_never_stalls_processing_and_shutdown_dead_letters_the_queue(tmp_path: Path, settings) -> None:  # noqa: ANN001
    """A receiver that takes 2 s per request: the stream drains while it has handled only a few alerts;
    on SIGTERM the worker stops its HookDispatcher, which dead-letters what is still queued (Redis list
    ``hooks:dead`` and the ``hook-dead-letters`` topic) instead of dropping it."""
    src, truth = _simulate(tmp_path, SimConfig(days=75, users=300, enterprises=0, seed=43))
    n_valid = valid_user_events(truth)
    receiver = HookReceiver(delay_s=2.0).start()
    s = settings(broker="apache", clickhouse=False, partitions=4)
    stack = Stack(s, broker=s.broker_url)
    stack.start()
    redis.Redis.from_url(stack.redis_url).flushall()
    pipe = Pipeline(stack, s, tmp_path / "logs", extra_env={
        "RISKMON_POLICY_FILE": str(fast_hooks_policy(tmp_path)),
        "RISKMON_HOOK_EVENTS_WEBHOOK_URL": receiver.url,
        "RISKMON_HOOK_SECRET": HOOK_SECRET,
    })
    try:
        pipe.start_worker(0)
        produce_file(src, stack.bootstrap, prefix=pipe.prefix)
        pipe.drain()
        handled_at_drain = len(receiver.hits)
        stats = pipe.stats()
        alerts = pipe.read_topic("alerts")
        # SIGTERM -> Faust shutdown -> HookDispatcher.stop(): thousands of queued jobs to dead-letter
        exit_codes = pipe.stop(timeout=120)
        dead = [orjson.loads(x) for x in redis.Redis.from_url(stack.redis_url).lrange("hooks:dead", 0, -1)]
        dead_topic = pipe.read_topic("hook-dead-letters")
    finally:
        pipe.stop()
        receiver.stop()
    assert stats["events_valid"] == n_valid
    assert len(alerts) >= 100, "too few alerts for the test to mean anything"
    assert handled_at_drain < len(alerts) // 4, (handled_at_drain, len(alerts))
    assert exit_codes[0] != -9, "the worker did not finish its shutdown"
    shutdown = [d for d in dead if d["error"].startswith("shutdown")]
    assert len(shutdown) >= len(alerts) // 2
    assert {d["dedup_key"] for d in dead_topic} >= {d["dedup_key"] for d in shutdown}


# ------------------------------------------------------------------------------ ClickHouse outage
class Outage:
    """The real chdb client whose inserts are refused while ``up`` is clear (ClickHouse unreachable)."""

    def __init__(self, client, up: threading.Event) -> None:  # noqa: ANN001
        self.client, self.up, self.refused = client, up, 0

    def insert(self, table, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201
        if not self.up.is_set() and table != "schema_migrations":
            self.refused += 1
            raise ConnectionError("ClickHouse is unreachable")
        return self.client.insert(table, *a, **kw)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.client, name)


class PeakSink(FactSink):
    """The real FactSink, also recording the most rows it ever held (the memory bound under test)."""

    peak = 0

    def add(self, *a, **kw) -> bool:  # noqa: ANN002, ANN003
        ok = super().add(*a, **kw)
        PeakSink.peak = max(PeakSink.peak, self.pending)
        return ok


def _topic_ids(bootstrap: str) -> tuple[dict[str, set[str]], int]:
    """Distinct record ids per sink topic on the broker (shared with other tests), and the message count."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    out: dict[str, set[str]] = {}
    try:
        tps = [TopicPartition(t, p) for t in SINK_TOPICS for p in c.partitions_for_topic(t) or ()]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        n_msgs = sum(ends.values())
        while any(c.position(tp) < ends[tp] for tp in tps):
            for tp, msgs in c.poll(timeout_ms=500).items():
                for m in msgs:
                    try:
                        rec = orjson.loads(m.value)
                        rid = rec.get(SPECS[tp.topic].id_column) if isinstance(rec, dict) else None
                    except orjson.JSONDecodeError:
                        continue
                    if rid:
                        out.setdefault(tp.topic, set()).add(str(rid))
    finally:
        c.close()
    return out, n_msgs


def run_outage(tmp: Path, settings, outage_s: float | None, monkeypatch) -> None:  # noqa: ANN001
    dsn = f"chdb://{tmp / 'ch'}"
    s = settings(broker="apache", redis=False, clickhouse=False, clickhouse_dsn=dsn)
    bootstrap = bootstrap_servers(s)
    records = sample_records(days=4, users=120, enterprises=6, seed=31)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for topic, rec in records:
        producer.send(topic, key=str(rec.get("user_id") or rec.get("enterprise_id") or "k").encode(),
                      value=orjson.dumps(rec))
    producer.flush()
    producer.close()
    monkeypatch.setattr(sink_consumer, "FactSink", PeakSink)
    PeakSink.peak = 0
    up = threading.Event()
    wrappers: list[Outage] = []

    def factory(d: str) -> Outage:
        wrappers.append(Outage(connect(d), up))
        return wrappers[-1]

    stats, stop = SinkStats(), threading.Event()
    max_rows, bound = 100, 250
    t = threading.Thread(target=run_sink, args=(s,), daemon=True, kwargs={
        "stop_event": stop, "stats": stats, "client_factory": factory, "max_rows": max_rows,
        "max_interval_s": 0.2, "max_buffer_rows": bound})
    t.start()
    try:
        wait_for(lambda: stats.flush_failures >= 3, "failed flushes", 120, lambda: None)
        if outage_s:
            time.sleep(outage_s)  # the long outage variant: keep ClickHouse away this long
        held_during = PeakSink.peak
        assert stats.written == 0 and stats.commits == 0
        up.set()
        expected, n_msgs = _topic_ids(bootstrap)
        wait_for(lambda: stats.consumed >= n_msgs, "everything consumed", 300, lambda: None)
        stop.set()
        t.join(60)
        assert not t.is_alive()
    finally:
        stop.set()
        up.set()
    assert 0 < held_during <= bound and PeakSink.peak <= bound
    assert wrappers[0].refused >= 3
    client = connect(dsn)
    try:
        for topic, ids in expected.items():
            if topic == contract.TOPIC_METRICS:  # raw input: another test put an invalid one there
                continue
            spec = SPECS[topic]
            n, uniq = client.query(f"SELECT count(), uniqExact({spec.id_column}) FROM {spec.table} FINAL").result_rows[0]
            assert n == uniq == len(ids), topic
        log = AuditLog.from_policy(client)
        audited = {t: ids for t, ids in expected.items() if t in AUDITED_TYPES}
        rows = Counter(dict(client.query("SELECT record_type, count() FROM audit_log GROUP BY record_type").result_rows))
        assert rows == Counter({t: len(ids) for t, ids in audited.items()})  # each decision chained once
        report = log.verify()
        assert report.ok, report.first_problem
        assert report.anchors_checked >= 1  # anchored on shutdown
    finally:
        client.close()
    assert stats.audited == sum(len(ids) for ids in audited.values())


def test_clickhouse_outage_rows_bounded_written_once_and_audited_once(tmp_path: Path, settings, monkeypatch) -> None:  # noqa: ANN001
    run_outage(tmp_path, settings, None, monkeypatch)


@pytest.mark.slow
def test_clickhouse_outage_60s(tmp_path: Path, settings, monkeypatch) -> None:  # noqa: ANN001
    run_outage(tmp_path, settings, 60.0, monkeypatch)
