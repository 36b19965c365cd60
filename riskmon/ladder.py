"""The collection ladder in event time, with contact caps and quiet hours.

DPD of an account = whole days since the due instant of its oldest unpaid installment. Each ladder step
fires once per delinquency episode at ``due + offset_days`` of the oldest unpaid installment, when the
stream watermark passes that instant, so steps fire also for accounts that send nothing further.
Customer-facing steps respect a weekly contact cap and quiet hours: they are deferred, never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from riskmon.eventtime import MS_PER_DAY
from riskmon.policy import Policy

WEEK_MS = 7 * MS_PER_DAY


def dpd_at(oldest_due: int | None, now: int) -> int:
    """Whole days past due at ``now`` (0 when nothing is overdue)."""
    if oldest_due is None or now < oldest_due:
        return 0
    return (now - oldest_due) // MS_PER_DAY


class ContactWindow:
    """Quiet hours and the weekly cap for customer-facing contacts."""

    def __init__(self, policy: Policy) -> None:
        self.tz = ZoneInfo(policy.ladder_tz)
        self.quiet_start = policy.quiet_start_min
        self.quiet_end = policy.quiet_end_min
        self.cap = policy.contact_cap_per_week

    def _after_quiet(self, ts: int) -> int:
        local = datetime.fromtimestamp(ts / 1000, tz=UTC).astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        start, end = self.quiet_start, self.quiet_end
        in_quiet = (minute >= start or minute < end) if start > end else (start <= minute < end)
        if not in_quiet:
            return ts
        day = local.date() if minute < end or start < end else local.date() + timedelta(days=1)
        resume = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=self.tz)
        return int(resume.timestamp() * 1000)

    def earliest(self, ts: int, contacts: list[int]) -> int:
        """Earliest instant >= ts outside quiet hours with fewer than ``cap`` contacts in the past week.

        >>> from riskmon.config import Settings
        >>> from riskmon.policy import load_policy
        >>> cw = ContactWindow(load_policy(Settings().policy_path))
        >>> from riskmon.eventtime import parse_ts, fmt_ts
        >>> fmt_ts(cw.earliest(parse_ts("2026-03-01T14:30:00Z"), []))  # 22:30 in Shanghai -> 08:00
        '2026-03-02T00:00:00Z'
        """
        t = ts
        for _ in range(64):
            t = self._after_quiet(t)
            recent = sorted(c for c in contacts if t - WEEK_MS < c <= t)
            if len(recent) < self.cap:
                return t
            t = recent[len(recent) - self.cap] + WEEK_MS
        return t
