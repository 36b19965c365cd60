"""Agent on ``accounts``: batches go to the shared consumer-credit runtime (decode, decide, emit)."""

from __future__ import annotations

import faust

from riskmon.config import Settings
from streams.consumer_credit import ConsumerCreditRuntime
from streams.topics import input_topic


def register(app: faust.App, settings: Settings, runtime: ConsumerCreditRuntime) -> faust.types.AgentT:
    """Attach the ``accounts`` agent to the app."""

    @app.agent(input_topic(app, "accounts", settings.topic_prefix), name="riskmon.accounts")
    async def accounts(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await runtime.handle(batch)

    return accounts
