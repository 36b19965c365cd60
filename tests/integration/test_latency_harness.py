"""Stage (e)'s harness on its own, on real Apache Kafka: both paced producers (the Kafka Java client in a
JVM of its own, librdkafka in the bench's process) against an echo that answers each purchase with a
decision carrying its ``event_id``, as the workers do.

What it pins down: every purchase is sent, timed and matched to its answer; the Java producer's clock
is the bench's (a decision can never come back before its purchase was sent, and the echo's own delay
is inside every measured latency); the CPU split names the producer process; a producer that cannot
start fails with its own words."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from riskmon import outputs as out
from riskmon.bench import latency
from riskmon.bench.dataset import Line
from riskmon.services import kafka
from riskmon.services.procs import ServiceError

pytestmark = pytest.mark.integration

ECHO_DELAY_S = 0.02  # the echo holds each batch this long: a floor every measured latency must be above


def _lines(n: int) -> list[Line]:
    """n input lines, every third a purchase; the rest stand for repayments and business metrics."""
    lines = []
    for i in range(n):
        if i % 3 == 0:
            eid = f"p-{i}"
            lines.append(Line("purchases", f"u{i % 17}".encode(), orjson.dumps({"event_id": eid}), eid))
        else:
            lines.append(Line("repayments", f"u{i % 17}".encode(), orjson.dumps({"event_id": f"r-{i}"}), None))
    return lines


class _Echo(threading.Thread):
    """Answers every purchase on ``decisions`` after ECHO_DELAY_S: a stand-in worker."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"echo-{prefix}",
                                  "auto.offset.reset": "earliest"})
        self.consumer.subscribe([prefix + "purchases"])
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
        self.topic = prefix + out.TOPIC_DECISIONS
        self.stop = threading.Event()
        self.answered = 0

    def run(self) -> None:
        while not self.stop.is_set():
            msgs = [m for m in self.consumer.consume(500, 0.05) if m.error() is None]
            if not msgs:
                continue
            time.sleep(ECHO_DELAY_S)
            for m in msgs:
                eid = orjson.loads(m.value())["event_id"]
                self.producer.produce(self.topic, orjson.dumps({"event_id": eid, "decision": "approve"}), key=m.key())
                self.answered += 1
            self.producer.poll(0)
        self.producer.flush(10)
        self.consumer.close()


@pytest.mark.parametrize("producer", latency.PRODUCERS)
def test_every_purchase_is_timed_against_its_answer(kafka_stack, tmp_path: Path, producer: str) -> None:
    prefix = f"lat-{producer}."
    kafka_stack.create_topics([prefix + "purchases", prefix + "repayments", prefix + out.TOPIC_DECISIONS], 2)
    lines = _lines(600)
    echo = _Echo(kafka_stack.bootstrap, prefix)
    echo.start()
    progressed: list[int] = []
    try:
        res = latency.measure_latency(lines, kafka_stack.bootstrap, prefix, rate=300, warmup_s=0.5, settle_s=10,
                                      progress=progressed.append, producer=producer, work_dir=tmp_path)
    finally:
        echo.stop.set()
        echo.join(15)
    purchases = sum(1 for line in lines if line.purchase_id)
    assert res["producer"] == producer
    assert sum(progressed) == len(lines)  # progress counted every record, once
    assert res["purchases_unanswered"] == 0 and echo.answered == purchases
    # the first 0.5 s of the ~2 s are left out, the rest measured
    assert 0 < res["decisions_measured"] < purchases
    # the echo's hold is in every latency: a clock that ran ahead or behind would show here
    assert ECHO_DELAY_S * 1000 <= res["p50_ms"] <= res["p99_ms"] <= res["max_ms"] < 5000
    assert sum(w["n"] for w in res["by_window"]) == res["decisions_measured"]  # one 10 s window here
    # ticks send what is due: never ahead of the offered rate (the lower bound only says it was paced at
    # all; the window also holds the JVM reading "go" and the final flush, slow on a loaded runner)
    assert 150 <= res["achieved_rate"] <= 301
    assert set(res["cpu_s"]) == ({"bench", "producer"} if producer == "java" else {"bench"})
    assert list(tmp_path.iterdir()) == []  # the Java producer's record and time files are removed


def test_a_producer_that_cannot_start_says_why(kafka_stack, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(latency, "JAVA_OPTS", ("-Xmx1k",))  # too small a heap for any JVM to start
    with pytest.raises(RuntimeError, match="the paced producer exited") as err:
        latency.JavaPacer(_lines(3), kafka_stack.bootstrap, "lat-bad.", 100.0, 0.005, tmp_path,
                          kafka.java_bin(), kafka.ensure_jars())
    assert "too small maximum heap" in str(err.value).lower()  # the JVM's own words
    assert list(tmp_path.iterdir()) == []  # and nothing of it is left behind


def test_without_java_the_error_names_the_other_producer(kafka_stack, tmp_path: Path, monkeypatch) -> None:
    def no_java() -> str:
        raise ServiceError(kafka.JAVA_HINT)

    monkeypatch.setattr(kafka, "java_bin", no_java)
    kafka_stack.create_topics(["lat-nojava." + out.TOPIC_DECISIONS], 1)
    with pytest.raises(ServiceError, match="--latency-producer librdkafka") as err:
        latency.measure_latency(_lines(3), kafka_stack.bootstrap, "lat-nojava.", rate=100, work_dir=tmp_path)
    assert "java (17+) is not installed" in str(err.value)
