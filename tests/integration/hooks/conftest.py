"""Fixtures of the hook integration tests: a real redis-server on a free port in a temp dir.

Why not fakeredis: the delivery guarantee lives in Redis Lua scripts (claims, leases, marks), which only
a real server executes.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hook_receivers import free_port

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture(scope="session")
def hooks_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port, in a temp dir, for this test session."""
    workdir: Path = tmp_path_factory.mktemp("hooks-redis")
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_BIN, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(hooks_redis_url: str) -> str:
    """The session redis, emptied before each test."""
    redis.Redis.from_url(hooks_redis_url).flushall()
    return hooks_redis_url


