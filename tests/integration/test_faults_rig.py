"""The fault-test rig: real workers on real Apache Kafka and redis-server, a real hook receiver.

No tests here (pytest collects nothing from this module); ``test_kill9*.py`` and ``test_faults*.py``
import it. Why a rig of our own instead of ``riskmon.replay.replay``: a fault test must act *during*
the run (SIGKILL a worker, stop Redis, slow a receiver), so it needs the pieces replay composes —
``start_workers``, ``produce_file``, ``group_lag``, ``snapshot_accounts`` — one by one.

Waiting is for progress with generous deadlines (shared, noisy machines): nothing here times anything.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
import yaml
from aiohttp import web
from kafka import KafkaConsumer, TopicPartition

from riskmon import contract
from riskmon.config import Settings
from riskmon.replay import group_lag
from riskmon.services import procs
from riskmon.services.stack import Stack
from riskmon.state.accounts import scan_states
from streams.topics import all_topic_names

HOOK_SECRET = "fault-test-hook-secret"
RESTORED = re.compile(rb"models restored: dm\d+-(\d+)")
OUT_OF_RANGE = re.compile(rb"is out of range for partition")


def wait_for(cond: Callable[[], bool], what: str, deadline_s: float = 300, check: Callable[[], None] | None = None,
             interval: float = 0.2) -> None:
    """Poll ``cond`` until true; ``check`` may raise to fail fast (e.g. a worker died)."""
    end = time.monotonic() + deadline_s
    while not cond():
        if check:
            check()
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(interval)


def fast_hooks_policy(tmp: Path) -> Path:
    """The shipped policy with hook limits that a 50k-event test can meet (rate, backoff)."""
    doc = yaml.safe_load(Settings().policy_path.read_text())
    doc["hooks"]["defaults"].update({"rate_per_s": 100_000, "burst": 100_000, "backoff_base_s": 0.05,
                                     "backoff_max_s": 0.5, "max_attempts": 50})
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


# ------------------------------------------------------------------------------------ hook receiver
@dataclass
class Hit:
    """One request the receiver answered."""

    dedup_key: str
    attempt: int
    redelivery: bool
    at: float


@dataclass
class HookReceiver:
    """A real aiohttp webhook receiver on 127.0.0.1, in a thread with its own event loop.

    ``delay_s`` makes it slow (sleep before answering); requests are recorded when answered with 200.
    """

    delay_s: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    arrived: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        h = request.headers
        self.hits.append(Hit(h.get("X-Riskmon-Dedup-Key", ""), int(h.get("X-Riskmon-Attempt", "1")),
                             h.get("X-Riskmon-Redelivery") == "1", time.monotonic()))
        return web.Response(text="ok")

    def start(self) -> HookReceiver:
        ready = threading.Event()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self._stopped = asyncio.Event()
            ready.set()
            await self._stopped.wait()
            await self._runner.cleanup()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(serve(),), daemon=True)
        self._thread.start()
        assert ready.wait(10), "hook receiver did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def unflagged_repeats(self) -> dict[str, int]:
        """Dedup keys delivered more than once *without* a retry/redelivery flag (must be empty)."""
        first = Counter(h.dedup_key for h in self.hits if h.attempt == 1 and not h.redelivery)
        return {k: n for k, n in first.items() if n > 1}


# ------------------------------------------------------------------------------------ the pipeline
@dataclass
class Pipeline:
    """Workers of one consumer group on prefixed topics, with kill/restart and state read-outs."""

    stack: Stack
    settings: Settings
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: dict[int, procs.Proc] = field(default_factory=dict)
    incarnations: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.app_id = f"riskmon-fault-{run}"
        self.prefix = f"f{run}."
        self.stack.create_topics(all_topic_names(self.prefix), self.settings.partitions)

    @property
    def redis_url(self) -> str:
        assert self.stack.redis_url
        return self.stack.redis_url

    def env(self) -> dict[str, str]:
        return {**self.stack.env(), "RISKMON_APP_ID": self.app_id, "RISKMON_TOPIC_PREFIX": self.prefix,
                "RISKMON_PARTITIONS": str(self.settings.partitions), "RISKMON_LOG_LEVEL": "info",
                **self.extra_env}

    def start_worker(self, i: int) -> procs.Proc:
        """Start (or restart) worker ``i``; each incarnation logs to its own file."""
        self.incarnations[i] += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = f"{self.app_id}-w{i}-{self.incarnations[i]}"
        p = procs.start(name, [sys.executable, "-m", "riskmon.cli.main", "worker"], log_dir=self.log_dir,
                        env=self.env(), cwd=self.log_dir.parent)  # Faust's <app_id>-data dir goes to tmp
        self.workers[i] = p
        return p

    def kill9(self, i: int) -> None:
        """SIGKILL worker ``i`` (no shutdown code runs) and reap it."""
        p = self.workers[i]
        os.kill(p.pid, signal.SIGKILL)
        assert p.popen is not None
        p.popen.wait(30)
        procs.stop(p)  # unregister (nothing left to signal)

    def check_alive(self) -> None:
        for i, p in self.workers.items():
            assert p.alive(), f"worker {i} exited:\n{p.log_tail()}"

    def stop(self, timeout: float = 20) -> dict[int, int | None]:
        """SIGTERM every worker (SIGKILL after ``timeout``); returns their exit codes (-9: killed)."""
        codes = {}
        for i, p in self.workers.items():
            procs.stop(p, timeout=timeout)
            codes[i] = p.popen.returncode if p.popen is not None else None
        return codes

    def stats(self) -> dict[str, int]:
        r = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            return {k.decode(): int(v) for k, v in r.hgetall("rm:stats").items()}
        finally:
            r.close()

    def lag(self) -> int | None:
        return group_lag(self.stack.bootstrap, self.app_id, tuple(self.prefix + t for t in contract.INPUT_TOPICS))

    def drain(self, deadline_s: float = 600) -> None:
        """Wait until the group has committed every input offset."""
        wait_for(lambda: self.lag() == 0, "consumer lag 0", deadline_s, self.check_alive, interval=1.0)

    def wait_assigned(self, i: int, deadline_s: float = 120) -> None:
        """Wait until worker ``i``'s current incarnation has joined the group and been given partitions."""
        path = self.log_dir / f"{self.app_id}-w{i}-{self.incarnations[i]}.log"
        wait_for(lambda: path.exists() and b"Setting newly assigned partitions" in path.read_bytes(),
                 f"worker {i} assigned partitions", deadline_s, self.check_alive)

    def offset_resets(self) -> int:
        """Times a worker found its committed offset outside the log and reset it (data skipped or re-read).

        Every worker incarnation's log is read. It must stay 0: it was not, while the test broker applied
        7-day time retention to records stamped with months-old event times (docs/reliability.md).
        """
        return sum(len(OUT_OF_RANGE.findall(p.read_bytes())) for p in self.log_dir.glob("*.log"))

    def restored_labels(self, i: int, incarnation: int) -> int | None:
        """n_labels of the checkpoint worker ``i``'s incarnation restored (None: not restored yet)."""
        path = self.log_dir / f"{self.app_id}-w{i}-{incarnation}.log"
        m = RESTORED.search(path.read_bytes()) if path.exists() else None
        return int(m.group(1)) if m else None

    def read_topic(self, topic: str) -> list[dict[str, Any]]:
        """Every record of an output topic (all partitions, from the beginning)."""
        c = KafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False,
                          consumer_timeout_ms=2000)
        try:
            tps = [TopicPartition(self.prefix + topic, p) for p in c.partitions_for_topic(self.prefix + topic) or ()]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            ends = c.end_offsets(tps)
            out = []
            while any(c.position(tp) < ends[tp] for tp in tps):
                for msgs in c.poll(timeout_ms=500).values():
                    out.extend(orjson.loads(m.value) for m in msgs)
            return out
        finally:
            c.close()


def model_checkpoint_labels(redis_url: str) -> int:
    """n_labels of the default model checkpoint in Redis (0 if none)."""
    from online_models.default_model import DefaultModel
    from streams.consumer_credit import MODEL_KEY

    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        blob = r.get(MODEL_KEY)
    finally:
        r.close()
    return DefaultModel.from_bytes(blob).n_labels if blob else 0


def ledger_outstanding(redis_url: str) -> dict[str, int]:
    """Every account's outstanding principal in fen, straight from the Redis states."""
    r = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        return {st.user_id: st.ledger.outstanding for st in scan_states(r)}
    finally:
        r.close()


def truth_mismatches(truth: dict[str, Any], outstanding: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Users whose ledger differs from the simulator's ground truth: user -> (ours, truth)."""
    bad = {u: (outstanding.get(u, 0), t["outstanding_fen"]) for u, t in truth["users"].items()
           if outstanding.get(u, 0) != t["outstanding_fen"]}
    bad.update({u: (v, 0) for u, v in outstanding.items() if u not in truth["users"] and v})
    return bad


def valid_user_events(truth: dict[str, Any]) -> int:
    """Valid user events (accounts, purchases, repayments) in the truth, business-metrics excluded."""
    per = truth["counts"]["per_topic"]
    return sum(per[t]["valid"] for t in (contract.TOPIC_ACCOUNTS, contract.TOPIC_PURCHASES, contract.TOPIC_REPAYMENTS))


def duplicate_user_events(truth: dict[str, Any]) -> int:
    """Injected duplicates on the user topics."""
    per = truth["counts"]["per_topic"]
    return sum(per[t]["duplicates"] for t in (contract.TOPIC_ACCOUNTS, contract.TOPIC_PURCHASES,
                                              contract.TOPIC_REPAYMENTS))
