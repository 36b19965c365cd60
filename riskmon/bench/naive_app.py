"""Stage (b): the naive baseline — a Faust agent that handles one event at a time.

Per event it decodes the JSON (orjson) and does one Redis GET and one SET of a per-subject counter,
awaiting each round trip before the next event: the obvious way to write a stateful agent, and what
riskmon's batching is measured against. ``RISKMON_BENCH_NAIVE_MODE=decode`` drops the Redis calls.
Run as ``python -m riskmon.bench.naive_app`` with the usual ``RISKMON_*`` variables (app id = group,
topic prefix, partitions, broker and Redis URLs).
"""

from __future__ import annotations

import os
import sys

import faust
import orjson
import redis.asyncio as aioredis

from riskmon.config import Settings
from riskmon.contract import INPUT_TOPICS
from streams.app import keep_root_log_level
from streams.topics import input_topic


def build_app(settings: Settings, mode: str) -> faust.App:
    """A Faust app with one per-event agent on every input topic."""
    app = faust.App(settings.app_id, broker=settings.broker_url, store="memory://", web_enabled=False,
                    topic_partitions=settings.partitions, consumer_auto_offset_reset="earliest",
                    broker_commit_interval=1.0, broker_commit_every=5000)
    client = aioredis.from_url(settings.redis_url) if settings.redis_url else None

    def make_agent(topic_name: str) -> None:
        @app.agent(input_topic(app, topic_name, settings.topic_prefix), name=f"naive.{topic_name}")
        async def agent(stream: faust.StreamT) -> None:
            async for event in stream.events():
                try:
                    doc = orjson.loads(event.message.value)
                except orjson.JSONDecodeError:
                    continue
                if mode == "redis" and client is not None and isinstance(doc, dict):
                    key = f"bench:naive:{doc.get('user_id') or doc.get('enterprise_id')}"
                    seen = await client.get(key)
                    await client.set(key, int(seen or 0) + 1)

    for name in INPUT_TOPICS:
        make_agent(name)
    keep_root_log_level(app, "warn")  # the same fix as riskmon's worker: a fair baseline
    return app


def main() -> None:
    """Run the naive worker until SIGTERM."""
    app = build_app(Settings(), os.environ.get("RISKMON_BENCH_NAIVE_MODE", "redis"))
    sys.argv = ["riskmon-bench-naive", "worker", "--without-web", "-l", "warn"]
    app.main()


if __name__ == "__main__":
    main()
