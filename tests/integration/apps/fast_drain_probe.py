"""A Faust worker on riskmon's fast-drain transport with a 4-event stream buffer and a slow agent.

Why: with so small a buffer most deliveries find the stream's queue full and suspend, which is the
path ``streams/fast_drain.py`` hands to Faust's ``wait_first``. The agent records every (partition,
offset) it gets; once it has ``PROBE_N`` it writes them, with the consumer's count of blocked
deliveries, to ``PROBE_OUT`` as JSON and the test stops the worker.

Env: ``PROBE_BOOTSTRAP`` (host:port), ``PROBE_TOPIC``, ``PROBE_N``, ``PROBE_OUT``, ``PROBE_GROUP``;
``PROBE_FETCH_LIMITS`` = ``min_bytes,max_wait_ms`` adds ``streams.fetch_limits`` to the consumer.
The worker's data dir goes next to ``PROBE_OUT``, so a run leaves nothing in the checkout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import faust

from streams.fast_drain import FastDrainConsumer, install_consumer
from streams.fetch_limits import with_fetch_limits


def main() -> None:
    """Run until the test kills the process."""
    n = int(os.environ["PROBE_N"])
    app = faust.App(os.environ["PROBE_GROUP"], broker=f"kafka://{os.environ['PROBE_BOOTSTRAP']}",
                    store="memory://", web_enabled=False, consumer_auto_offset_reset="earliest",
                    stream_buffer_maxsize=4, topic_allow_declare=False,
                    datadir=os.path.join(os.path.dirname(os.environ["PROBE_OUT"]), "probe-data"))
    consumer_cls = FastDrainConsumer
    if os.environ.get("PROBE_FETCH_LIMITS"):
        min_bytes, max_wait_ms = (int(x) for x in os.environ["PROBE_FETCH_LIMITS"].split(","))
        consumer_cls = with_fetch_limits(consumer_cls, min_bytes, max_wait_ms)
    install_consumer(app, consumer_cls)
    topic = app.topic(os.environ["PROBE_TOPIC"], key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")
    seen: list[tuple[int, int, bytes]] = []

    @app.agent(topic, name="probe")
    async def probe(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            seen.append((msg.partition, msg.offset, msg.value))
            await asyncio.sleep(0.0005)  # slower than the fetcher: the 4-event buffer fills
            if len(seen) == n:
                with open(os.environ["PROBE_OUT"] + ".tmp", "w") as fh:
                    kafka = app.consumer._thread._consumer  # noqa: SLF001 - the aiokafka consumer in use
                    json.dump({"seen": [[p, o, v.decode()] for p, o, v in seen],
                               "blocked": app.consumer.deliveries_blocked,
                               "fetch": [kafka._fetch_min_bytes, kafka._fetch_max_wait_ms]}, fh)  # noqa: SLF001
                os.replace(os.environ["PROBE_OUT"] + ".tmp", os.environ["PROBE_OUT"])

    sys.argv = ["fast-drain-probe", "worker", "--without-web", "-l", "warn"]
    app.main()


if __name__ == "__main__":
    main()
