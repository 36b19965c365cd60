"""What a simulated run looks like: size, time window, segment mix and fault rates.

Why a frozen dataclass: the whole run is a pure function of this object (plus the policy's default
limit), so two runs with equal configs give byte-identical files, which is what replay tests rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from riskmon.eventtime import MS_PER_DAY

SEGMENTS = ("prime", "near_prime", "subprime", "cure_after_late", "bust_out")

DEFAULT_SEGMENT_MIX: dict[str, float] = {
    "prime": 0.45,
    "near_prime": 0.30,
    "subprime": 0.15,
    "cure_after_late": 0.06,
    "bust_out": 0.04,
}


class SimConfigError(ValueError):
    """A simulator setting that cannot produce a run (bad segment name, negative rate, ...)."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Parameters of one simulated run.

    ``start`` is a date (``YYYY-MM-DD``); the window is ``[start 00:00Z, start + days)``. Rates are per
    valid event: ``bad_rate`` adds that many extra rejected messages, ``dup_rate`` re-sends that share
    of valid messages, ``late_rate`` emits that share of valid messages minutes to hours late.
    """

    days: int = 120
    users: int = 2000
    enterprises: int = 100
    seed: int = 7
    start: str = "2026-03-01"
    bad_rate: float = 0.01
    dup_rate: float = 0.01
    late_rate: float = 0.01
    segment_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SEGMENT_MIX))
    user_prefix: str = "u"
    installments_truth: bool = True

    def __post_init__(self) -> None:
        if self.days < 1 or self.users < 0 or self.enterprises < 0:
            raise SimConfigError("days must be >= 1, users and enterprises >= 0")
        for name in ("bad_rate", "dup_rate", "late_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 0.5:
                raise SimConfigError(f"{name} must be within 0..0.5, got {v}")
        unknown = set(self.segment_mix) - set(SEGMENTS)
        if unknown:
            raise SimConfigError(f"unknown segment(s) {sorted(unknown)}; known: {', '.join(SEGMENTS)}")
        if any(v < 0 for v in self.segment_mix.values()) or sum(self.segment_mix.values()) <= 0:
            raise SimConfigError("segment proportions must be >= 0 and not all zero")
        start_ms(self.start)  # validates the date

    @property
    def start_ms(self) -> int:
        """Epoch ms of the window start (00:00 UTC of ``start``)."""
        return start_ms(self.start)

    @property
    def end_ms(self) -> int:
        """Epoch ms of the window end (exclusive)."""
        return self.start_ms + self.days * MS_PER_DAY


def start_ms(day: str) -> int:
    """Epoch ms of 00:00 UTC on an ISO date."""
    try:
        d = date.fromisoformat(day)
    except (TypeError, ValueError):
        raise SimConfigError(f"start must be a date like 2026-03-01, got {day!r}") from None
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def parse_segment_mix(text: str) -> dict[str, float]:
    """Parse ``prime=0.5,subprime=0.5`` (segments left out get 0).

    >>> parse_segment_mix("prime=3,bust_out=1")["bust_out"]
    1.0
    """
    mix = dict.fromkeys(SEGMENTS, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in mix:
            raise SimConfigError(f"unknown segment {name.strip()!r}; known: {', '.join(SEGMENTS)}")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise SimConfigError(f"segment {name.strip()!r}: {value!r} is not a number") from None
    return mix
