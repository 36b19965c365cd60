"""``fmt_ts`` (integer arithmetic + a per-day cached date) writes exactly what ``strftime`` would."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from riskmon.eventtime import MAX_TS_MS, MIN_TS_MS, fmt_ts, parse_ts


def _strftime(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if ms % 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_same_text_as_strftime_over_the_accepted_range() -> None:
    rng = random.Random(7)
    cases = [MIN_TS_MS, MAX_TS_MS - 1, 951_782_400_000, 951_868_799_999]  # range ends, 2000-02-29
    cases += [rng.randrange(MIN_TS_MS, MAX_TS_MS) for _ in range(20_000)]
    cases += [c - c % 1000 for c in cases[:5_000]]  # whole seconds: no fraction written
    for ms in cases:
        assert fmt_ts(ms) == _strftime(ms), ms


def test_round_trips_through_parse_ts() -> None:
    for ms in (1_772_352_000_000, 1_772_352_000_042, 4_000_000_000_999):
        assert parse_ts(fmt_ts(ms)) == ms
