"""Agent on ``alerts``: hand each alert to the hook dispatcher (its queues never block this stream)."""

from __future__ import annotations

import faust
import orjson

from riskmon.config import Settings
from sinks.hooks.dispatcher import HookDispatcher
from streams.topics import input_topic


def register(app: faust.App, settings: Settings, dispatcher: HookDispatcher) -> faust.types.AgentT:
    """Attach the ``alerts`` agent to the app."""

    @app.agent(input_topic(app, "alerts", settings.topic_prefix), name="riskmon.alert_hooks")
    async def alert_hooks(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            for event in batch:
                await dispatcher.submit(orjson.loads(event.message.value))

    return alert_hooks
