"""Industry peer medians of the revenue trend.

Why: when a whole industry slows (a holiday month in hospitality, a commodity slump in agriculture) a
firm that moves with its peers is less alarming than one that falls alone. Each enterprise publishes its
latest ``revenue 7-day mean / 28-day baseline`` ratio; the median of its industry is attached to the
evidence of revenue and order alerts and lowers the health score of firms far below their peers.
"""

from __future__ import annotations

from statistics import median


class PeerBoard:
    """Latest revenue ratio per enterprise, grouped by industry, in event-time days."""

    __slots__ = ("_cache", "dirty", "entries", "stale_days")

    def __init__(self, stale_days: int) -> None:
        self.stale_days = stale_days
        self.entries: dict[str, dict[str, tuple[int, float]]] = {}
        self.dirty: dict[str, dict[str, tuple[int, float]]] = {}
        self._cache: dict[str, tuple[int, float | None]] = {}

    def load(self, industry: str, raw: dict[str, tuple[int, float]]) -> None:
        """Install entries read from the store (does not mark them dirty)."""
        self.entries.setdefault(industry, {}).update(raw)

    def publish(self, industry: str, enterprise_id: str, day: int, ratio: float) -> None:
        """Record an enterprise's latest ratio (marked dirty so the store writes it back)."""
        if ratio != ratio:
            return
        self.entries.setdefault(industry, {})[enterprise_id] = (day, ratio)
        self.dirty.setdefault(industry, {})[enterprise_id] = (day, ratio)

    def median(self, industry: str, day: int) -> float | None:
        """Median ratio of the industry's fresh entries (None with fewer than 3 peers).

        Cached per industry and day: an industry may hold thousands of firms and the median is asked
        for on every event; one day's staleness is irrelevant for a 7-day ratio.
        """
        hit = self._cache.get(industry)
        if hit is not None and hit[0] == day:
            return hit[1]
        vals = [r for d, r in self.entries.get(industry, {}).values() if day - d <= self.stale_days]
        med = median(vals) if len(vals) >= 3 else None
        self._cache[industry] = (day, med)
        return med

    @staticmethod
    def encode(entry: tuple[int, float]) -> str:
        """Wire form of one entry (``day:ratio``) for a Redis hash field value."""
        return f"{entry[0]}:{entry[1]:.5f}"

    @staticmethod
    def decode(raw: str | bytes) -> tuple[int, float] | None:
        """Parse :meth:`encode` output; None when malformed."""
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            day, ratio = text.split(":")
            return int(day), float(ratio)
        except (ValueError, UnicodeDecodeError):
            return None
