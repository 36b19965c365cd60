"""Topic declarations. Values are raw bytes: the contract is validated by ``riskmon.contract``.

Why raw and not ``faust.Record`` models: Faust's model decoding raises on a malformed payload before the
agent sees it, so the reason could not be named and the message could not be dead-lettered with its
offset. We decode at the edge ourselves and never crash on bad input.
"""

from __future__ import annotations

import faust

from riskmon import contract
from riskmon import outputs as out

USER_TOPICS = (contract.TOPIC_ACCOUNTS, contract.TOPIC_PURCHASES, contract.TOPIC_REPAYMENTS)


def _raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=app.conf.topic_partitions)


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
