"""Per-destination token bucket: at most ``burst`` requests at once, ``rate_per_s`` sustained.

Why: PagerDuty and Slack throttle (HTTP 429) and a burst of pages during a replay or an incident
must not get riskmon's integration key blocked. Retries consume tokens too, so a failing receiver is
not hammered. The clock and sleep are injectable so the bound is unit-tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """A token bucket; :meth:`acquire` waits until a token is available and takes it."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate = float(rate_per_s)
        self.capacity = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_acquire(self) -> bool:
        """Take a token if one is available now."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a token (FIFO among waiters of this bucket)."""
        async with self._lock:
            while not self.try_acquire():
                await self._sleep((1.0 - self._tokens) / self.rate)
