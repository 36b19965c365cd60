"""A local redis-server on a free port: the state store for demos, replays and tests.

Why a real server and not fakeredis: the state store relies on Lua scripts, pipelines and TTLs whose
behaviour must match production. Without persistence (the default) nothing is written to disk, so a
run starts from empty state and leaves no files behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis as redis_py

from riskmon.services import procs
from riskmon.services.procs import Proc, ServiceError

INSTALL_HINT = (
    "redis-server is not installed. Install it with `sudo apt-get install -y redis-server` "
    "(Debian/Ubuntu), `brew install redis` (macOS), or point RISKMON_REDIS_URL at a running Redis."
)

_apt_updated = False


@dataclass
class RedisServer:
    """A redis-server we started."""

    proc: Proc
    port: int
    url: str


def redis_server_bin(*, install: bool = True) -> str:
    """Path of redis-server; installs Debian's package when running as root with apt-get.

    Why install automatically: the README promises one command on a fresh Debian/Ubuntu box, and the
    only missing system piece there is redis-server. Never as non-root (no sudo prompts from a test).
    """
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install_redis()
        found = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                                  if os.access("/usr/bin/redis-server", os.X_OK) else None)
        if found:
            return found
    raise ServiceError(INSTALL_HINT)


def _apt_install_redis() -> None:
    global _apt_updated
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        if not _apt_updated:
            subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
            _apt_updated = True
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "redis-server"],
                       check=True, env=env, capture_output=True)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode("utf-8", "replace")[-2000:]
        raise ServiceError(f"apt-get could not install redis-server: {tail}\n{INSTALL_HINT}") from exc


def start_redis(
    var_dir: Path,
    *,
    persist: bool = False,
    port: int | None = None,
    detach: bool = False,
    timeout: float = 20.0,
) -> RedisServer:
    """Start redis-server on 127.0.0.1 and wait until it answers PING.

    ``persist=True`` turns on the append-only file in ``var_dir/redis`` so state survives restarts.
    """
    binary = redis_server_bin()
    port = port or procs.free_port()
    data_dir = var_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--logfile", "",
        "--save", "",
        "--appendonly", "yes" if persist else "no",
    ]
    if persist:
        argv += ["--appendfsync", "everysec", "--appendfilename", "riskmon.aof"]
    proc = procs.start(f"redis-{port}", argv, log_dir=var_dir / "logs", detach=detach)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        procs.wait_until(proc, lambda: ping(url), timeout=timeout, what="PING")
    except BaseException:
        procs.stop(proc)
        raise
    return RedisServer(proc=proc, port=port, url=url)


def ping(url: str, timeout: float = 1.0) -> bool:
    """True if the Redis at ``url`` answers PING (a loading server raises, i.e. is not ready)."""
    client = redis_py.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        client.close()
