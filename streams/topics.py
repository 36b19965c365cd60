"""Topic declarations. Values are raw bytes: the contract is validated by ``riskmon.contract``.

Why raw and not ``faust.Record`` models: Faust's model decoding raises on a malformed payload before the
agent sees it, so the reason could not be named and the message could not be dead-lettered with its
offset. We decode at the edge ourselves and never crash on bad input.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import AppT, Message

from riskmon import contract
from riskmon import outputs as out

USER_TOPICS = (contract.TOPIC_ACCOUNTS, contract.TOPIC_PURCHASES, contract.TOPIC_REPAYMENTS)


class RawBytesSchema(faust.Schema):
    """Keys and values handed to the stream as the bytes Kafka delivered, without the serializer registry.

    Why: with ``bytes`` types and the ``raw`` codec, Faust's own decode already returns the record's
    bytes unchanged, but gets there through ``Schema.loads_key``/``loads_value``, the registry, codec
    lookups and ``app.conf.Event`` on the settings object: about a tenth of Faust's per-message cost
    in a decode-only consumer (30 -> 27 µs; docs/performance.md, session 7). This decode builds the same
    ``Event`` (same key, value, headers and message) directly. Nothing here can fail, so the decode
    error callbacks never run; riskmon validates payloads itself (``riskmon.contract``).
    """

    def __init__(self) -> None:
        super().__init__(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def compile(self, app: AppT, *, on_key_decode_error: Any = None, on_value_decode_error: Any = None,
                default_propagate: bool = False) -> Any:
        """The decode function Faust's conductor calls once per message (see the class docstring)."""
        event_cls = app.conf.Event

        async def decode(message: Message, *, propagate: bool = default_propagate) -> Any:
            return event_cls(app, message.key, message.value, message.headers, message)

        return decode


def _raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, schema=RawBytesSchema(), partitions=app.conf.topic_partitions)


def input_topic(app: faust.App, name: str, prefix: str = "") -> faust.TopicT:
    """An input topic with raw keys and values, partitioned like every other subject-keyed topic."""
    return _raw_topic(app, prefix + name)


def user_topics(app: faust.App, prefix: str = "") -> faust.TopicT:
    """``accounts``, ``purchases`` and ``repayments`` as one topic object (one agent reads all three)."""
    return _raw_topic(app, *(prefix + t for t in USER_TOPICS))


def all_topic_names(prefix: str = "") -> list[str]:
    """Every topic riskmon reads or writes (created up front with the same partition count)."""
    return [prefix + t for t in (*contract.INPUT_TOPICS, *out.OUTPUT_TOPICS)]


def unprefixed(topic: str, prefix: str) -> str:
    """The contract name of a (possibly prefixed) topic."""
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic
