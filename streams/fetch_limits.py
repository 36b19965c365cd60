"""How long the broker may hold a worker's fetch: ``fetch.min.bytes`` and ``fetch.max.wait.ms``.

Why: Faust 0.15 creates its aiokafka consumer with ``fetch_min_bytes=1`` and exposes neither setting.
With one byte enough, the broker answers a fetch as soon as anything new is in, and aiokafka sends the
next one at once. On a live stream that arrives a few records at a time, a worker then fetched 316-341
times a second at 1k events/s, and every fetch request and response (all assigned partitions of every
input topic) is encoded and decoded in pure Python: 0.68 core of the worker at 1k/s, ~680 µs of CPU per
event against ~190 when it drains a backlog in large fetches. Asking the broker to hold each fetch
until ``fetch_min_bytes`` are in or ``fetch_max_wait_ms`` have passed bounds that to one fetch per wait
(43/s at 20 ms) at the price of at most that wait in latency (docs/performance.md, session 10).
Under a backlog nothing changes: a fetch finds more than ``fetch_min_bytes`` waiting and returns at once.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


def with_fetch_limits(consumer_cls: type[faust_aiokafka.Consumer], min_bytes: int,
                      max_wait_ms: int) -> type[faust_aiokafka.Consumer]:
    """A subclass of Faust's aiokafka ``consumer_cls`` whose Kafka consumer uses these fetch limits."""

    class FetchLimitsThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
            consumer = super()._create_worker_consumer(transport)
            # aiokafka reads both when ``start()`` builds its fetcher, which comes after this; Faust passes
            # no way to set them (it hard-codes fetch_max_wait_ms=1500 and leaves min bytes at 1)
            consumer._fetch_min_bytes = min_bytes  # noqa: SLF001
            consumer._fetch_max_wait_ms = max_wait_ms  # noqa: SLF001
            return consumer

    class FetchLimitsConsumer(consumer_cls):  # type: ignore[valid-type,misc]
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return FetchLimitsThread(self, loop=self.loop, beacon=self.beacon)

    # not renamed after the fact: mode's Service registers a class's tasks under its qualified name
    return FetchLimitsConsumer


__all__ = ["with_fetch_limits"]
