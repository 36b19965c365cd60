"""Assemble a worker: the Faust app, Redis, the runtimes behind the agents, and the agents themselves."""

from __future__ import annotations

import os
import socket
import sys

import faust
import redis.asyncio as aioredis

from riskmon.config import Settings
from riskmon.ews.service import EwsService
from riskmon.policy import load_policy
from sinks.hooks.dispatcher import HookDispatcher
from streams.agents import accounts, alert_hooks, business_metrics, purchases, repayments
from streams.app import create_app
from streams.consumer_credit import ConsumerCreditRuntime, faust_runtime_hooks


def build_worker(settings: Settings, worker_id: str | None = None) -> faust.App:
    """A fully wired Faust app, ready for ``app.main()``."""
    if not settings.redis_url:
        raise SystemExit("RISKMON_REDIS_URL is not set: start services with `riskmon services up` first")
    policy = load_policy(settings.policy_path)
    app = create_app(settings)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    client = aioredis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                               health_check_interval=30)
    runtime = ConsumerCreditRuntime(settings, policy, client, worker_id,
                                    **faust_runtime_hooks(app, settings.topic_prefix))
    ews = EwsService(client, policy.section("ews"), settings.state_ttl_days * 86_400)
    hooks = HookDispatcher(settings, policy.section("hooks"), client)

    @app.on_partitions_assigned.connect
    async def _assigned(sender: faust.App, assigned: set, **kwargs: object) -> None:  # noqa: ARG001
        runtime.on_rebalance()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: faust.App, revoked: set, **kwargs: object) -> None:  # noqa: ARG001
        runtime.on_rebalance()

    @app.task
    async def _start_hooks() -> None:
        await hooks.start()

    for module in (accounts, purchases, repayments):
        module.register(app, settings, runtime)
    business_metrics.register(app, settings, ews)
    alert_hooks.register(app, settings, hooks)
    app.riskmon_runtime = runtime  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings, loglevel: str | None = None) -> None:
    """Run a worker in the foreground until SIGTERM / Ctrl-C."""
    app = build_worker(settings)
    sys.argv = ["riskmon-worker", "worker", "-l", loglevel or settings.log_level]
    app.main()
