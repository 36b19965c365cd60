"""The services layer against the real things: Apache Kafka, Tansu, redis-server, chdb.

Each test starts (or uses the session's) real processes and checks what they do, including that
nothing we started is still running afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import clickhouse_connect
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from riskmon.config import Settings
from riskmon.services import ServiceError, Stack, identify_broker, procs
from riskmon.services.procs import pid_alive

pytestmark = pytest.mark.integration

PYTHON = sys.executable
RISKMON = str(Path(sys.executable).with_name("riskmon"))


def _wait_gone(pids: list[int], within: float = 30.0) -> list[int]:
    """Pids still alive after waiting up to ``within`` seconds (a liveness bound, not a timing assert)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def _roundtrip_group(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, bytes]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i in range(n):
            producer.send(topic, key=f"user-{i % 5}".encode(), value=f"msg-{i}".encode())
        producer.flush()
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{uuid.uuid4().hex[:6]}",
                             auto_offset_reset="earliest", consumer_timeout_ms=30_000)
    got: list[tuple[bytes, bytes]] = []
    try:
        for record in consumer:
            got.append((record.key, record.value))
            if len(got) == n:
                break
    finally:
        consumer.close()
    return got


def test_apache_kafka_is_apache_and_round_trips_keyed_messages(kafka_stack: Stack) -> None:
    ident = identify_broker(kafka_stack.bootstrap)
    assert ident.kind == "apache"
    assert ident.cluster_id != "tansu_cluster"
    assert ident.api_version >= (4, 0)
    assert kafka_stack.broker_kind == "apache"

    topic = f"svc-{uuid.uuid4().hex[:8]}"
    kafka_stack.create_topics([topic], partitions=3)
    kafka_stack.create_topics([topic], partitions=3)  # idempotent
    got = _roundtrip_group(kafka_stack.bootstrap, topic, 20)
    assert sorted(v for _, v in got) == sorted(f"msg-{i}".encode() for i in range(20))
    # Same key, same partition: the property co-partitioning relies on.
    producer = KafkaProducer(bootstrap_servers=kafka_stack.bootstrap)
    parts = {producer.send(topic, key=b"user-7", value=b"x").get(30).partition for _ in range(5)}
    producer.close()
    assert len(parts) == 1


def test_create_topics_refuses_a_partition_count_mismatch(kafka_stack: Stack) -> None:
    topic = f"svc-{uuid.uuid4().hex[:8]}"
    kafka_stack.create_topics([topic], partitions=2)
    with pytest.raises(ServiceError, match="partition counts"):
        kafka_stack.create_topics([topic], partitions=4)


def test_tansu_is_tansu_and_round_trips(tansu_stack: Stack) -> None:
    ident = identify_broker(tansu_stack.bootstrap)
    assert ident.kind == "tansu"
    assert ident.cluster_id == "tansu_cluster"

    topic = f"svc-{uuid.uuid4().hex[:8]}"
    tansu_stack.create_topics([topic], partitions=2)
    producer = KafkaProducer(bootstrap_servers=tansu_stack.bootstrap)
    sent = {producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()).get(30).partition
            for i in range(10)}
    producer.close()
    assert sent <= {0, 1}
    # Explicit assignment: Tansu's group join waits out the session timeout (see riskmon/services docs).
    consumer = KafkaConsumer(bootstrap_servers=tansu_stack.bootstrap, consumer_timeout_ms=10_000,
                             auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    consumer.seek_to_beginning()
    values = []
    for record in consumer:
        values.append(record.value)
        if len(values) == 10:
            break
    consumer.close()
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(10))


def test_redis_is_a_real_server(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        key = f"svc:{uuid.uuid4().hex}"
        client.set(key, "42", px=60_000)
        assert client.get(key) == b"42"
        assert 0 < client.pttl(key) <= 60_000
        assert int(client.info("server")["redis_version"].split(".")[0]) >= 7
        assert client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, key, 8) == 50
    finally:
        client.close()


def test_chdb_is_clickhouse_26_or_later(clickhouse_dsn: str) -> None:
    assert clickhouse_dsn.startswith("chdb://")
    client = clickhouse_connect.get_client(dsn=clickhouse_dsn)
    try:
        version = client.query("SELECT version()").result_rows[0][0]
        assert int(version.split(".")[0]) >= 26
        assert client.query("SELECT sum(number) FROM numbers(101)").result_rows[0][0] == 5050
    finally:
        client.close()


def test_settings_factory_wires_the_session_services(settings, tansu_bootstrap: str, redis_url: str,
                                                     clickhouse_dsn: str, tmp_path: Path) -> None:
    s = settings(broker="tansu")
    assert s.broker_url == f"kafka://{tansu_bootstrap}"
    assert s.redis_url == redis_url
    assert s.clickhouse == clickhouse_dsn
    assert s.var_dir == tmp_path
    assert s.app_id != settings(broker="tansu").app_id
    # A Stack over these settings uses them and starts nothing.
    with Stack(s) as stack:
        assert stack.started == []
        assert stack.broker_kind == "external"
        assert stack.bootstrap == tansu_bootstrap
        assert stack.env()["RISKMON_REDIS_URL"] == redis_url
        assert Settings(**{k[len("RISKMON_"):].lower(): v for k, v in stack.env().items()}).broker_url == \
            f"kafka://{tansu_bootstrap}"


def test_stack_stops_every_process_it_started(tmp_path: Path) -> None:
    with Stack(Settings(var_dir=tmp_path, broker_url=None, redis_url=None), broker="tansu") as stack:
        pids = [p.pid for p in stack.started]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        assert {p.pid for p in procs.running()} >= set(pids)
        assert redis.Redis.from_url(stack.redis_url).ping()
        assert identify_broker(stack.bootstrap).kind == "tansu"
        logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
        assert any(n.startswith("tansu-") for n in logs) and any(n.startswith("redis-") for n in logs)
    assert [p for p in pids if pid_alive(p)] == []
    assert not set(pids) & {p.pid for p in procs.running()}


def test_an_ephemeral_apache_broker_starts_empty_and_leaves_no_data(tmp_path: Path) -> None:
    """The bench and replays start Kafka with a data directory of their own, removed at stop: the shared
    var/kafka/data is neither used nor created, and topics of an earlier run are not there."""
    from kafka.admin import KafkaAdminClient

    s = Settings(var_dir=tmp_path, broker_url=None, redis_url=None)
    homes = []
    for _ in range(2):
        with Stack(s, broker="apache", redis=False, ephemeral_broker=True) as stack:
            run_homes = [p for p in (tmp_path / "kafka").iterdir() if p.name.startswith("run-")]
            assert len(run_homes) == 1 and (run_homes[0] / "data" / "meta.properties").exists()
            homes.append(run_homes[0])
            admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap, client_id="t")
            try:
                assert "left-behind" not in admin.list_topics()  # the first run's topic is gone
                stack.create_topics(["left-behind"], 1)
            finally:
                admin.close()
        assert not homes[-1].exists()
    assert homes[0] != homes[1]
    assert not (tmp_path / "kafka" / "data").exists()


def test_a_service_that_dies_on_start_reports_its_log(tmp_path: Path) -> None:
    from riskmon.services.redis import redis_server_bin

    proc = procs.start("bad-redis", [redis_server_bin(), "--port", "not-a-port"], log_dir=tmp_path)
    with pytest.raises(ServiceError) as err:
        procs.wait_for_port(proc, "127.0.0.1", procs.free_port(), timeout=60)
    procs.stop(proc)
    assert "bad-redis exited" in str(err.value)
    assert "port" in str(err.value).lower() and str(tmp_path / "bad-redis.log") in str(err.value)


CHILD = """
import json, sys, time
from pathlib import Path
from riskmon.config import Settings
from riskmon.services import Stack
stack = Stack(Settings(var_dir=Path(sys.argv[1]), broker_url=None, redis_url=None), broker="tansu")
stack.start()
print(json.dumps([p.pid for p in stack.started]), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_safety_net_stops_services_when_the_parent_is_killed(tmp_path: Path, sig: int) -> None:
    """SIGTERM/SIGINT run the handlers; SIGKILL leaves it to the kernel's parent-death signal."""
    child = subprocess.Popen([PYTHON, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        pids = json.loads(line)
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        child.send_signal(sig)
        child.wait(timeout=60)
        assert _wait_gone(pids) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_services_up_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMON_")}
    env["RISKMON_VAR_DIR"] = str(tmp_path)
    up = subprocess.run([RISKMON, "services", "up", "--broker", "apache"], env=env, capture_output=True,
                        text=True, timeout=300)
    state_path = tmp_path / "services.json"
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads(state_path.read_text())
        pids = [state["broker"]["pid"], state["redis"]["pid"]]
        assert all(pid_alive(p) for p in pids)
        exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
        assert exports == {"RISKMON_BROKER_URL": state["broker"]["url"], "RISKMON_REDIS_URL": state["redis"]["url"]}
        # The processes outlived `up` and answer: it is Apache Kafka, not Tansu.
        assert identify_broker(state["broker"]["bootstrap"]).kind == "apache"
        assert redis.Redis.from_url(exports["RISKMON_REDIS_URL"]).ping()

        again = subprocess.run([RISKMON, "services", "up"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0 and again.stdout == up.stdout  # already up: same services
        status = subprocess.run([RISKMON, "services", "status", "--json"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert status.returncode == 0, status.stdout + status.stderr
        assert [r["healthy"] for r in json.loads(status.stdout)["services"]] == [True, True]
    finally:
        down = subprocess.run([RISKMON, "services", "down"], env=env, capture_output=True, text=True,
                              timeout=120)
    assert down.returncode == 0, down.stderr
    assert not state_path.exists()
    assert _wait_gone(pids) == []
    status = subprocess.run([RISKMON, "services", "status"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert status.returncode == 1
