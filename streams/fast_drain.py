"""Faust's fetch-and-deliver loop without four asyncio tasks per message.

Why this exists: Faust 0.15's ``Consumer._drain_messages`` hands every Kafka record to the topic
conductor through ``Service.wait_first(callback(message), suspend_flow.wait())``. ``wait_first`` wraps
each argument, plus the service's ``stopped`` and ``crashed`` events, in a task and runs
``asyncio.wait`` on them: four tasks created, scheduled and cancelled per message, so that a delivery
blocked on a full stream buffer can be abandoned when the consumer suspends flow for a rebalance.

Almost every delivery never blocks: the conductor decodes the record and puts the event on a stream
queue that has room. So this loop first runs the delivery coroutine up to its first suspension, in
the fetcher's own task. If it finishes there (the common case), nothing else is needed; if it
suspends (a full buffer, flow control, a producer buffer above its high-water mark), the rest of the
same coroutine goes through ``wait_first`` exactly as Faust does it. The outcome per message is the
same as Faust's; the cost is not: Faust's decode-only batched consumer measured 63 -> 27 µs of CPU per
message side by side (docs/performance.md, session 6).

Everything else in the loop is Faust's code as of faust-streaming 0.15.3 (``pyproject.toml`` pins
``<0.16``); ``tests/unit/test_fast_drain.py`` fails when the installed Faust's loop differs from the
one this copies, so an upgrade gets reviewed instead of silently diverging. ``RISKMON_FAST_DRAIN=0``
turns it off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

#: sha256 of ``inspect.getsource(faust.transport.consumer.Consumer._drain_messages)`` this module
#: copies (faust-streaming 0.15.3). Checked by the unit tests.
FAUST_DRAIN_SOURCE_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


class _Resume:
    """Await the rest of a coroutine that was already run up to its first suspension point.

    ``yielded`` is what the coroutine's first ``send(None)`` produced (the future it waits on, or
    ``None`` for a bare yield); every later send, throw (cancellation included) and the final return
    value pass straight through, so a task running this behaves as if it had run the coroutine from
    its start.
    """

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # noqa: BLE001 - everything is forwarded to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """A coroutine (so ``wait_first`` can wrap it in a task) that completes ``coro`` from ``yielded``."""
    return await _Resume(coro, yielded)


async def deliver(coro: Coroutine[Any, Any, Any], wait_slow: Any) -> None:
    """Run one delivery coroutine: inline when it never suspends, else through ``wait_slow``.

    ``wait_slow(awaitable)`` is what waits for a delivery that did suspend (in the consumer:
    ``wait_first`` against ``suspend_flow``).
    """
    try:
        yielded = coro.send(None)
    except StopIteration:
        return
    await wait_slow(finish(coro, yielded))


class FastDrainConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :func:`deliver` in place of a ``wait_first`` per message.

    ``deliveries_blocked`` counts the deliveries that suspended and went through ``wait_first``
    (the integration test checks that path runs and loses nothing).
    """

    deliveries_blocked = 0

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs in every worker
        # Faust 0.15.3's loop (faust/transport/consumer.py), the delivery line excepted.
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        def wait_slow(delivery: Any) -> Any:
            self.deliveries_blocked += 1
            return self.wait_first(delivery, self.suspend_flow.wait())

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = cast(AsyncIterator, getmany(timeout=1.0))

                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await deliver(callback(message), wait_slow)
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                    unset_flag(flag_consumer_fetching)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)


class FastDrainTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose consumers are :class:`FastDrainConsumer`."""

    Consumer = FastDrainConsumer


def install_consumer(app: faust.App, consumer_cls: type[faust_aiokafka.Consumer]) -> None:
    """Give ``app`` an aiokafka transport whose consumers are ``consumer_cls``; call before anything
    touches ``app.transport``."""
    if app._transport is not None:  # noqa: SLF001 - Faust has no public "transport built yet" check
        raise RuntimeError("the consumer class must be installed before the app's transport is created")
    if consumer_cls is FastDrainConsumer:
        transport_cls: type[faust_aiokafka.Transport] = FastDrainTransport
    else:
        transport_cls = type(f"{consumer_cls.__name__}Transport", (faust_aiokafka.Transport,), {"Consumer": consumer_cls})
    app.transport = transport_cls(app.conf.broker_consumer, app)


__all__ = ["FastDrainConsumer", "FastDrainTransport", "deliver", "finish", "install_consumer"]
