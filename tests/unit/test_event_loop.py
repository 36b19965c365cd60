"""``RISKMON_EVENT_LOOP``: workers run on uvloop unless told to use the standard library's loop."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from riskmon.config import Settings
from streams.app import use_event_loop


def test_uvloop_is_the_default_and_installs_its_policy() -> None:
    assert Settings().event_loop == "uvloop"
    before = asyncio.get_event_loop_policy()
    try:
        use_event_loop("uvloop")
        loop = asyncio.new_event_loop()
        assert isinstance(loop, uvloop.Loop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(before)


def test_asyncio_keeps_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKMON_EVENT_LOOP", "asyncio")
    assert Settings().event_loop == "asyncio"
    use_event_loop("asyncio")
    loop = asyncio.new_event_loop()
    assert not isinstance(loop, uvloop.Loop)
    loop.close()


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKMON_EVENT_LOOP", "gevent")
    with pytest.raises(ValidationError):
        Settings()
