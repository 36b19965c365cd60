"""Stage (e): event -> decision latency at a fixed offered rate.

The bench produces purchases (and the other input traffic, in simulator order) at ``rate`` messages/s,
taking the monotonic clock just before each purchase's send; a consumer on ``decisions`` takes the clock
when each decision arrives and matches it to its purchase by ``event_id``. Latency therefore includes the
producer's linger, the broker (twice), the worker's batching window, processing and the output flush.
The first ``warmup_s`` seconds are left out (group join, model restore, first Redis reads).

The harness shares the machine's cores with what it measures, so what it costs is part of the result:

- **The producer is the Kafka Java client** (``PacedProducer.java``, a process of its own) by default.
  librdkafka sends one ProduceRequest per partition (librdkafka issue #1700): paced at 5k/s over 12
  input partitions that was ~1 600 requests/s, and the broker spent more CPU on them than on the
  pipeline's own traffic. The Java client puts every ready partition in one request per broker, as the
  lender's own services would. ``producer="librdkafka"`` keeps the old harness (no JVM needed).
- **Why not aiokafka**: paced at 5k/s its producer cost ~100 µs of CPU per message (half a core) in the
  bench's own process (docs/performance.md, session 10).
- Pacing is by ticks: every ``tick_s`` what is due is sent in one go, and each purchase's clock starts
  just before its own send, so a tick never flatters a measurement; it only sets how bursty the offered
  rate is within ``tick_s``.
- Both clocks are CLOCK_MONOTONIC (Java's ``System.nanoTime`` on Linux, Python's ``time.monotonic_ns``);
  a negative latency would mean they are not, and fails the stage.
"""

from __future__ import annotations

import array
import collections
import contextlib
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from riskmon import outputs as out
from riskmon.bench.dataset import Line
from riskmon.bench.drain import consumers_cpu, cpu_snapshot

JAVA_SOURCE = Path(__file__).with_name("PacedProducer.java")
PRODUCERS = ("java", "librdkafka")
# C1 only and the serial collector: the producer's JIT would otherwise compile inside the measured window
JAVA_OPTS = ("-Xmx256m", "-Xms32m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
JAVA_READY_TIMEOUT_S = 120.0  # the JVM start plus compiling PacedProducer.java on a loaded 2-core box
JAVA_SILENT_TIMEOUT_S = 60.0  # it reports every 1 000 records; this long without a line is a hang
WINDOW_S = 10.0  # the offered window's latencies are also reported per this many seconds


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank (0.0 for no values)."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


class _Decisions(threading.Thread):
    """Reads ``decisions`` from the beginning and notes when each event id's first decision arrived.

    A thread of its own: librdkafka waits for records without the GIL, so the producer's pacing in the
    main thread is not held up by it."""

    def __init__(self, bootstrap: str, topic: str, consumer: Any = None) -> None:
        """``consumer``: an already assigned consumer (tests); by default one reading ``topic`` from the start."""
        super().__init__(name="bench-decisions", daemon=True)
        if consumer is None:
            # fetch.min.bytes stays 1, so the broker answers a fetch as soon as a decision is there; the
            # wait only bounds an empty poll. At 5 ms the empty polls alone cost the broker ~0.13 core
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-latency-{os.getpid()}",
                                 "enable.auto.commit": False, "fetch.wait.max.ms": 100})
            meta = consumer.list_topics(topic, timeout=30).topics[topic]
            if meta.error is not None:
                raise KafkaException(meta.error)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)])
        self.consumer = consumer
        self.got_ns: dict[str, int] = {}
        self.last_decision = time.monotonic()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        """Stamp each decision when this thread gets it, not at the end of a wait for more.

        Why not ``consume(num_messages=5000, timeout=0.02)`` alone (what this did before session 14): it
        returns when 5 000 records are there or the 20 ms have passed, so every decision was stamped at
        the end of that window, on average ~10 ms after it arrived. ``poll`` returns as soon as one record
        is there; what was fetched with it is then taken without waiting (``timeout=0``), and the clock is
        read after that, so a stamp is never early.
        """
        try:
            while not self.stop.is_set():
                first = self.consumer.poll(0.02)
                if first is None:
                    continue
                msgs = [first, *self.consumer.consume(num_messages=5000, timeout=0)]
                now_ns = time.monotonic_ns()
                for msg in msgs:
                    if msg.error() is not None:
                        continue  # end-of-partition notices and transient errors: librdkafka retries
                    eid = orjson.loads(msg.value()).get("event_id")
                    if eid is not None:
                        self.got_ns.setdefault(eid, now_ns)
                        self.last_decision = now_ns / 1e9
        except BaseException as exc:  # noqa: BLE001 - reported by the producer side (measure)
            self.error = exc
        finally:
            self.consumer.close()


class _Sent:
    """Send times of the measured purchases (monotonic ns), and the first send's."""

    def __init__(self) -> None:
        self.t0_ns = 0
        self.at_ns: dict[str, int] = {}


def _pace_librdkafka(lines: Sequence[Line], bootstrap: str, prefix: str, rate: float, tick_s: float,
                     progress: Callable[[int], None] | None, decisions: _Decisions) -> _Sent:
    """The old harness: librdkafka in this process, one ProduceRequest per partition per tick."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all",
                         "message.max.bytes": 2 * 1024 * 1024})
    sent = _Sent()
    t0 = time.monotonic()
    sent.t0_ns = int(t0 * 1e9)
    i, n = 0, len(lines)
    while i < n:
        due_until = min(n, int((time.monotonic() - t0) * rate) + 1)
        while i < due_until:
            line = lines[i]
            if line.purchase_id is not None:  # before produce: the decision cannot overtake it
                sent.at_ns.setdefault(line.purchase_id, time.monotonic_ns())
            try:
                producer.produce(prefix + line.topic, line.value, key=line.key)
            except BufferError:  # librdkafka's queue is full: let it deliver, then this line again
                producer.poll(0.01)
                continue
            i += 1
            if progress and i % 1000 == 0:
                progress(1000)
        producer.poll(0)  # delivery reports (none registered) and errors
        if decisions.error is not None:
            raise decisions.error
        if i < n:
            time.sleep(max(tick_s, t0 + i / rate - time.monotonic()))
    if producer.flush(60):
        raise RuntimeError("the latency producer could not deliver everything within 60 s")
    if progress and n % 1000:
        progress(n % 1000)
    return sent


class JavaPacer:
    """``PacedProducer.java`` in a JVM of its own: started (metadata fetched) before the measured
    window, paced by :meth:`run` inside it. See the module docstring for why."""

    def __init__(self, lines: Sequence[Line], bootstrap: str, prefix: str, rate: float, tick_s: float,
                 work_dir: Path, java: str, kafka_lib: Path) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="paced-", dir=work_dir))
        self._timed: list[str] = []
        inp = self._dir / "records.bin"
        with open(inp, "wb", buffering=1 << 20) as f:
            for line in lines:
                topic = (prefix + line.topic).encode()
                timed = line.purchase_id is not None
                if timed:
                    self._timed.append(line.purchase_id)  # type: ignore[arg-type]
                f.write(struct.pack(">BI", timed, len(topic)) + topic + struct.pack(">I", len(line.key))
                        + line.key + struct.pack(">I", len(line.value)) + line.value)
        self._times = self._dir / "times.bin"
        topics = sorted({prefix + line.topic for line in lines})
        self._stderr: IO[bytes] = open(self._dir / "stderr.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [java, *JAVA_OPTS, "-cp", f"{kafka_lib}/*", str(JAVA_SOURCE), bootstrap, str(inp), str(self._times),
             repr(rate), repr(tick_s * 1000), *topics],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._said: collections.deque[str] = collections.deque(maxlen=40)  # stdout lines outside the protocol
        threading.Thread(target=self._read, name="paced-producer-out", daemon=True).start()
        try:
            self._expect("ready", JAVA_READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _next(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the paced producer said nothing for {timeout:.0f} s; its output:\n"
                               f"{self._output_tail()}") from None
        if line is None:
            self.proc.wait(5)
            raise RuntimeError(f"the paced producer exited ({self.proc.returncode}); its output:\n{self._output_tail()}")
        if line.startswith("error "):
            raise RuntimeError(f"the paced producer could not deliver: {line[6:]}")
        return line

    def _expect(self, word: str, timeout: float) -> str:
        while True:
            line = self._next(timeout)
            if line.split(" ", 1)[0] == word:
                return line
            self._said.append(line)

    def _output_tail(self) -> str:
        """What the JVM said besides the protocol (it reports start-up failures on stdout), and its stderr."""
        self._stderr.flush()
        return "\n".join([*self._said, (self._dir / "stderr.log").read_text(errors="replace")[-3000:]])

    def run(self, progress: Callable[[int], None] | None, decisions: _Decisions) -> _Sent:
        """Pace every record; returns once the producer has flushed them all."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        reported = 0
        while True:
            line = self._next(JAVA_SILENT_TIMEOUT_S)
            if decisions.error is not None:
                raise decisions.error
            word, _, rest = line.partition(" ")
            if word == "sent" and progress:
                progress(int(rest) - reported)
                reported = int(rest)
            elif word == "done":
                t0, n = (int(x) for x in rest.split())
                if progress and n > reported:
                    progress(n - reported)
                break
        times = array.array("q")
        times.frombytes(self._times.read_bytes())
        if sys.byteorder == "little":
            times.byteswap()  # Java's DataOutputStream writes big-endian
        if len(times) != len(self._timed):
            raise RuntimeError(f"the paced producer timed {len(times)} purchases of {len(self._timed)}")
        sent = _Sent()
        sent.t0_ns = t0
        for eid, ns in zip(self._timed, times, strict=True):
            sent.at_ns.setdefault(eid, ns)
        return sent

    def close(self) -> None:
        """Let the producer exit (it waits for this once done, so that its CPU can be read), then tidy."""
        with contextlib.suppress(Exception):
            self.proc.stdin.write("exit\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        self._stderr.close()
        for f in self._dir.iterdir():
            f.unlink()
        self._dir.rmdir()


def measure_latency(lines: Sequence[Line], bootstrap: str, prefix: str, *, rate: float, warmup_s: float = 5.0,
                    settle_s: float = 15.0, progress: Callable[[int], None] | None = None,
                    pids: dict[str, int] | None = None, tick_s: float = 0.005,
                    consumed: Callable[[], int] | None = None, producer: str = "java",
                    work_dir: Path | None = None) -> dict[str, Any]:
    """Produce ``lines`` paced at ``rate``/s to ``prefix`` topics and measure purchase -> decision latency.

    A worker consuming ``prefix`` topics must already be running and have joined its group. ``pids``
    (name -> pid; this process is added as ``bench``, the Java producer as ``producer``) are the
    processes whose CPU over the offered window is reported: a p99 over target with the cores saturated
    is the machine's bound, one with idle cores is the pipeline's. ``tick_s``: pacing granularity (see
    the module docstring). ``consumed()`` (the workers' committed input messages) turns their CPU into
    CPU per message. ``producer``: ``"java"`` (needs java and the Kafka jars; its files go to
    ``work_dir``) or ``"librdkafka"``.
    """
    if producer not in PRODUCERS:
        raise ValueError(f"producer must be one of {PRODUCERS}, not {producer!r}")
    pids = {**(pids or {}), "bench": os.getpid()}
    decisions = _Decisions(bootstrap, prefix + out.TOPIC_DECISIONS)
    pacer: JavaPacer | None = None
    decisions.start()
    try:
        if producer == "java":
            from riskmon.services import kafka
            from riskmon.services.procs import ServiceError

            try:
                java, lib = kafka.java_bin(), kafka.ensure_jars()
            except ServiceError as exc:
                raise ServiceError(f"{exc}\n(or run stage (e) with the librdkafka producer: "
                                   "`riskmon bench --latency-producer librdkafka`)") from exc
            pacer = JavaPacer(lines, bootstrap, prefix, rate, tick_s, work_dir or Path(tempfile.gettempdir()),
                              java, lib)
            pids["producer"] = pacer.pid
        t_start = time.monotonic()
        cpu0 = cpu_snapshot(pids)
        done0 = consumed() if consumed else 0
        if pacer is not None:
            sent = pacer.run(progress, decisions)
        else:
            sent = _pace_librdkafka(lines, bootstrap, prefix, rate, tick_s, progress, decisions)
        offered_s = time.monotonic() - t_start
        cpu1 = cpu_snapshot(pids)
        done1 = consumed() if consumed else 0
        warm_until = sent.t0_ns + int(warmup_s * 1e9)
        measured = {eid: ns for eid, ns in sent.at_ns.items() if ns >= warm_until}
        # Decisions trail the last send: wait until every measured purchase is answered, or none arrived
        # for ``settle_s`` (a purchase the pipeline never answers is reported, not waited for forever).
        while (measured.keys() - decisions.got_ns.keys()) and \
                time.monotonic() - max(decisions.last_decision, t_start + offered_s) < settle_s:
            time.sleep(0.1)
            if decisions.error is not None:
                raise decisions.error
    finally:
        decisions.stop.set()
        decisions.join(10)
        if pacer is not None:
            pacer.close()
    got = decisions.got_ns
    timed = [(ns - sent.t0_ns, (got[eid] - ns) / 1e6) for eid, ns in measured.items() if eid in got]
    lat_ms = [ms for _, ms in timed]
    if lat_ms and min(lat_ms) < 0:
        raise RuntimeError(f"a decision arrived {-min(lat_ms):.1f} ms before its purchase was sent: the "
                           "producer's clock is not the bench's (CLOCK_MONOTONIC expected)")
    cpu_s = {k: round(cpu1[k] - cpu0[k], 2) for k in pids}
    worker_cpu = consumers_cpu(cpu_s)
    return {
        "producer": producer,
        "offered_rate": rate,
        "achieved_rate": round(len(lines) / offered_s, 1),
        "seconds": round(offered_s, 1),
        "warmup_s": warmup_s,
        "tick_ms": tick_s * 1000,
        "decisions_measured": len(lat_ms),
        "purchases_unanswered": len(measured.keys() - got.keys()),
        "p50_ms": round(percentile(lat_ms, 0.50), 1),
        "p99_ms": round(percentile(lat_ms, 0.99), 1),
        "max_ms": round(max(lat_ms, default=0.0), 1),
        "by_window": latency_by_window(timed),
        "cpu_s": cpu_s,
        "cpu_share_of_machine": round(sum(cpu_s.values()) / (offered_s * (os.cpu_count() or 1)), 2),
        # what the workers got through while the rate was offered (committed; below the offered count
        # when they fell behind), and their CPU per message, to set beside (c)'s
        "worker_msgs_while_offered": done1 - done0 if consumed else None,
        "worker_us_per_msg": round(worker_cpu / (done1 - done0) * 1e6, 1) if consumed and done1 > done0 else None,
    }


def latency_by_window(samples: Sequence[tuple[int, float]], window_s: float = WINDOW_S) -> list[dict[str, Any]]:
    """p50 / p99 of the latencies of the purchases sent in each ``window_s`` of the offered window.

    ``samples``: (ns since the first send, latency ms). Why: the bench's book is opened when (e) starts
    and ages ~1 simulated day per second at 5k/s; a mature account holds more installments and timers,
    so later events cost more (docs/performance.md, session 12). One p99 over the whole stage would hide
    whether latency is flat or climbing.
    """
    buckets: dict[int, list[float]] = {}
    for ns, ms in samples:
        buckets.setdefault(int(ns / 1e9 // window_s), []).append(ms)
    return [{"from_s": round(k * window_s, 1), "n": len(v), "p50_ms": round(percentile(v, 0.5), 1),
             "p99_ms": round(percentile(v, 0.99), 1)} for k, v in sorted(buckets.items())]


def summarise_worker_trace(docs: list[bytes], warmup_s: float) -> dict[str, Any]:
    """p50 / p99 in ms of each segment the worker traced (``streams.latency_trace``; samples of its first
    ``warmup_s`` seconds left out) and its full GC pauses, from the ``rm:trace:latency`` documents."""
    samples: list[list[float]] = []
    pauses: list[list[float]] = []
    batches: list[list[float]] = []
    for raw in docs:
        d = orjson.loads(raw)
        samples += d["s"]
        pauses += d["gc"]
        batches += d.get("b", [])
    if not samples:
        return {"samples": 0}
    t0 = min(s[0] for s in samples) + warmup_s
    kept = [s for s in samples if s[0] >= t0] or samples
    out: dict[str, Any] = {"samples": len(kept)}
    for i, name in ((1, "in"), (2, "wait"), (3, "apply")):
        vals = [s[i] * 1000 for s in kept]
        out[f"{name}_p50_ms"] = round(percentile(vals, 0.5), 1)
        out[f"{name}_p99_ms"] = round(percentile(vals, 0.99), 1)
    live = [b for b in batches if b[0] >= t0] or batches
    if live:  # per applied batch: size, and the seconds of each stage of ``apply``
        out["batches"] = len(live)
        for i, name in ((1, "events"), (2, "users"), (3, "users_from_redis")):
            out[f"batch_{name}_p50"] = percentile([b[i] for b in live], 0.5)
        for i, name in ((4, "load"), (5, "engine"), (6, "publish"), (7, "commit")):
            vals = [b[i] * 1000 for b in live]
            out[f"batch_{name}_p50_ms"] = round(percentile(vals, 0.5), 2)
            out[f"batch_{name}_p99_ms"] = round(percentile(vals, 0.99), 2)
        held = [b[8] for b in live if len(b) > 8]
        out["takes_held_to_fill"] = (max(held) - min(held)) if held else 0  # during the measured window
        # the state read's Redis round trip alone, over the batches that read from Redis at all
        fetched = [b[9] * 1000 for b in live if len(b) > 9 and b[3] > 0]
        out["batches_with_redis_read"] = len(fetched)
        if fetched:
            out["batch_redis_round_trip_p50_ms"] = round(percentile(fetched, 0.5), 2)
            out["batch_redis_round_trip_p99_ms"] = round(percentile(fetched, 0.99), 2)
    late = [ms for t, ms in pauses if t >= t0]  # not the deliberate collection at start (gc_pauses.py)
    out["gc2_pauses"] = len(late)
    out["gc2_max_ms"] = round(max(late, default=0.0), 1)
    return out
