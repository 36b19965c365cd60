"""Back-testing: run the real pipeline on a JSONL file and collect every output.

``replay`` starts (or reuses) the broker and Redis, starts real ``riskmon worker`` processes, produces
the file in file order (optionally paced by event time), consumes the output topics into JSONL files —
each record once, by id, since at-least-once delivery may repeat a record after a crash — waits until
the workers' consumer group has committed every input offset, then snapshots the final state.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from riskmon import contract
from riskmon import outputs as out
from riskmon.config import Settings
from riskmon.eventtime import parse_ts
from riskmon.ladder import dpd_at
from riskmon.money import fmt
from riskmon.services import procs
from riskmon.services.stack import Stack
from riskmon.state.accounts import scan_states
from streams.topics import all_topic_names, unprefixed

ID_FIELDS = ("event_id", "alert_id", "report_id", "dead_letter_id")
FILES = {
    out.TOPIC_ALERTS: "alerts.jsonl",
    out.TOPIC_LIMIT_CHANGES: "limit_changes.jsonl",
    out.TOPIC_BUREAU: "bureau_reports.jsonl",
    out.TOPIC_DEAD_LETTERS: "dead_letters.jsonl",
}


def record_id(rec: dict[str, Any]) -> str:
    """The id that makes a record unique (what consumers deduplicate on)."""
    for f in ID_FIELDS:
        if f in rec:
            return str(rec[f])
    return orjson.dumps(rec).decode()


@dataclass
class OutputCollector:
    """Consumes every output topic from the beginning, keeping each record once (by id)."""

    bootstrap: str
    prefix: str = ""
    sink: Any = None  # optional sinks.clickhouse FactSink (add(topic, record))
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    consumed: Counter = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def start(self) -> None:
        """Consume in a background thread."""
        self._thread = threading.Thread(target=self._run, name="output-collector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                     auto_offset_reset="earliest", consumer_timeout_ms=500,
                                     fetch_max_bytes=16 * 1024 * 1024)
            topics = list(out.OUTPUT_TOPICS)
            if self.sink is not None:  # the metric facts come from the input topic itself
                topics.append(contract.TOPIC_METRICS)
            tps = [TopicPartition(self.prefix + t, p) for t in topics
                   for p in (consumer.partitions_for_topic(self.prefix + t) or ())]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            self.consumer, self.tps = consumer, tps
            while not self._stop.is_set():
                for topic_records in consumer.poll(timeout_ms=200, max_records=5000).values():
                    for msg in topic_records:
                        topic = unprefixed(msg.topic, self.prefix)
                        if topic == contract.TOPIC_METRICS:
                            ev = contract.decode(topic, msg.value)
                            if not isinstance(ev, contract.Rejected):  # dead letters are not facts
                                self.sink.add(topic, orjson.loads(msg.value))
                            continue
                        rec = orjson.loads(msg.value)
                        bucket = self.records.setdefault(topic, {})
                        rid = record_id(rec)
                        self.consumed[topic] += 1
                        if rid not in bucket:
                            bucket[rid] = rec
                            if self.sink is not None:
                                self.sink.add(topic, rec)
                self.positions = {tp: consumer.position(tp) for tp in tps}
            consumer.close()
        except BaseException as exc:  # surfaced by caught_up()/stop()
            self.error = exc

    def caught_up(self, end_offsets: dict[TopicPartition, int]) -> bool:
        """True when every output partition has been read to ``end_offsets``."""
        if self.error:
            raise RuntimeError(f"output collector failed: {self.error!r}") from self.error
        pos = getattr(self, "positions", None)
        return pos is not None and all(pos.get(tp, 0) >= end for tp, end in end_offsets.items()
                                       if unprefixed(tp.topic, self.prefix) != contract.TOPIC_METRICS)

    def stop(self) -> None:
        """Stop consuming."""
        self._stop.set()
        self._thread.join(timeout=10)


def produce_file(path: Path, bootstrap: str, speed: float = 0.0,
                 progress: Callable[[int, int], None] | None = None, prefix: str = "") -> tuple[int, Counter]:
    """Produce every line of a simulator/replay file to its topic, in file order."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024, acks="all",
                             max_request_size=2 * 1024 * 1024, retries=10)
    n = 0
    per_topic: Counter = Counter()
    first_ts = start = None
    last_ts: int | None = None
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            doc = orjson.loads(line)
            topic = doc["topic"]
            raw = doc["raw"].encode("utf-8", "surrogatepass") if "raw" in doc else orjson.dumps(doc["value"])
            key = doc.get("key") or _key_of(doc)
            if speed > 0 and "value" in doc and isinstance(doc["value"], dict):
                try:
                    ts = parse_ts(doc["value"].get("ts"))
                except Exception:  # noqa: BLE001 - bad ts goes through unpaced
                    ts = None
                if ts is not None:
                    if first_ts is None:
                        first_ts, start = ts, time.monotonic()
                    wait = (ts - first_ts) / 1000 / speed - (time.monotonic() - start)
                    if wait > 0:
                        time.sleep(min(wait, 5.0))
            ts_ms = _event_ts(doc)
            last_ts = ts_ms or last_ts  # a line without a readable ts gets its predecessor's (file order ~ time)
            producer.send(prefix + topic, key=key.encode() if key else None, value=raw, timestamp_ms=last_ts)
            n += 1
            per_topic[topic] += 1
            if progress and n % 2000 == 0:
                progress(n, 0)
    producer.flush()
    producer.close()
    if progress:
        progress(n, 0)
    return n, per_topic


def _event_ts(doc: dict[str, Any]) -> int | None:
    """The line's event time, used as the Kafka message timestamp (so dead letters land on the time axis)."""
    v = doc.get("value")
    if isinstance(v, dict):
        try:
            return parse_ts(v.get("ts"))
        except Exception:  # noqa: BLE001 - a bad ts is the consumer's to reject
            return None
    return None


def _key_of(doc: dict[str, Any]) -> str | None:
    v = doc.get("value")
    if isinstance(v, dict):
        k = v.get("enterprise_id") if doc["topic"] == contract.TOPIC_METRICS else v.get("user_id")
        return k if isinstance(k, str) else None
    return None


def group_lag(bootstrap: str, group: str, topics: tuple[str, ...]) -> int | None:
    """Uncommitted input messages of the worker group (None until the group has committed at all)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        try:
            committed = admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError:  # the group's coordinator is not there yet: the workers are still joining
            return None
        tps = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            pos = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, ends[tp] - pos)
        return lag
    finally:
        admin.close()
        consumer.close()


def output_end_offsets(bootstrap: str, prefix: str = "") -> dict[TopicPartition, int]:
    """Current end offsets of every output partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(prefix + t, p) for t in out.OUTPUT_TOPICS
               for p in (consumer.partitions_for_topic(prefix + t) or ())]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


def snapshot_accounts(redis_url: str, lateness_ms: int) -> list[dict[str, Any]]:
    """Final state per user from Redis, DPD as of the final watermark."""
    r = redis.Redis.from_url(redis_url)
    max_seen = int(r.get("rm:wm") or 0)
    wm = max_seen - lateness_ms if max_seen else 0
    rows = []
    for st in scan_states(r):
        oldest = st.ledger.oldest_unpaid()
        rows.append({
            "user_id": st.user_id,
            "credit_limit": fmt(st.credit_limit),
            "outstanding": fmt(st.ledger.outstanding),
            "credit_balance": fmt(st.ledger.credit_balance),
            "available": fmt(st.available),
            "dpd": dpd_at(oldest.due if oldest else None, wm),
            "grade": st.grade,
            "frozen": st.frozen,
            "pd": st.last_pd,
            "model_version": st.model_version,
        })
    r.close()
    rows.sort(key=lambda row: row["user_id"])
    return rows


async def _snapshot_enterprises(redis_url: str, settings: Settings) -> list[dict[str, Any]]:
    import redis.asyncio as aioredis

    from riskmon.ews.service import EwsService
    from riskmon.policy import load_policy

    client = aioredis.from_url(redis_url)
    try:
        svc = EwsService(client, load_policy(settings.policy_path).section("ews"), settings.state_ttl_days * 86_400)
        return await svc.snapshot()
    finally:
        await client.aclose()


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")


@dataclass
class ReplayResult:
    """Where the outputs went and the summary."""

    out_dir: Path
    summary: dict[str, Any]


def _audit_sink(sink: Any, records: dict[str, dict[str, dict[str, Any]]]) -> int:
    """Chain the replay's customer-affecting records into the sink's ClickHouse audit log, then anchor.

    Why here: replay is the sink of its own run (``OutputCollector`` feeds the FactSink), so it owes
    the audit trail what ``riskmon sink`` does. ``records`` is per topic in consumption order, so each
    subject's decisions are chained in the order they were made; re-appends are skipped by record id.
    """
    client = getattr(sink, "client", None)
    if client is None:
        return 0
    from riskmon.audit import AUDITED_TYPES, AuditLog

    log = AuditLog.from_policy(client)
    batch = [(topic, rec) for topic in AUDITED_TYPES for rec in records.get(topic, {}).values()]
    n = sum(log.append(batch[i:i + 5000]) for i in range(0, len(batch), 5000))
    log.anchor()
    return n


def start_workers(n: int, stack: Stack, settings: Settings, log_dir: Path, extra_env: dict[str, str]) -> list[procs.Proc]:
    """Start n ``riskmon worker`` processes in one consumer group."""
    env = {**stack.env(), **extra_env}
    return [procs.start(f"worker-{i}", [sys.executable, "-m", "riskmon.cli.main", "worker"], log_dir=log_dir, env=env)
            for i in range(n)]


class ReplayError(RuntimeError):
    """The replay cannot run as configured; the message says what to change."""


def replay(path: Path, out_dir: Path, settings: Settings, *, speed: float = 0.0, workers: int = 1,
           broker: str | None = None, sink: Any = None, say: Callable[[str], None] = print,
           progress: Callable[[str, dict[str, Any]], None] | None = None, timeout_s: float = 1800,
           reset_state: bool = False) -> ReplayResult:
    """Run the pipeline on ``path`` and write the output files to ``out_dir`` (see module docstring).

    The replay's state must start empty: a Redis the replay starts itself is new; a configured one
    (``RISKMON_REDIS_URL``) is emptied only with ``reset_state=True``, never silently. Topics get a
    fresh prefix so a shared broker's earlier messages are not read again.
    """
    if settings.redis_url and not reset_state:
        raise ReplayError(f"RISKMON_REDIS_URL is set ({settings.redis_url}): replay would mix its state with "
                          "what is there. Unset it to use a fresh redis-server, or pass --reset-state to "
                          "empty that Redis first.")
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = settings.var_dir / "logs"
    run_id = f"{int(time.time() * 1000):x}"
    app_id = f"riskmon-replay-{run_id}"
    prefix = f"{settings.topic_prefix}r{run_id}."
    t0 = time.monotonic()
    with Stack(settings, broker=broker, ephemeral_broker=True, log=say) as stack:
        say(f"broker {stack.broker_kind} at {stack.bootstrap}, redis at {stack.redis_url}")
        redis.Redis.from_url(stack.redis_url).flushdb()
        stack.create_topics(all_topic_names(prefix), settings.partitions)
        collector = OutputCollector(stack.bootstrap, prefix=prefix, sink=sink)
        collector.start()
        procs_ = start_workers(workers, stack, settings, log_dir,
                               {"RISKMON_APP_ID": app_id, "RISKMON_PARTITIONS": str(settings.partitions),
                                "RISKMON_TOPIC_PREFIX": prefix})
        try:
            n_in, per_topic = produce_file(path, stack.bootstrap, speed,
                                           (lambda n, _: progress("produce", {"events_in": n})) if progress else None,
                                           prefix=prefix)
            say(f"produced {n_in} messages in {time.monotonic() - t0:.1f}s; waiting for workers to drain")
            deadline = time.monotonic() + timeout_s
            last_ends: dict = {}
            while True:
                for p in procs_:
                    if not p.alive():
                        raise RuntimeError(f"worker {p.name} exited:\n{p.log_tail()}")
                lag = group_lag(stack.bootstrap, app_id, tuple(prefix + t for t in contract.INPUT_TOPICS))
                if progress:
                    r = redis.Redis.from_url(stack.redis_url)
                    stats = r.hgetall("rm:stats")
                    progress("drain", {"lag": lag, "event_time_ms": int(r.get("rm:wm") or 0),
                                       "alerts": len(collector.records.get(out.TOPIC_ALERTS, {})),
                                       "dead_letters_out": len(collector.records.get(out.TOPIC_DEAD_LETTERS, {})),
                                       **{k.decode(): int(v) for k, v in stats.items()}})
                    r.close()
                if lag == 0:
                    # drained when the outputs stop growing for two polls and all of them were read
                    # (the workers' timers may still fire once the last backlog cleared)
                    ends = output_end_offsets(stack.bootstrap, prefix)
                    if collector.caught_up(ends) and ends == last_ends:
                        break
                    last_ends = ends
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replay did not drain within {timeout_s}s (lag {lag})")
                time.sleep(1.0)
        finally:
            for p in procs_:
                procs.stop(p)
            collector.stop()
        accounts = snapshot_accounts(stack.redis_url, settings.allowed_lateness_s * 1000)
        enterprises = asyncio.run(_snapshot_enterprises(stack.redis_url, settings))
        stats = {k.decode(): int(v) for k, v in redis.Redis.from_url(stack.redis_url).hgetall("rm:stats").items()}
    recs = collector.records
    _audit_sink(sink, recs)
    for topic, name in FILES.items():
        _write_jsonl(out_dir / name, sorted(recs.get(topic, {}).values(), key=lambda r: (r.get("ts", ""), record_id(r))))
    _write_jsonl(out_dir / "accounts.jsonl", accounts)
    _write_jsonl(out_dir / "enterprises.jsonl", enterprises)
    summary = {
        "events_in": n_in,
        "events_in_by_topic": dict(per_topic),
        "events_valid": stats.get("events_valid", 0) + stats.get("metrics_valid", 0),
        "duplicates": stats.get("duplicates", 0) + stats.get("metrics_duplicates", 0),
        "dead_letters": len(recs.get(out.TOPIC_DEAD_LETTERS, {})),
        "alerts_by_kind": dict(sorted(Counter(a["kind"] for a in recs.get(out.TOPIC_ALERTS, {}).values()).items())),
        "limit_changes_by_action": dict(sorted(Counter(
            c["action"] for c in recs.get(out.TOPIC_LIMIT_CHANGES, {}).values()).items())),
        "bureau_reports": len(recs.get(out.TOPIC_BUREAU, {})),
        "accounts": len(accounts),
        "enterprises": len(enterprises),
        "workers": workers,
        "partitions": settings.partitions,
        "wall_seconds": round(time.monotonic() - t0, 1),
    }
    (out_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return ReplayResult(out_dir, summary)
