"""The fast-drain transport on real Apache Kafka: blocked deliveries lose, repeat and reorder nothing,
with Faust's fetch and with the broker holding fetches (``streams/fetch_limits.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaProducer

from riskmon.services.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fetch_limits", [None, (1048576, 20)], ids=["faust-fetch", "fetch-limits"])
def test_every_message_arrives_once_in_partition_order_when_the_stream_buffer_is_full(
        kafka_stack: Stack, tmp_path: Path, fetch_limits: tuple[int, int] | None) -> None:
    topic = f"fastdrain-{uuid.uuid4().hex[:8]}"
    n = 3000
    kafka_stack.create_topics([topic], partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_stack.bootstrap, linger_ms=5)
    for i in range(n):
        producer.send(topic, key=f"k{i % 17}".encode(), value=str(i).encode())
    producer.flush()
    producer.close()

    out = tmp_path / "seen.json"
    group = f"probe-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PROBE_BOOTSTRAP": kafka_stack.bootstrap, "PROBE_TOPIC": topic, "PROBE_N": str(n),
           "PROBE_OUT": str(out), "PROBE_GROUP": group,
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if fetch_limits:  # every fetch then waits 20 ms for a megabyte that never comes, and must lose nothing
        env["PROBE_FETCH_LIMITS"] = ",".join(map(str, fetch_limits))
    log = (tmp_path / "probe.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.apps.fast_drain_probe"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not out.exists():
            assert proc.poll() is None, (tmp_path / "probe.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "probe did not consume every message in 120 s"
            time.sleep(0.2)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    assert not (ROOT / f"{group}-data").exists(), "the probe wrote its data dir into the checkout"
    assert (tmp_path / "probe-data").is_dir()
    report = json.loads(out.read_text())
    seen = report["seen"]
    assert report["blocked"] > 0, "the full-buffer path never ran: the test proves nothing"
    assert report["fetch"] == list(fetch_limits or (1, 1500))  # what the Kafka consumer fetched with
    assert sorted(int(v) for _, _, v in seen) == list(range(n))  # each message exactly once
    offsets: dict[int, list[int]] = defaultdict(list)
    for part, offset, _ in seen:
        offsets[part].append(offset)
    for part, got in offsets.items():
        assert got == sorted(got), f"partition {part} delivered out of order"
        assert got == list(range(len(got))), f"partition {part} skipped or repeated an offset"
