"""Shared fixtures: real services for the integration tests, started lazily, stopped at session end.

Why here: every integration test needs the same real components (Apache Kafka, Tansu, redis-server,
chdb). Starting each once per session keeps the suite fast; starting them lazily keeps
``pytest tests/unit`` and ``-m "not integration"`` free of services.

Fixtures (all real processes started by riskmon.services):

- ``redis_url`` (session): a redis-server on a free port. Shared: use your own key prefix or
  ``clean_redis_url`` (function scope, FLUSHALL before the test).
- ``kafka_bootstrap`` / ``kafka_stack`` (session): Apache Kafka 4.x KRaft (verified not to be Tansu).
- ``tansu_bootstrap`` / ``tansu_stack`` (session): Tansu, memory-only.
- ``fresh_tansu_bootstrap`` (function): a new, empty Tansu per test (starts in ~0.1 s) for tests that
  must not see other tests' messages on the fixed topic names.
- ``clickhouse_dsn`` (session): ``chdb://<dir>``. chdb opens one directory per process at a time:
  close your clients (tests in one process share this dir; use your own database for isolation).
- ``settings`` (function): factory ``settings(broker="apache"|"tansu"|"fresh-tansu"|"none", redis=True,
  clickhouse=True, **overrides) -> Settings`` with ``var_dir`` = the test's tmp_path.

Marking: tests under ``tests/integration/`` and tests that use a service fixture from this file are
marked ``integration`` automatically, so ``pytest -m "not integration"`` never starts a service.
``RISKMON_SKIP_SLOW=1`` skips tests marked ``slow``. ``RISKMON_*`` variables that are Settings fields are
removed from the environment at session start, so a shell that ran ``riskmon services up`` cannot point
the tests at its services.
"""

from __future__ import annotations

import gc
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from riskmon.config import Settings
from riskmon.services import Stack, identify_broker

SERVICE_FIXTURES = frozenset({
    "redis_url", "clean_redis_url", "kafka_bootstrap", "kafka_stack", "tansu_bootstrap", "tansu_stack",
    "fresh_tansu_bootstrap", "clickhouse_dsn", "settings",
})
_HERE = Path(__file__).resolve()


def pytest_configure(config: pytest.Config) -> None:
    """Make the session hermetic: drop RISKMON_* settings inherited from the developer's shell."""
    for name in Settings.model_fields:
        os.environ.pop(f"RISKMON_{name.upper()}", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark service-using tests ``integration``; skip ``slow`` ones when RISKMON_SKIP_SLOW=1."""
    integration_dir = _HERE.parent / "integration"
    skip_slow = os.environ.get("RISKMON_SKIP_SLOW") == "1"
    for item in items:
        path = Path(str(item.path)).resolve()
        if integration_dir in path.parents or _uses_our_service_fixture(item):
            item.add_marker(pytest.mark.integration)
        if skip_slow and item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.skip(reason="RISKMON_SKIP_SLOW=1"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After a failed test, drop the traceback pytest keeps in ``sys.last_*`` and collect garbage.

    Why: chdb allows one engine directory per process. A failed test's frames (kept alive by
    ``sys.last_traceback``) can hold an open chdb client on its own directory, and every later chdb test
    in the session would then fail with "EmbeddedServer already initialized with path ...".
    """
    yield
    if getattr(sys, "last_traceback", None) is not None:
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
        gc.collect()


def _uses_our_service_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in SERVICE_FIXTURES & set(info.names_closure):
        defs = info.name2fixturedefs.get(name) or ()
        # Only our definitions count: a local fixture of the same name (e.g. a fakeredis one) does not.
        if defs and Path(defs[-1].func.__code__.co_filename).resolve() == _HERE:
            return True
    return False


def _settings(var_dir: Path, **overrides: Any) -> Settings:
    """Settings that ignore the environment's service URLs unless given."""
    base: dict[str, Any] = {"var_dir": var_dir, "broker_url": None, "redis_url": None, "clickhouse_dsn": None}
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (no persistence) for the whole session."""
    with Stack(_settings(tmp_path_factory.mktemp("redis")), broker="none", redis=True) as stack:
        assert stack.redis_url
        yield stack.redis_url


@pytest.fixture
def clean_redis_url(redis_url: str) -> str:
    """The session redis-server, emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_url


@pytest.fixture(scope="session")
def kafka_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Apache Kafka 4.x (KRaft, single node) for the whole session; refuses to run on anything else."""
    with Stack(_settings(tmp_path_factory.mktemp("kafka")), broker="apache", redis=False) as stack:
        ident = identify_broker(stack.bootstrap)
        assert ident.kind == "apache", f"expected Apache Kafka at {stack.bootstrap}, got {ident}"
        yield stack


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_stack: Stack) -> str:
    """``host:port`` of the session's Apache Kafka."""
    return kafka_stack.bootstrap


@pytest.fixture(scope="session")
def tansu_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Tansu broker (memory-only) for the whole session."""
    with Stack(_settings(tmp_path_factory.mktemp("tansu")), broker="tansu", redis=False) as stack:
        yield stack


@pytest.fixture(scope="session")
def tansu_bootstrap(tansu_stack: Stack) -> str:
    """``host:port`` of the session's Tansu."""
    return tansu_stack.bootstrap


@pytest.fixture
def fresh_tansu_bootstrap(tmp_path: Path) -> Iterator[str]:
    """A new, empty Tansu for this test only."""
    with Stack(_settings(tmp_path / "fresh-tansu"), broker="tansu", redis=False) as stack:
        yield stack.bootstrap


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``chdb://<dir>``: the in-process ClickHouse engine in a session temp dir."""
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Settings]:
    """Factory of Settings wired to the session services (each started only if asked for).

    ``broker``: ``"apache"`` (default), ``"tansu"``, ``"fresh-tansu"`` (an empty Tansu for this test) or
    ``"none"``; ``redis`` / ``clickhouse``: include them; ``overrides``: any other Settings field.
    ``app_id`` defaults to a unique id so consumer groups of different tests never share offsets.
    """

    def make(*, broker: str = "apache", redis: bool = True, clickhouse: bool = True,
             **overrides: Any) -> Settings:
        bootstraps = {"apache": "kafka_bootstrap", "tansu": "tansu_bootstrap",
                      "fresh-tansu": "fresh_tansu_bootstrap"}
        if broker not in (*bootstraps, "none"):
            raise ValueError(f"broker must be one of {[*bootstraps, 'none']}, not {broker!r}")
        values: dict[str, Any] = {"app_id": f"riskmon-test-{uuid.uuid4().hex[:8]}"}
        if broker != "none":
            values["broker_url"] = "kafka://" + request.getfixturevalue(bootstraps[broker])
            values["broker"] = values["broker_url"]
        if redis:
            values["redis_url"] = request.getfixturevalue("redis_url")
        if clickhouse:
            values["clickhouse_dsn"] = request.getfixturevalue("clickhouse_dsn")
        values.update(overrides)
        return _settings(tmp_path, **values)

    return make
