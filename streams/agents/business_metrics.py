"""Agent on ``business-metrics``: enterprise early warning (decode, EwsService, emit)."""

from __future__ import annotations

import faust

from riskmon.config import Settings
from riskmon.contract import TOPIC_METRICS, Rejected, decode
from riskmon.ews.service import EwsService
from streams.emit import dead_letter_for, publish
from streams.topics import input_topic


def register(app: faust.App, settings: Settings, ews: EwsService) -> faust.types.AgentT:
    """Attach the ``business-metrics`` agent to the app."""

    @app.agent(input_topic(app, TOPIC_METRICS, settings.topic_prefix), name="riskmon.business_metrics")
    async def business_metrics(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            valid, dead = [], []
            for event in batch:
                ev = decode(TOPIC_METRICS, event.message.value, settings.max_message_bytes)
                (dead.append(dead_letter_for(event, ev, settings.topic_prefix)) if isinstance(ev, Rejected) else valid.append(ev))
            await publish(app, dead + (await ews.handle_batch(valid) if valid else []), settings.topic_prefix)
            if dead:
                await ews.redis.hincrby("rm:stats", "dead_letters", len(dead))

    return business_metrics
