"""How input records become stream events: riskmon's raw-bytes schema and Faust's compiled fast paths."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP, Message

from riskmon.config import Settings
from streams.app import create_app
from streams.topics import RawBytesSchema, input_topic, user_topics


def _message(key: bytes | None, value: bytes | None, headers: Any) -> Message:
    return Message(topic="purchases", partition=3, offset=41, timestamp=1.7e9, timestamp_type=0,
                   headers=headers, key=key, value=value, checksum=None, tp=TP("purchases", 3))


@pytest.fixture()
def app(tmp_path: Any) -> faust.App:
    return create_app(Settings(var_dir=tmp_path, broker_url="kafka://127.0.0.1:1"))


@pytest.mark.parametrize(("key", "value", "headers"), [
    (b"u1", b'{"event_id": "p1"}', [("trace", b"x")]),
    (None, b"\xff not json", []),
    (b"u2", None, None),
    (b"", b"", [("a", b"1"), ("a", b"2")]),
])
def test_decodes_to_the_event_faust_builds(app: faust.App, key: Any, value: Any, headers: Any) -> None:
    """Key, value, headers and message of the event are exactly what Faust's own raw schema gives."""
    plain = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                         allow_empty=True)
    message = _message(key, value, headers)

    async def both() -> tuple[Any, Any]:
        ours = await RawBytesSchema().compile(app)(message, propagate=True)
        theirs = await plain.compile(app)(message, propagate=True)
        return ours, theirs

    ours, theirs = asyncio.run(both())
    assert type(ours) is type(theirs) is app.conf.Event
    assert (ours.key, ours.value) == (theirs.key, theirs.value) == (key, value)
    assert ours.headers == theirs.headers  # the Event turns header pairs into a dict, in both
    assert ours.message is theirs.message is message
    assert ours.app is app


def test_every_input_topic_uses_it(app: faust.App) -> None:
    """The agents' topics (and the per-agent clones Faust derives from them) decode through it."""
    topics = [user_topics(app), input_topic(app, "business-metrics")]
    for topic in topics:
        assert isinstance(topic.schema, RawBytesSchema)
        assert isinstance(topic.derive(topics=topic.topics).schema, RawBytesSchema)
        assert (topic.key_type, topic.value_type) == (bytes, bytes)


def test_faust_compiled_fast_paths_are_on_and_compiled(tmp_path: Any) -> None:
    """``RISKMON_FAUST_FAST_PATHS`` sets Faust's opt-in; it only acts when Faust's extension is built."""
    import faust.streams
    from faust.utils.optin import cython_optimizations_enabled

    assert faust.streams._CStreamIterator is not None  # the compiled iterator the setting switches
    on = create_app(Settings(var_dir=tmp_path, broker_url="kafka://127.0.0.1:1"))
    off = create_app(Settings(var_dir=tmp_path, broker_url="kafka://127.0.0.1:1", faust_fast_paths=False))
    assert cython_optimizations_enabled(on.conf) is True
    assert cython_optimizations_enabled(off.conf) is False
