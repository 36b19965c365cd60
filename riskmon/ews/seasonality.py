"""Learned weekly and monthly profile of a flow metric, to deseasonalise it.

Why: a retailer that sells 30% more on weekends and at month end is not in trouble on a Tuesday in mid
month. Every rule and detector sees ``value / factor(day)``, where ``factor`` is the product of a
weekday factor and a month-phase factor, each an exponentially weighted mean of ``value / level``
(``level`` = trailing 28-day mean, which spans whole weeks). The factors are renormalised to mean 1 so
a genuine decline of the level is never absorbed into the profile.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def weekday_of(day: int) -> int:
    """Monday=0 .. Sunday=6 of an epoch day number (day 0 = 1970-01-01, a Thursday)."""
    return (day + 3) % 7


def month_phase_of(day: int, phases: int) -> int:
    """Which of ``phases`` equal parts of its calendar month the epoch day falls in."""
    d = date.fromordinal(_EPOCH_ORDINAL + day)
    dim = monthrange(d.year, d.month)[1]
    return (d.day - 1) * phases // dim


class SeasonalProfile:
    """Multiplicative weekday x month-phase profile learned online."""

    __slots__ = ("alpha", "phase", "phase_n", "phases", "weekday", "weekday_n")

    def __init__(self, phases: int, alpha: float) -> None:
        self.alpha = alpha
        self.phases = phases
        self.weekday = [1.0] * 7
        self.weekday_n = [0] * 7
        self.phase = [1.0] * phases
        self.phase_n = [0] * phases

    def factor(self, day: int) -> float:
        """Expected value / level on ``day`` (1.0 until learned)."""
        return self.weekday[weekday_of(day)] * self.phase[month_phase_of(day, self.phases)]

    def deseasonalise(self, day: int, value: float) -> float:
        """The value with the learned weekly and monthly cycle removed."""
        f = self.factor(day)
        return value / f if f > 0 else value

    def learn(self, day: int, value: float, level: float) -> None:
        """Update the profile with one day's value and the current trailing level."""
        if not level > 0 or value < 0:
            return
        ratio = value / level
        wd, ph = weekday_of(day), month_phase_of(day, self.phases)
        self.weekday_n[wd] += 1
        a = max(self.alpha, 1.0 / self.weekday_n[wd])
        self.weekday[wd] += a * (ratio / self.phase[ph] - self.weekday[wd])
        self.phase_n[ph] += 1
        a = max(self.alpha, 1.0 / self.phase_n[ph])
        self.phase[ph] += a * (ratio / self.weekday[wd] - self.phase[ph])
        self._normalise(self.weekday, self.weekday_n)
        self._normalise(self.phase, self.phase_n)

    @staticmethod
    def _normalise(factors: list[float], counts: list[int]) -> None:
        learned = [f for f, n in zip(factors, counts, strict=True) if n]
        mean = sum(learned) / len(learned) if learned else 1.0
        if mean > 0:
            for i, n in enumerate(counts):
                if n:
                    factors[i] /= mean
