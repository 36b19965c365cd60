"""Covenant rules: plain threshold tests of one metric's current window against its own baseline.

Why rules next to the detectors: covenants are what a relationship manager can read in a loan agreement
("revenue down 30%", "less than a month of cash"), so they carry the evidence a credit officer acts on.
Each rule returns a :class:`Check` (active or not, with evidence) or ``None`` when there is not yet
enough history to judge - never a guess.

The current window is the last ``current_days`` days; baselines end the day before it, so a drop never
dilutes its own baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riskmon.ews.series import DailySeries
from riskmon.ews.thresholds import EwsPolicy


@dataclass(slots=True)
class Check:
    """Outcome of one covenant on one day."""

    active: bool
    evidence: dict[str, Any]


def _pct(current: float, baseline: float) -> float:
    return round((current / baseline - 1.0) * 100.0, 2) if baseline else 0.0


def _ratio_rule(series: DailySeries, day: int, pol: EwsPolicy, metric: str, baseline_days: int,
                ratio: float, below: bool, detector: str) -> Check | None:
    cur_n = pol.current_days
    if series.history_days(day) < max(pol.warmup_days, cur_n + 14):
        return None
    current = series.mean(day, cur_n, min_count=max(cur_n // 2, 1))
    baseline = series.mean(day - cur_n, baseline_days, min_count=14)
    if current != current or baseline != baseline or baseline <= 0:
        return None
    active = current < ratio * baseline if below else current > ratio * baseline
    return Check(active, {
        "metric": metric,
        "baseline": round(baseline, 4),
        "current": round(current, 4),
        "change_pct": _pct(current, baseline),
        "threshold_ratio": ratio,
        "baseline_days": baseline_days,
        "current_days": cur_n,
        "detector": detector,
    })


def revenue_drop(flat: DailySeries, day: int, pol: EwsPolicy) -> Check | None:
    """Deseasonalised revenue: 7-day mean below ``revenue_drop_ratio`` of the 28-day baseline."""
    return _ratio_rule(flat, day, pol, "revenue", pol.short_baseline_days, pol.revenue_drop_ratio, True,
                       "covenant:revenue_7d_vs_28d")


def order_drop(flat: DailySeries, day: int, pol: EwsPolicy) -> Check | None:
    """Deseasonalised order count: 7-day mean below ``order_drop_ratio`` of the 90-day baseline."""
    return _ratio_rule(flat, day, pol, "order_count", pol.baseline_days, pol.order_drop_ratio, True,
                       "covenant:orders_7d_vs_90d")


def payroll_drop(raw: DailySeries, day: int, pol: EwsPolicy) -> Check | None:
    """Payroll: 7-day mean below ``payroll_drop_ratio`` of the 90-day baseline."""
    return _ratio_rule(raw, day, pol, "payroll", pol.baseline_days, pol.payroll_drop_ratio, True,
                       "covenant:payroll_7d_vs_90d")


def receivables_stretch(raw: DailySeries, day: int, pol: EwsPolicy) -> Check | None:
    """Receivables days: 7-day mean above ``receivables_stretch_ratio`` of the 90-day baseline."""
    return _ratio_rule(raw, day, pol, "receivables_days", pol.baseline_days, pol.receivables_stretch_ratio,
                       False, "covenant:receivables_7d_vs_90d")


def cash_runway(cash: DailySeries, day: int, pol: EwsPolicy) -> Check | None:
    """Runway = cash / average daily net outflow over ``runway_outflow_days``; active below the limit.

    Cash is a stock, so the net outflow is read from its own decline: 3-day means at both ends smooth
    out a single noisy reading. A growing or flat balance has an infinite runway.
    """
    span = pol.runway_outflow_days
    if cash.history_days(day) < max(pol.warmup_days, span + 3):
        return None
    now = cash.mean(day, 3, min_count=2)
    then = cash.mean(day - span, 3, min_count=2)
    if now != now or then != then:
        return None
    outflow = (then - now) / span
    if now <= 0:
        runway = 0.0
    elif outflow <= 0:
        runway = float("inf")
    else:
        runway = now / outflow
    active = runway < pol.cash_runway_days
    return Check(active, {
        "metric": "cash_balance",
        "baseline": round(then, 2),
        "current": round(now, 2),
        "change_pct": _pct(now, then) if then > 0 else 0.0,
        "runway_days": None if runway == float("inf") else round(runway, 1),
        "daily_net_outflow": round(max(outflow, 0.0), 2),
        "threshold_days": pol.cash_runway_days,
        "detector": "covenant:cash_runway",
    })
