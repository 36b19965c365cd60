"""The pure parts of riskmon.services: URL parsing, generated Kafka config, broker classification,
process bookkeeping and the install hints. No services are started here."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from riskmon.services import ServiceError, bootstrap_of, procs
from riskmon.services import redis as redis_mod
from riskmon.services.identity import classify
from riskmon.services.kafka import new_cluster_id, server_properties


@pytest.mark.parametrize(("url", "bootstrap"), [
    ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
    ("kafka://a:1;b:2", "a:1,b:2"),
    ("a:1,b:2", "a:1,b:2"),
    ("kafka://h:9092/", "h:9092"),
])
def test_bootstrap_of(url: str, bootstrap: str) -> None:
    assert bootstrap_of(url) == bootstrap


@pytest.mark.parametrize("url", ["kafka://", "kafka://host-without-port", ""])
def test_bootstrap_of_rejects_urls_without_a_port(url: str) -> None:
    with pytest.raises(ValueError, match="kafka://host:port"):
        bootstrap_of(url)


def test_server_properties_are_a_single_kraft_node(tmp_path: Path) -> None:
    text = server_properties(port=1111, controller_port=2222, data_dir=tmp_path / "d", partitions=6)
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:2222"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1111"
    assert props["log.dirs"] == str(tmp_path / "d")
    assert props["num.partitions"] == "6"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr"):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"


def test_the_bench_can_ask_for_kafkas_own_initial_rebalance_delay(tmp_path: Path) -> None:
    text = server_properties(port=1, controller_port=2, data_dir=tmp_path, partitions=4, initial_rebalance_delay_ms=3000)
    assert "group.initial.rebalance.delay.ms=3000" in text.splitlines()


def test_cluster_ids_are_16_random_bytes() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_classify_brokers() -> None:
    apache = [{"broker_id": 1, "host": "h", "port": 1, "rack": None, "is_fenced": False}]
    tansu = [{"broker_id": 111, "host": "h", "port": 1, "rack": None}]
    assert classify("tansu_cluster", (3, 9), tansu) == "tansu"
    assert classify("3M-z96QcRIiyCC6wL_MZtQ", (4, 1), apache) == "apache"
    assert classify("3M-z96QcRIiyCC6wL_MZtQ", (3, 9), apache) == "unknown"  # too old to be ours
    assert classify("other", (4, 1), tansu) == "unknown"
    assert classify("other", (4, 1), []) == "unknown"


def test_pid_alive_and_start_ticks() -> None:
    me = os.getpid()
    ticks = procs.proc_start_ticks(me)
    assert ticks is not None
    assert procs.pid_alive(me)
    assert procs.pid_alive(me, ticks)
    assert not procs.pid_alive(me, ticks + 1)  # same pid, other start time: a recycled pid
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not procs.pid_alive(child.pid)


def test_zombies_count_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: a zombie until wait(); it must already count as gone.
    for _ in range(60_000):  # liveness bound (~60 s), not a timing assertion
        if Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.001)
    assert not procs.pid_alive(child.pid)
    child.wait()


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert procs.log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert procs.log_tail(tmp_path / "missing.log") == ""


def test_free_ports_are_bindable() -> None:
    import socket

    port = procs.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_missing_redis_server_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_mod.os, "access", lambda path, mode: False)
    monkeypatch.setattr(redis_mod.os, "geteuid", lambda: 1000)  # not root: never apt-get
    with pytest.raises(ServiceError, match="apt-get install -y redis-server"):
        redis_mod.redis_server_bin()
