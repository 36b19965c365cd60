"""Build the Faust application (and nothing else: agents register themselves in ``streams.agents``)."""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.utils.logging import level_number

from riskmon.config import Settings
from streams.fast_drain import FastDrainConsumer, install_consumer
from streams.fetch_limits import with_fetch_limits


def bootstrap_url(settings: Settings) -> str:
    """The broker URL Faust wants (``kafka://host:port``)."""
    url = settings.broker_url or "kafka://127.0.0.1:9092"
    return url if "://" in url else f"kafka://{url}"


def create_app(settings: Settings) -> faust.App:
    """A Faust app whose consumer group is ``settings.app_id``.

    At-least-once processing with idempotent state (event ids in Redis) rather than Kafka transactions,
    because the embedded Tansu broker has no transactions and the same code must run on both brokers.
    No Faust tables: state lives in Redis (docs/state.md says why), so no changelog recovery on restart.
    """
    datadir = settings.var_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=bootstrap_url(settings),
        store="memory://",
        datadir=str(datadir / settings.app_id),
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        web_enabled=False,
        producer_linger_ms=settings.producer_linger_ms,
        producer_max_batch_size=256 * 1024,
        consumer_auto_offset_reset="earliest",
        # Events wait unacked in the event-time merge buffer; a rebalance must not wait for them (they
        # are dropped and re-read by the partition's new owner), only commit what was applied.
        stream_wait_empty=False,
        broker_commit_every=5000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=8192,
        broker_request_timeout=90.0,
        broker_session_timeout=30.0,
        broker_heartbeat_interval=3.0,
        # Faust's repaired compiled fast paths (opt-in in faust-streaming 0.15): the stream iterator takes
        # an event already queued with ``get_nowait`` instead of awaiting the channel for each one, and
        # the conductor decodes a record once for all channels of one key/value type (riskmon has one
        # channel per topic, so that part changes nothing here).
        cython_optimizations=settings.faust_fast_paths,
    )
    consumer_cls = FastDrainConsumer if settings.fast_drain else faust_aiokafka.Consumer
    if settings.fetch_min_bytes > 1:
        consumer_cls = with_fetch_limits(consumer_cls, settings.fetch_min_bytes, settings.fetch_max_wait_ms)
    if consumer_cls is not faust_aiokafka.Consumer:
        install_consumer(app, consumer_cls)
    return app


def keep_root_log_level(app: faust.App, loglevel: str) -> None:
    """Put the root logger back at ``loglevel`` once the worker runs.

    Why: Faust's worker sets the root logger to DEBUG so that its terminal spinner turns on every log
    call. Every debug call of aiokafka, mode and Faust then built a LogRecord (caller lookup included)
    that no handler printed: several per message on the hot path, about a tenth of a worker's CPU
    (docs/performance.md). Nothing is lost: the handlers were already at ``loglevel``.
    """

    @app.task
    async def _restore_root_log_level() -> None:
        logging.getLogger().setLevel(level_number(loglevel))


def drop_per_message_monitor(app: faust.App) -> None:
    """Take Faust's built-in ``Monitor`` sensor off the per-message path once the worker runs.

    Why: the monitor keeps in-memory statistics for Faust's web ``/stats`` page (off here: workers run
    ``--without-web``) and does bookkeeping for every message in and out, every stream event and every
    send. Riskmon's own counters (``rm:stats``) and the latency trace are what operators read. Removing
    it from the sensor set leaves those hooks looping over nothing; the calls Faust makes on
    ``app.monitor`` directly (per fetch and per commit, not per message) still work.
    """

    @app.task
    async def _drop_monitor() -> None:
        if app.monitor in set(app.sensors):
            app.sensors.remove(app.monitor)


def use_event_loop(name: str) -> None:
    """Install the configured event loop policy (``RISKMON_EVENT_LOOP``) before any loop exists.

    Why uvloop by default: much of Faust's per-message cost is event-loop work (callbacks, futures and
    tasks, socket reads). Measured side by side here (docs/performance.md): Faust's decode-only
    consumer 112-119 -> 89-97 µs of CPU per message, the full worker 300-307 -> 256-276 µs.
    """
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
