"""Assemble a worker: the Faust app, Redis, the runtimes behind the agents, and the agents themselves."""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

import faust
import orjson
import redis

from riskmon import accel
from riskmon.config import Settings
from riskmon.ews.service import EwsService
from riskmon.policy import load_policy
from riskmon.state.layout import LayoutError, check_layout
from riskmon.state.redis_client import connect as redis_connect
from sinks.hooks.dispatcher import HookDispatcher
from streams.agents import alert_hooks, business_metrics, consumer_credit
from streams.app import create_app, drop_per_message_monitor, keep_root_log_level, use_event_loop
from streams.consumer_credit import ConsumerCreditRuntime, faust_runtime_hooks
from streams.gc_pauses import freeze_long_lived_objects

HOOK_DEAD_LETTERS_TOPIC = "hook-dead-letters"
HOOK_DRAIN_S = 5.0  # on shutdown, queued hook deliveries get this long before they are dead-lettered


def build_worker(settings: Settings, worker_id: str | None = None, loglevel: str | None = None) -> faust.App:
    """A fully wired Faust app, ready for ``app.main()``."""
    if not settings.redis_url:
        raise SystemExit("RISKMON_REDIS_URL is not set: start services with `riskmon services up` first")
    layout_checked = check_state_layout(settings.redis_url)
    policy = load_policy(settings.policy_path)
    app = create_app(settings)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    client = redis_connect(settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
    runtime = ConsumerCreditRuntime(settings, policy, client, worker_id, freeze_gc=True,
                                    layout_checked=layout_checked, on_fatal=stop_this_worker,
                                    **faust_runtime_hooks(app, settings.topic_prefix))
    ews = EwsService(client, policy.section("ews"), settings.state_ttl_days * 86_400,
                     cache_bytes=settings.ews_cache_mb * 2**20)
    hooks = HookDispatcher(settings, policy.section("hooks"), client,
                           on_dead_letter=hook_dead_letter_publisher(app, settings.topic_prefix))

    @app.on_partitions_assigned.connect
    async def _assigned(sender: faust.App, assigned: set, **kwargs: object) -> None:  # noqa: ARG001
        runtime.on_rebalance()
        ews.invalidate()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: faust.App, revoked: set, **kwargs: object) -> None:  # noqa: ARG001
        runtime.on_rebalance()
        ews.invalidate()

    @app.task
    async def _start_hooks() -> None:
        await hooks.start()
    keep_root_log_level(app, loglevel or settings.log_level)
    drop_per_message_monitor(app)

    @app.timer(interval=0.5)
    async def _tick() -> None:
        # timers of accounts whose partitions went quiet fire once the slowest backlog has cleared
        await runtime.tick()

    @app.on_before_shutdown.connect
    async def _stop_hooks(sender: faust.App, **kwargs: object) -> None:  # noqa: ARG001
        # After the consumer stopped (no more submits), before the producer's final flush: queued
        # deliveries get HOOK_DRAIN_S to finish, the rest are dead-lettered (Redis + topic), never
        # dropped silently; an interrupted delivery leaves its claim for a flagged takeover.
        await hooks.stop(drain_timeout_s=HOOK_DRAIN_S)

    consumer_credit.register(app, settings, runtime)
    business_metrics.register(app, settings, ews)
    alert_hooks.register(app, settings, hooks)
    app.riskmon_runtime = runtime  # type: ignore[attr-defined]
    return app


def check_state_layout(redis_url: str) -> bool:
    """Refuse to start on account states this build cannot read (``riskmon.state.layout``), saying why.

    False when Redis cannot be reached now: a worker still starts then (it must join its group and wait
    for Redis like any outage), and its runtime checks before its first state read instead.
    """
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
    try:
        check_layout(client)
    except LayoutError as exc:
        raise SystemExit(f"riskmon worker: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"riskmon worker: Redis not reachable ({exc}); the state layout is checked before the first "
              "state read", file=sys.stderr, flush=True)
        return False
    finally:
        client.close()
    return True


def stop_this_worker(exc: BaseException) -> None:
    """A runtime's fatal error (a state layout it cannot read): stop the worker the way SIGTERM does,
    so nothing more is read and nothing unapplied is acked."""
    print(f"riskmon worker: stopping: {exc}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def hook_dead_letter_publisher(app: faust.App, prefix: str) -> Any:
    """``on_dead_letter`` callback: each failed hook delivery also goes to ``<prefix>hook-dead-letters``.

    Why a topic as well as the Redis list ``hooks:dead``: the list is trimmed and local to one Redis;
    the topic is durable, replayable and visible to the sink and to other tools. A failure to publish
    is logged by the dispatcher and never blocks delivery of other alerts.
    """
    topic = app.topic(prefix + HOOK_DEAD_LETTERS_TOPIC, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw", partitions=app.conf.topic_partitions)
    declared = False

    async def publish(record: dict[str, Any]) -> None:
        nonlocal declared
        if not declared:
            await topic.maybe_declare()
            declared = True
        await topic.send(key=str(record.get("dedup_key") or "").encode(), value=orjson.dumps(record))

    return publish


def run_worker(settings: Settings, loglevel: str | None = None) -> None:
    """Run a worker in the foreground until SIGTERM / Ctrl-C."""
    use_event_loop(settings.event_loop)
    # which code this worker runs (compiled build or pure Python, and why): a stale build is visible here
    print(f"riskmon worker: {accel.status().describe()}", file=sys.stderr, flush=True)
    app = build_worker(settings, loglevel=loglevel)
    # --without-web: Faust's worker command would turn the web server on regardless of the app's
    # web_enabled=False, and a second worker on the same host then dies binding port 6066.
    sys.argv = ["riskmon-worker", "worker", "--without-web", "-l", loglevel or settings.log_level]
    freeze_long_lived_objects()  # modules, the app, the models: alive for the whole process
    app.main()
