"""Rolling daily statistics of one metric of one enterprise, in event time.

Why daily buckets: business metrics arrive once a day, and every EWS rule is phrased over days (7-day
mean, 28- and 90-day baselines, trend). A fixed-length list of floats indexed by day number is compact
(a few hundred floats per metric), pickles small, tolerates a late or corrected value for a past day,
and makes every window a slice - no wall clock, no per-event history.
"""

from __future__ import annotations

import math

NAN = float("nan")


class DailySeries:
    """Last ``capacity`` days of one metric; missing days are NaN."""

    __slots__ = ("base_day", "capacity", "values")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.base_day: int | None = None
        self.values: list[float] = []

    @property
    def last_day(self) -> int | None:
        """The newest day held (None when empty)."""
        return None if self.base_day is None else self.base_day + len(self.values) - 1

    def put(self, day: int, value: float) -> bool:
        """Store ``value`` for ``day``; returns False if the day is older than the retained window."""
        if self.base_day is None:
            self.base_day = day
            self.values = [value]
            return True
        idx = day - self.base_day
        if idx < 0:
            if len(self.values) - idx > self.capacity:
                return False
            self.values[:0] = [NAN] * (-idx)
            self.base_day = day
            idx = 0
        if idx >= len(self.values):
            self.values.extend([NAN] * (idx - len(self.values) + 1))
        self.values[idx] = value
        overflow = len(self.values) - self.capacity
        if overflow > 0:
            del self.values[:overflow]
            self.base_day += overflow
        return True

    def get(self, day: int) -> float:
        """The value of ``day`` (NaN if missing or outside the window)."""
        if self.base_day is None:
            return NAN
        idx = day - self.base_day
        return self.values[idx] if 0 <= idx < len(self.values) else NAN

    def window(self, end_day: int, days: int) -> list[float]:
        """Present values of the ``days`` days ending at ``end_day`` (inclusive)."""
        if self.base_day is None or days <= 0:
            return []
        n = len(self.values)
        hi = min(max(end_day - self.base_day + 1, 0), n)
        lo = min(max(end_day - days + 1 - self.base_day, 0), n)
        return [v for v in self.values[lo:hi] if v == v]

    def mean(self, end_day: int, days: int, min_count: int = 1) -> float:
        """Mean over the window (NaN when fewer than ``min_count`` values are present)."""
        if self.base_day is None or days <= 0:
            return NAN
        n = len(self.values)
        hi = min(max(end_day - self.base_day + 1, 0), n)
        lo = min(max(end_day - days + 1 - self.base_day, 0), n)
        chunk = self.values[lo:hi]
        total = sum(chunk)
        if total == total:  # fast path: no missing day in the window
            return total / len(chunk) if len(chunk) >= max(min_count, 1) else NAN
        vals = [v for v in chunk if v == v]
        return sum(vals) / len(vals) if len(vals) >= max(min_count, 1) else NAN

    def count(self, end_day: int, days: int) -> int:
        """How many days of the window hold a value."""
        return len(self.window(end_day, days))

    def history_days(self, end_day: int) -> int:
        """Days from the first retained value to ``end_day`` inclusive."""
        return 0 if self.base_day is None else end_day - self.base_day + 1

    def slope(self, end_day: int, days: int) -> float:
        """Least-squares trend over the window as a fraction of the window mean per day."""
        if self.base_day is None:
            return NAN
        lo = end_day - days + 1
        pts = [(d, v) for d, v in zip(range(lo, end_day + 1), [self.get(d) for d in range(lo, end_day + 1)],
                                      strict=True) if v == v]
        if len(pts) < max(3, days // 2):
            return NAN
        n = len(pts)
        mx = sum(d for d, _ in pts) / n
        my = sum(v for _, v in pts) / n
        sxx = sum((d - mx) ** 2 for d, _ in pts)
        if sxx == 0 or my == 0:
            return NAN
        b = sum((d - mx) * (v - my) for d, v in pts) / sxx
        return b / abs(my)

    def volatility(self, end_day: int, days: int) -> float:
        """Standard deviation of day-over-day relative changes over the window (NaN if too short)."""
        changes = []
        for d in range(end_day - days + 2, end_day + 1):
            a, b = self.get(d - 1), self.get(d)
            if a == a and b == b and a != 0:
                changes.append((b - a) / abs(a))
        if len(changes) < 3:
            return NAN
        m = sum(changes) / len(changes)
        return math.sqrt(sum((c - m) ** 2 for c in changes) / (len(changes) - 1))
