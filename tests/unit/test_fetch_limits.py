"""``RISKMON_FETCH_MIN_BYTES`` / ``RISKMON_FETCH_MAX_WAIT_MS`` reach the Kafka consumer Faust creates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from riskmon.config import Settings
from streams.app import create_app
from streams.fast_drain import FastDrainConsumer


def _kafka_consumer(settings: Settings) -> tuple[type, object]:
    """The Faust consumer class the app uses and the aiokafka consumer its thread would start."""
    app = create_app(settings)

    async def build() -> object:  # aiokafka's consumer wants a running loop; nothing connects here
        consumer = app.consumer
        thread = consumer._new_consumer_thread()  # noqa: SLF001
        return thread._create_worker_consumer(app.transport)  # noqa: SLF001

    return type(app.consumer), asyncio.run(build())


@pytest.mark.parametrize("fast_drain", [True, False])
def test_fetch_limits_reach_the_kafka_consumer(tmp_path: Path, fast_drain: bool) -> None:
    cls, kafka = _kafka_consumer(Settings(var_dir=tmp_path, fast_drain=fast_drain, fetch_min_bytes=65536,
                                          fetch_max_wait_ms=20))
    assert kafka._fetch_min_bytes == 65536 and kafka._fetch_max_wait_ms == 20  # noqa: SLF001
    # the limits are added to the consumer the other settings chose, not in place of it
    assert issubclass(cls, FastDrainConsumer) is fast_drain and issubclass(cls, faust_aiokafka.Consumer)


def test_default_keeps_fausts_fetch(tmp_path: Path) -> None:
    cls, kafka = _kafka_consumer(Settings(var_dir=tmp_path))
    assert cls is FastDrainConsumer
    assert kafka._fetch_min_bytes == 1 and kafka._fetch_max_wait_ms == 1500  # noqa: SLF001
    plain, _ = _kafka_consumer(Settings(var_dir=tmp_path, fast_drain=False))
    assert plain is faust_aiokafka.Consumer
