"""Agent on ``accounts`` + ``purchases`` + ``repayments``: one stream, batches to the consumer-credit runtime.

Why one agent over the three user-keyed topics rather than one agent each: the runtime applies a user's
events in event-time order across the three topics (``streams/consumer_credit.py``). With an agent per
topic, a purchase waited in the merge buffer for the other two agents' next batches (measured: ~20 ms
p50 at 1,000 msg/s) and the three agents queued on the runtime's lock. One multi-topic stream hands the
runtime what was fetched from all three in one batch. The topics stay co-partitioned, so a worker still
owns a user's three partitions.
"""

from __future__ import annotations

import faust

from riskmon.config import Settings
from streams.consumer_credit import ConsumerCreditRuntime
from streams.topics import user_topics


def register(app: faust.App, settings: Settings, runtime: ConsumerCreditRuntime) -> faust.types.AgentT:
    """Attach the consumer-credit agent to the app."""

    @app.agent(user_topics(app, settings.topic_prefix), name="riskmon.consumer_credit")
    async def consumer_credit(stream: faust.StreamT) -> None:
        try:
            async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
                await runtime.submit(batch)  # returns while the batch's round trips are in flight
        finally:
            runtime.cancel_inflight()

    return consumer_credit



