"""The Stack: the broker, Redis and ClickHouse a riskmon run needs, started and stopped as one.

Why: the demo, replay, bench and the integration tests all need "a broker + a Redis + a ClickHouse",
sometimes already running elsewhere (``RISKMON_BROKER_URL`` / ``RISKMON_REDIS_URL`` set by
``riskmon services up`` or by an operator), sometimes not. The Stack starts only what is missing and
stops only what it started, so it is safe to use against shared services.

    with Stack(Settings(), broker="apache") as stack:
        stack.create_topics(["purchases"], partitions=4)
        subprocess.run(["riskmon", "worker"], env={**os.environ, **stack.env()})
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from riskmon.config import Settings
from riskmon.services import procs
from riskmon.services.kafka import start_kafka
from riskmon.services.procs import Proc, ServiceError
from riskmon.services.redis import start_redis
from riskmon.services.tansu import start_tansu

BROKER_KINDS = ("tansu", "apache")


def bootstrap_of(url: str) -> str:
    """``kafka://h1:9092;h2:9092`` (Faust style) -> ``h1:9092,h2:9092`` (client style)."""
    rest = url.split("://", 1)[1] if "://" in url else url
    hosts = [h.strip().rstrip("/") for h in rest.replace(";", ",").split(",") if h.strip()]
    if not hosts or any(":" not in h for h in hosts):
        raise ValueError(f"broker URL {url!r} must look like kafka://host:port")
    return ",".join(hosts)


class Stack:
    """Starts what the settings say is needed; stops only what it started.

    ``broker``: ``"tansu"`` | ``"apache"`` | ``"kafka://host:port"`` | ``"none"`` (no broker, e.g. for a
    Redis-only test) | None (= ``settings.broker_url`` if set, else ``settings.broker``). An explicit
    ``"tansu"``/``"apache"`` always starts that broker, even when ``RISKMON_BROKER_URL`` is set. ``redis``: start a redis-server unless
    ``settings.redis_url`` is set (False: no Redis at all, ``redis_url`` is then None).
    """

    bootstrap: str
    broker_kind: str  # "tansu" | "apache" | "external" | "none"
    redis_url: str | None
    clickhouse_dsn: str

    def __init__(
        self,
        settings: Settings,
        *,
        broker: str | None = None,
        redis: bool = True,
        persist_redis: bool = False,
        detach: bool = False,
        ephemeral_broker: bool = False,
        group_initial_delay_ms: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.group_initial_delay_ms = group_initial_delay_ms  # Apache Kafka's group.initial.rebalance.delay.ms
        # An Apache Kafka started with its own empty data directory, deleted by stop(). Why: the shared
        # var/kafka/data keeps every topic of every run (retention is off, see kafka.server_properties);
        # after a day of bench runs it held 7,700 partitions and the broker's latency p99 went from
        # ~70 ms to ~500 ms. A bench or replay measures and needs only its own topics.
        self.ephemeral_broker = ephemeral_broker
        self._ephemeral_home: Path | None = None
        self.broker_choice = broker if broker is not None else (settings.broker_url or settings.broker)
        self.want_redis = redis
        self.persist_redis = persist_redis
        self.detach = detach
        self._log = log
        self.started: list[Proc] = []
        self.timings: dict[str, float] = {}
        self.bootstrap = ""
        self.broker_kind = ""
        self.redis_url = None
        self.clickhouse_dsn = settings.clickhouse

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the broker and Redis as needed (``__enter__`` calls this)."""
        var_dir = self.settings.var_dir
        var_dir.mkdir(parents=True, exist_ok=True)
        choice = self.broker_choice.strip()
        if choice in BROKER_KINDS:
            t0 = time.monotonic()
            if choice == "tansu":
                self._say("starting Tansu broker")
                tansu = start_tansu(var_dir, detach=self.detach)
                self.started.append(tansu.proc)
                self.bootstrap = tansu.bootstrap
            else:
                self._say("starting Apache Kafka (KRaft)")
                if self.ephemeral_broker:
                    self._ephemeral_home = var_dir / "kafka" / f"run-{os.getpid()}-{time.time_ns():x}"
                kafka = start_kafka(var_dir, partitions=self.settings.partitions, detach=self.detach,
                                    log=self._say, home=self._ephemeral_home,
                                    initial_rebalance_delay_ms=self.group_initial_delay_ms)
                self.started.append(kafka.proc)
                self.bootstrap = kafka.bootstrap
            self.timings[choice] = time.monotonic() - t0
            self.broker_kind = choice
        elif choice == "none":
            self.broker_kind = "none"
        else:
            self.bootstrap = bootstrap_of(choice)
            self.broker_kind = "external"
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
        elif self.want_redis:
            t0 = time.monotonic()
            self._say("starting redis-server")
            server = start_redis(var_dir, persist=self.persist_redis, detach=self.detach)
            self.started.append(server.proc)
            self.redis_url = server.url
            self.timings["redis"] = time.monotonic() - t0

    def stop(self) -> None:
        """Stop what this Stack started, newest first; idempotent."""
        while self.started:
            proc = self.started.pop()
            with contextlib.suppress(Exception):
                procs.stop(proc)
        if self._ephemeral_home is not None:
            shutil.rmtree(self._ephemeral_home, ignore_errors=True)
            self._ephemeral_home = None

    # -- use ---------------------------------------------------------------------------------------

    @property
    def broker_url(self) -> str:
        """The broker as a Faust/RISKMON_BROKER_URL URL: ``kafka://host:port``."""
        return "kafka://" + self.bootstrap.replace(",", ";")

    def env(self) -> dict[str, str]:
        """Environment for child processes (workers, sinks) so they use these services."""
        env = {
            "RISKMON_CLICKHOUSE_DSN": self.clickhouse_dsn,
            "RISKMON_VAR_DIR": str(self.settings.var_dir),
        }
        if self.bootstrap:
            env["RISKMON_BROKER_URL"] = self.broker_url
        if self.redis_url:
            env["RISKMON_REDIS_URL"] = self.redis_url
        return env

    def create_topics(self, names: list[str], partitions: int, *, timeout: float = 30.0) -> None:
        """Create the topics that do not exist yet (idempotent) and wait until every partition has a
        leader. An existing topic with a different partition count is an error: co-partitioned topics
        (accounts/purchases/repayments by user_id) must agree or events of a user split across workers.
        """
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        if not self.bootstrap:
            raise ServiceError("this Stack has no broker (broker='none')")
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="riskmon-stack",
                                 request_timeout_ms=int(timeout * 1000))
        try:
            existing = set(admin.list_topics())
            for name in names:
                if name in existing:
                    continue
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([NewTopic(name, partitions, 1)])
            deadline = time.monotonic() + timeout
            while True:
                counts = _partition_counts(admin, names)
                wrong = {n: c for n, c in counts.items() if c is not None and c != partitions}
                if wrong:
                    raise ServiceError(f"topics exist with other partition counts than {partitions}: {wrong}; "
                                       "delete them or set RISKMON_PARTITIONS to match")
                if all(c == partitions for c in counts.values()):
                    return
                if time.monotonic() >= deadline:
                    raise ServiceError(f"topics not ready after {timeout:.0f}s: {counts}")
                time.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                admin.close()

    def _say(self, msg: str) -> None:
        if self._log:
            self._log(msg)


def _partition_counts(admin: object, names: list[str]) -> dict[str, int | None]:
    """Partitions with a leader per topic (None: not there or not all partitions led yet)."""
    out: dict[str, int | None] = dict.fromkeys(names)
    for desc in admin.describe_topics(names):  # type: ignore[attr-defined]
        name = desc.get("name") or desc.get("topic")
        parts = desc.get("partitions") or []
        if desc.get("error_code") or not parts:
            continue
        led = [p for p in parts if (p.get("leader_id", p.get("leader")) or -1) >= 0]
        out[name] = len(led) if len(led) == len(parts) else None
    return out
