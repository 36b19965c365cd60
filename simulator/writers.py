"""Writing a run: JSONL file (one line per message) or straight to Kafka, plus the truth file.

Line form: ``{"topic": ..., "key": ..., "value": {...}}`` or, when the payload is not a JSON object we
can keep byte-exact, ``{"topic": ..., "key": ..., "raw": "<payload>"}``. The Kafka message value is
``orjson.dumps(value)`` resp. ``raw.encode()``: :func:`payload_of` gives it for any line.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from riskmon.contract import INPUT_TOPICS
from simulator.config import SimConfig
from simulator.stream import Simulation, simulate

Progress = Callable[[int, int], None]


@dataclass
class Stats:
    """What a writer did; ``seconds`` covers generation and writing (wall clock, for reporting only)."""

    lines: int = 0
    valid: int = 0
    duplicates: int = 0
    bad: int = 0
    late: int = 0
    bytes: int = 0
    generate_seconds: float = 0.0
    write_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process + its simulator workers: robust to a busy machine
    per_topic: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Generation plus writing time."""
        return self.generate_seconds + self.write_seconds

    @property
    def events_per_s(self) -> float:
        """Lines per second, end to end."""
        return self.lines / self.seconds if self.seconds else 0.0


def _cpu() -> float:
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


def _stats(sim: Simulation) -> Stats:
    c = sim.truth["counts"]
    return Stats(lines=c["events_total"], valid=c["events_valid"], duplicates=c["duplicates"], bad=c["bad"],
                 late=c["late"], per_topic={t: v["lines"] for t, v in c["per_topic"].items()})


def write_truth(sim: Simulation, truth_path: str | Path | None) -> None:
    """Write the ground truth as JSON (sorted keys, so equal runs give equal bytes)."""
    if truth_path is not None:
        Path(truth_path).parent.mkdir(parents=True, exist_ok=True)
        Path(truth_path).write_bytes(orjson.dumps(sim.truth, option=orjson.OPT_SORT_KEYS) + b"\n")


def write_lines(sim: Simulation, path: str | Path, progress: Progress | None = None) -> int:
    """Write a built run as JSONL; returns bytes written.

    Why the shape of the loop: a line is ``prefix + payload + "}\\n"`` where the prefix depends only on
    (topic, key, raw or not), so prefixes are cached and each block of lines is written with one
    ``join`` of the pieces instead of concatenating a new bytes object per line.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    prefixes: dict[str, dict[str, bytes]] = {}
    raw_prefixes: dict[tuple[str, str], bytes] = {}
    lines = sim.lines
    total = len(lines)
    block = max(1, min(8192, total // 100 or 1))
    written = 0
    end = b"}\n"
    with open(path, "wb", buffering=1 << 20) as fh:
        for lo in range(0, total, block):
            parts: list[bytes] = []
            extend = parts.extend
            for line in lines[lo:lo + block]:
                topic, key, payload = line[3], line[4], line[5]
                if line[7]:  # raw payload: a JSON string field, not an object
                    prefix = raw_prefixes.get((topic, key))
                    if prefix is None:
                        prefix = raw_prefixes[(topic, key)] = _prefix(topic, key, b',"raw":')
                    payload = orjson.dumps(payload.decode("utf-8"))
                else:
                    by_key = prefixes.get(topic)
                    if by_key is None:
                        by_key = prefixes[topic] = {}
                    prefix = by_key.get(key)
                    if prefix is None:
                        prefix = by_key[key] = _prefix(topic, key, b',"value":')
                extend((prefix, payload, end))
            chunk = b"".join(parts)
            written += len(chunk)
            fh.write(chunk)
            if progress is not None:
                progress(min(lo + block, total), total)
    if progress is not None:
        progress(total, total)
    return written


def _prefix(topic: str, key: str, field: bytes) -> bytes:
    return b'{"topic":' + orjson.dumps(topic) + b',"key":' + orjson.dumps(key) + field


def timed_simulate(config: SimConfig, workers: int = 1) -> tuple[Simulation, float, float]:
    """(simulation, wall seconds, CPU seconds incl. worker processes) of building a run."""
    c0, t0 = _cpu(), time.perf_counter()
    sim = simulate(config, workers=workers)
    return sim, time.perf_counter() - t0, _cpu() - c0


def write_simulation(sim: Simulation, path: str | Path, truth_path: str | Path | None = None,
                     progress: Progress | None = None) -> Stats:
    """Write a built run as JSONL plus (optionally) its truth file."""
    c0, t0 = _cpu(), time.perf_counter()
    return _finish(sim, write_lines(sim, path, progress), truth_path, c0, t0)


def write_jsonl(config: SimConfig, path: str | Path, truth_path: str | Path | None = None,
                progress: Progress | None = None, workers: int = 1) -> Stats:
    """Simulate ``config`` and write the JSONL file and (optionally) the truth file.

    ``workers``: see :func:`simulator.simulate` (the output does not depend on it)."""
    sim, wall, cpu = timed_simulate(config, workers)
    stats = write_simulation(sim, path, truth_path, progress)
    stats.generate_seconds, stats.cpu_seconds = wall, stats.cpu_seconds + cpu
    return stats


def ensure_topics(bootstrap: str, partitions: int) -> None:
    """Create missing input topics, all with the same partition count (co-partitioning by user_id), and
    wait for their leaders; an existing topic with another count is an error (riskmon.services.Stack)."""
    from riskmon.config import Settings
    from riskmon.services.stack import Stack

    stack = Stack(Settings(), broker=f"kafka://{bootstrap}", redis=False)
    stack.start()  # an external broker: starts nothing
    stack.create_topics(list(INPUT_TOPICS), partitions)


def normalise_bootstrap(bootstrap: str) -> str:
    """Accept ``host:port`` or ``kafka://host:port``."""
    return bootstrap.removeprefix("kafka://").rstrip("/")


def produce_lines(sim: Simulation, bootstrap: str, progress: Progress | None = None) -> int:
    """Send a built run to Kafka in line order (key = subject id, acks=all); returns bytes sent."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=normalise_bootstrap(bootstrap),
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,  # oversize test messages (> 64 KiB) must reach the topic
        client_id="riskmon-simulator",
    )
    total = len(sim.lines)
    step = max(1, total // 100)
    sent = 0
    pending = []
    send = producer.send
    try:
        for n, line in enumerate(sim.lines):
            payload = line[5]
            pending.append(send(line[3], key=line[4].encode(), value=payload))
            sent += len(payload)
            if n % step == 0:
                if progress is not None:
                    progress(n, total)
                _raise_failed(pending)  # fail early (and keep the list short) instead of after the run
                pending = [f for f in pending if not f.is_done]
        producer.flush()
        _raise_failed(pending)
    finally:
        producer.close()
    if progress is not None:
        progress(total, total)
    return sent


def _raise_failed(futures: list) -> None:
    for fut in futures:
        if fut.is_done and fut.failed():
            raise RuntimeError(f"producing to Kafka failed: {fut.exception!r}")


def produce_simulation(sim: Simulation, bootstrap: str, truth_path: str | Path | None = None,
                       progress: Progress | None = None, partitions: int | None = None) -> Stats:
    """Produce a built run to the input topics (created if missing, with ``partitions`` or
    RISKMON_PARTITIONS partitions) and write its truth file."""
    from riskmon.config import Settings

    c0, t0 = _cpu(), time.perf_counter()
    ensure_topics(normalise_bootstrap(bootstrap), partitions or Settings().partitions)
    return _finish(sim, produce_lines(sim, bootstrap, progress), truth_path, c0, t0)


def _finish(sim: Simulation, size: int, truth_path: str | Path | None, c0: float, t0: float) -> Stats:
    """Write the truth file and fill the run's stats (shared by the file and Kafka outputs)."""
    write_truth(sim, truth_path)
    stats = _stats(sim)
    stats.bytes = size
    stats.write_seconds = time.perf_counter() - t0
    stats.cpu_seconds = _cpu() - c0
    return stats


def produce_to_kafka(config: SimConfig, bootstrap: str, truth_path: str | Path | None = None,
                     progress: Progress | None = None, partitions: int | None = None,
                     workers: int = 1) -> Stats:
    """Simulate ``config`` and produce it to Kafka (see :func:`produce_simulation`)."""
    sim, wall, cpu = timed_simulate(config, workers)
    stats = produce_simulation(sim, bootstrap, truth_path, progress, partitions)
    stats.generate_seconds, stats.cpu_seconds = wall, stats.cpu_seconds + cpu
    return stats


def payload_of(line: dict[str, Any]) -> bytes:
    """The exact message bytes of a JSONL line object."""
    if "raw" in line:
        return line["raw"].encode("utf-8")
    return orjson.dumps(line["value"])


def read_jsonl(path: str | Path) -> Iterator[tuple[str, str, bytes]]:
    """(topic, key, payload bytes) of every line of a JSONL file, in file order."""
    with open(path, "rb") as fh:
        for raw_line in fh:
            if raw_line.strip():
                line = orjson.loads(raw_line)
                yield line["topic"], line["key"], payload_of(line)
