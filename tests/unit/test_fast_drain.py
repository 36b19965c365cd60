"""``streams.fast_drain``: deliveries that never block run inline; the others behave as in Faust."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from pathlib import Path
from typing import Any

import faust.transport.consumer
import pytest

from riskmon.config import Settings
from streams.app import create_app
from streams.fast_drain import FAUST_DRAIN_SOURCE_SHA256, FastDrainConsumer, FastDrainTransport, deliver


def test_faust_loop_is_the_one_this_copies() -> None:
    """A Faust upgrade that changes ``_drain_messages`` must be reviewed against the copy."""
    source = inspect.getsource(faust.transport.consumer.Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == FAUST_DRAIN_SOURCE_SHA256


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_delivery_that_never_suspends_runs_inline_without_tasks() -> None:
    calls: list[str] = []
    slow: list[Any] = []

    async def delivery() -> None:
        calls.append("ran")

    async def wait_slow(awaitable: Any) -> None:  # pragma: no cover - must not be reached
        slow.append(awaitable)

    async def main() -> int:
        before = len(asyncio.all_tasks())
        for _ in range(100):
            await deliver(delivery(), wait_slow)
        return len(asyncio.all_tasks()) - before

    assert _run(main()) == 0
    assert calls == ["ran"] * 100
    assert slow == []


def test_a_delivery_that_suspends_finishes_through_the_slow_path_with_every_value() -> None:
    """The coroutine resumes with what it awaited, in the task the slow path runs it in."""
    seen: list[Any] = []

    async def delivery(fut: asyncio.Future[int]) -> str:
        seen.append("before")
        value = await fut  # suspends: the future is not done yet
        seen.append(value)
        await asyncio.sleep(0)  # a bare yield after the first suspension
        seen.append("after")
        return "done"

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        loop.call_later(0.01, fut.set_result, 42)
        results: list[Any] = []

        async def wait_slow(awaitable: Any) -> None:
            results.append(await asyncio.ensure_future(awaitable))  # in a task, as wait_first does

        await deliver(delivery(fut), wait_slow)
        return results

    assert _run(main()) == ["done"]
    assert seen == ["before", 42, "after"]


def test_errors_after_a_suspension_propagate() -> None:
    async def delivery(fut: asyncio.Future[int]) -> None:
        await fut
        raise ValueError("decode failed")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        loop.call_soon(fut.set_result, 1)

        async def wait_slow(awaitable: Any) -> None:
            await asyncio.ensure_future(awaitable)

        await deliver(delivery(fut), wait_slow)

    with pytest.raises(ValueError, match="decode failed"):
        _run(main())


def test_errors_before_any_suspension_propagate() -> None:
    async def delivery() -> None:
        raise KeyError("bad")

    async def wait_slow(awaitable: Any) -> None:  # pragma: no cover - must not be reached
        await awaitable

    with pytest.raises(KeyError):
        _run(deliver(delivery(), wait_slow))


def test_cancelling_the_slow_path_cancels_the_delivery_at_its_await() -> None:
    """``wait_first`` cancels a delivery when flow is suspended first: it must see CancelledError."""
    state: list[str] = []

    async def delivery(fut: asyncio.Future[int]) -> None:
        try:
            await fut
        except asyncio.CancelledError:
            state.append("cancelled inside")
            raise

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()

        async def wait_slow(awaitable: Any) -> None:
            task = asyncio.ensure_future(awaitable)
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        await deliver(delivery(fut), wait_slow)

    _run(main())
    assert state == ["cancelled inside"]


def test_create_app_uses_the_fast_drain_transport_unless_turned_off(tmp_path: Path) -> None:
    app = create_app(Settings(var_dir=tmp_path))
    assert isinstance(app.transport, FastDrainTransport)
    assert app.transport.Consumer is FastDrainConsumer
    plain = create_app(Settings(var_dir=tmp_path, fast_drain=False))
    assert not isinstance(plain.transport, FastDrainTransport)
