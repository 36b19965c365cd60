"""Run the consumer-credit engine over a JSONL file in memory, without Kafka or Redis.

Why: the broker-free core must be checkable on its own — unit tests, ``riskmon evaluate`` (which also
needs every decision's feature vector to train a hindsight batch model) and quick what-if runs of a
policy change all use this path. The streaming path runs the very same :class:`Engine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from riskmon.account import AccountState
from riskmon.config import Settings
from riskmon.contract import TOPIC_METRICS, Rejected, decode
from riskmon.engine import Emitted, Engine
from riskmon.eventtime import Watermark
from riskmon.policy import load_policy


def read_lines(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (topic, raw payload bytes) from a simulator/replay JSONL file, in file order."""
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            doc = orjson.loads(line)
            raw = doc["raw"].encode("utf-8", "surrogatepass") if "raw" in doc else orjson.dumps(doc["value"])
            yield doc["topic"], raw


@dataclass
class OfflineRun:
    """Result of an in-memory run."""

    engine: Engine
    states: dict[str, AccountState]
    outputs: list[Emitted] = field(default_factory=list)
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    watermark: int = 0


def labelled_engine(settings: Settings) -> Engine:
    """An engine configured like a worker's (policy, lateness, dedup window, scorecard prior) that also
    logs every learnt label with its decision-time features (``engine.label_log``), for
    ``riskmon evaluate`` and ``riskmon fit-scorecard``."""
    engine = Engine.for_settings(settings, load_policy(settings.policy_path))
    engine.label_log = []
    return engine


def run_offline(messages: Iterable[tuple[str, bytes]], engine: Engine, batch_size: int = 500) -> OfflineRun:
    """Decode, validate and apply user-topic messages in batches, like a single worker would."""
    states: dict[str, AccountState] = {}
    run = OfflineRun(engine=engine, states=states)
    wm = Watermark(engine.lateness_ms)
    timers: dict[str, int] = {}
    batch: list[Any] = []

    def flush() -> None:
        for ev in batch:
            states.setdefault(ev.user_id, AccountState(ev.user_id))
            wm.observe(ev.ts)
        due = [u for u, t in timers.items() if t <= wm.value]
        res = engine.process(batch, states, wm.value, due)
        run.outputs.extend(res.outputs)
        run.applied += res.applied
        run.duplicates += res.duplicates
        for uid in {e.user_id for e in batch}.union(due):
            t = engine.next_timer(states[uid])
            if t is None:
                timers.pop(uid, None)
            else:
                timers[uid] = t
        batch.clear()

    for topic, raw in messages:
        ev = decode(topic, raw)
        if isinstance(ev, Rejected):
            run.dead_letters.append((topic, ev.reason))
            continue
        if topic == TOPIC_METRICS:
            continue
        batch.append(ev)
        if len(batch) >= batch_size:
            flush()
    flush()
    run.watermark = wm.value
    return run
