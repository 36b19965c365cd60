"""Stage (e)'s decision stamps: a decision is stamped when the harness gets it, not when a wait for more
records ends (``riskmon.bench.latency._Decisions``; docs/performance.md, session 14).

A fake consumer on a fake clock: a blocking call moves the clock by its whole timeout, as a batch
``consume`` that waits for 5 000 records does when fewer arrive. The stamp must be the instant the
first record was handed over.
"""

from __future__ import annotations

import orjson
import pytest

from riskmon.bench import latency


class _Msg:
    def __init__(self, event_id: str) -> None:
        self._value = orjson.dumps({"event_id": event_id})

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value


class _Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def monotonic_ns(self) -> int:
        return self.ns


class _Consumer:
    """Hands over ``first`` at ``arrive_ns`` on the first poll (or consume) and ``rest`` with the next
    consume; every blocking wait moves the clock by its timeout. Stops the thread once everything is out."""

    def __init__(self, clock: _Clock, first: str, rest: list[str], arrive_ns: int) -> None:
        self.clock, self.first, self.rest, self.arrive_ns = clock, first, rest, arrive_ns
        self.owner: latency._Decisions | None = None
        self.closed = False

    def poll(self, timeout: float) -> _Msg | None:
        if self.first is None:
            assert self.owner is not None
            self.owner.stop.set()
            self.clock.ns += int(timeout * 1e9)
            return None
        self.clock.ns = self.arrive_ns  # a record arrives: poll returns at once
        first, self.first = self.first, None
        return _Msg(first)

    def consume(self, num_messages: int, timeout: float) -> list[_Msg]:
        if self.first is not None:  # a harness that never polls gets the first record here
            self.clock.ns = self.arrive_ns
            self.rest.insert(0, self.first)
            self.first = None
        elif not self.rest:
            assert self.owner is not None
            self.owner.stop.set()
        got, self.rest = self.rest[:num_messages], self.rest[num_messages:]
        if len(got) < num_messages:
            self.clock.ns += int(timeout * 1e9)  # librdkafka waits out the timeout for the rest
        return [_Msg(e) for e in got]

    def close(self) -> None:
        self.closed = True


def test_decisions_are_stamped_when_handed_over_not_after_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(latency.time, "monotonic_ns", clock.monotonic_ns)
    arrive = clock.ns + 5_000_000
    consumer = _Consumer(clock, "p-1", ["p-2", "p-3"], arrive)
    dec = latency._Decisions("unused:9092", "decisions", consumer=consumer)
    consumer.owner = dec
    dec.run()  # in this thread: the fake clock is not thread-safe

    assert dec.error is None and consumer.closed
    # the first decision and those already fetched with it carry the instant they were handed over; a
    # harness that waited for a fuller batch would have stamped them 20 ms (its poll window) later
    assert dec.got_ns == {"p-1": arrive, "p-2": arrive, "p-3": arrive}


def test_a_decision_seen_twice_keeps_its_first_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(latency.time, "monotonic_ns", clock.monotonic_ns)
    consumer = _Consumer(clock, "p-1", ["p-1"], clock.ns + 1_000)
    dec = latency._Decisions("unused:9092", "decisions", consumer=consumer)
    consumer.owner = dec
    dec.got_ns["p-1"] = 7  # already seen (a re-sent decision after a worker restart)
    dec.run()
    assert dec.got_ns == {"p-1": 7}
