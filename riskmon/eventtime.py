"""Event time: RFC 3339 parsing, formatting and the watermark.

Every decision in riskmon is taken in event time (milliseconds since the epoch, UTC) so a replay of 90
days gives the same answers at any speed. Wall-clock time is never read by the domain core.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
EPOCH_DATE = date(1970, 1, 1)


class TimeError(ValueError):
    """A timestamp that is not RFC 3339 with an offset, or is outside the accepted range."""


def parse_ts(value: object) -> int:
    """Parse an RFC 3339 timestamp (offset required) into epoch milliseconds.

    >>> parse_ts("2026-03-01T08:00:00Z")
    1772352000000
    """
    if not isinstance(value, str) or not (20 <= len(value) <= 35) or value[10:11] not in ("T", "t"):
        raise TimeError("must be an RFC 3339 timestamp like 2026-03-01T08:00:00Z")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise TimeError("must be an RFC 3339 timestamp like 2026-03-01T08:00:00Z") from None
    if dt.tzinfo is None:
        raise TimeError("must carry a UTC offset (Z or +hh:mm)")
    ms = int(dt.timestamp() * 1000)
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise TimeError("outside 2000-01-01..2100-01-01")
    return ms


def fmt_ts(ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC (``Z``), seconds precision unless ms are present.

    Why not ``strftime`` per call: every output record carries one or more of these, and a datetime plus
    ``strftime`` per record was ~2 % of a worker's CPU; the date part is cached per day and the time of day
    is plain integer arithmetic (``tests/unit/test_eventtime_format.py`` compares it with ``strftime``).

    >>> fmt_ts(1772352000000)
    '2026-03-01T08:00:00Z'
    >>> fmt_ts(1772352000042)
    '2026-03-01T08:00:00.042Z'
    """
    day, in_day = divmod(ms, MS_PER_DAY)
    sec, milli = divmod(in_day, 1000)
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    if milli:
        return f"{_day_prefix(day)}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"
    return f"{_day_prefix(day)}{h:02d}:{m:02d}:{s:02d}Z"


@lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    """``YYYY-MM-DDT`` of a day number since the epoch (a few hundred distinct days per replay)."""
    return (EPOCH_DATE + timedelta(days=day)).strftime("%Y-%m-%dT")


class Watermark:
    """Latest event time seen, less the allowed lateness; monotonic.

    Why: timers (DPD ladder steps, label resolution) must fire from the stream's own clock, also for
    accounts that send no further events, and independently of how fast a replay runs.

    >>> wm = Watermark(lateness_ms=1000)
    >>> wm.observe(5000); wm.observe(3000); wm.value
    4000
    """

    __slots__ = ("lateness_ms", "max_seen")

    def __init__(self, lateness_ms: int, max_seen: int = 0) -> None:
        self.lateness_ms = lateness_ms
        self.max_seen = max_seen

    def observe(self, ts_ms: int) -> None:
        """Advance with an event's timestamp (older timestamps never move it back)."""
        if ts_ms > self.max_seen:
            self.max_seen = ts_ms

    @property
    def value(self) -> int:
        """The watermark in epoch ms (0 before any event)."""
        return self.max_seen - self.lateness_ms if self.max_seen else 0
