"""Simulated event time: fast RFC 3339 formatting and realistic times of day.

Why a cache: formatting a datetime per event dominates a naive generator. The date part changes once
per simulated day, so it is formatted once per day and the clock time is built with integer
arithmetic. The output is identical to :func:`riskmon.eventtime.fmt_ts` (a unit test checks this).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from itertools import accumulate

from riskmon.eventtime import MS_PER_DAY, MS_PER_HOUR, fmt_ts

LOCAL_OFFSET_MS = 8 * MS_PER_HOUR  # customers live in UTC+8; times of day are drawn in local time


_HOUR_MINUTES = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(24 * 60))  # "HH:MM:" by minute of day
_SECONDS = tuple(f"{s:02d}Z" for s in range(60))


class TsFormatter:
    """RFC 3339 UTC formatting of epoch ms with a per-day cache of the date prefix.

    The clock time of a whole second is joined from two precomputed tables (minute of day, second),
    so the common case does no integer formatting at all.
    """

    __slots__ = ("_days",)

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        day, rem = divmod(ms, MS_PER_DAY)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = fmt_ts(day * MS_PER_DAY)[:11]
            self._days[day] = prefix
        secs, milli = divmod(rem, 1000)
        if not milli:
            return prefix + _HOUR_MINUTES[secs // 60] + _SECONDS[secs % 60]
        h, secs = divmod(secs, 3600)
        m, s = divmod(secs, 60)
        return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


# Relative purchase intensity per local hour (00..23): quiet nights, lunch and evening peaks.
_DAY_HOURS = (0, 0, 0, 0, 0, 0, 2, 4, 6, 7, 8, 8, 10, 9, 7, 7, 7, 8, 9, 11, 12, 11, 8, 4)
_NIGHT_HOURS = (6, 5, 4, 3, 2, 2)  # shape of the 00..05 share


class HourOfDay:
    """Draws a local time of day with a given share of night-time (00:00-05:59) events.

    Why per segment: night-time spending is a known risk signal (and a feature of the pipeline), so
    riskier segments carry a larger night share.
    """

    __slots__ = ("_cum", "_total")

    def __init__(self, night_share: float) -> None:
        day_total = sum(_DAY_HOURS)
        night_total = sum(_NIGHT_HOURS)
        weights = [float(w) for w in _DAY_HOURS]
        for h, w in enumerate(_NIGHT_HOURS):
            weights[h] = day_total * night_share / (1.0 - night_share) * w / night_total
        self._cum = list(accumulate(weights))
        self._total = self._cum[-1]

    def offset_ms(self, rng: random.Random) -> int:
        """Milliseconds after UTC midnight of a local time of day (whole seconds)."""
        hour = bisect_right(self._cum, rng.random() * self._total)
        local_s = min(hour, 23) * 3600 + int(rng.random() * 3600)
        return ((local_s * 1000) - LOCAL_OFFSET_MS) % MS_PER_DAY


def local_hour(ms: int) -> int:
    """The UTC+8 hour of day of an instant."""
    return ((ms + LOCAL_OFFSET_MS) % MS_PER_DAY) // MS_PER_HOUR
