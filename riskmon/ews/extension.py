"""Temporary liquidity stress vs structural decline: when to recommend a payment-term extension.

Why this distinction matters: a firm whose customers pay late this month still sells as much as ever;
an extension bridges the gap and keeps a good borrower. A firm whose revenue is eroding will not be
saved by time - an extension only grows the exposure. So the recommendation requires cash stress AND a
stable business: deseasonalised revenue and orders near their baseline, payroll not cut, and no
structural signal (revenue/order/payroll covenant or drift) in the look-back period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riskmon.ews.series import DailySeries
from riskmon.ews.thresholds import EwsPolicy


@dataclass(slots=True)
class Assessment:
    """Outcome of the liquidity-stress test on one day."""

    recommend: bool
    suggested_days: int
    reasoning: str
    evidence: dict[str, Any]


def _ratio(series: DailySeries, end: int, days: int, base_end: int, base_days: int) -> float:
    cur = series.mean(end, days, min_count=max(days // 2, 1))
    base = series.mean(base_end, base_days, min_count=14)
    return cur / base if cur == cur and base == base and base > 0 else float("nan")


def suggested_days(runway_days: float | None) -> int:
    """Extension length: shorter runway, longer bridge (30/60/90 days)."""
    if runway_days is None or runway_days >= 20:
        return 30
    return 60 if runway_days >= 10 else 90


def assess(day: int, pol: EwsPolicy, revenue: DailySeries, orders: DailySeries, payroll: DailySeries,
           cash: DailySeries, runway_days: float | None, runway_open: bool,
           last_structural_day: int | None) -> Assessment | None:
    """Assess liquidity stress on ``day``; None when there is not enough history or no cash stress."""
    if cash.history_days(day) < pol.warmup_days + pol.current_days:
        return None
    cur = pol.current_days
    cash_ratio = _ratio(cash, day, cur, day - cur, pol.baseline_days)
    stressed = runway_open or (cash_ratio == cash_ratio and cash_ratio < pol.extension_cash_ratio)
    if not stressed:
        return None
    long_n = pol.short_baseline_days
    rev28 = _ratio(revenue, day, long_n, day - long_n, pol.baseline_days)
    rev7 = _ratio(revenue, day, cur, day - long_n, pol.baseline_days)
    ord28 = _ratio(orders, day, long_n, day - long_n, pol.baseline_days)
    pay7 = _ratio(payroll, day, cur, day - cur, pol.baseline_days)
    structural_recent = (last_structural_day is not None
                         and day - last_structural_day <= pol.extension_structural_lookback_days)
    checks = {
        "revenue_stable": rev28 >= pol.extension_revenue_ratio and rev7 >= pol.extension_revenue_week_ratio,
        "orders_stable": ord28 >= pol.extension_orders_ratio,
        "payroll_kept": pay7 >= pol.extension_payroll_ratio,
        "no_structural_signal": not structural_recent,
    }
    evidence = {
        "metric": "cash_balance",
        "cash_ratio_7d_vs_90d": round(cash_ratio, 4) if cash_ratio == cash_ratio else None,
        "runway_days": None if runway_days is None else round(runway_days, 1),
        "revenue_ratio_28d": round(rev28, 4) if rev28 == rev28 else None,
        "revenue_ratio_7d": round(rev7, 4) if rev7 == rev7 else None,
        "orders_ratio_28d": round(ord28, 4) if ord28 == ord28 else None,
        "payroll_ratio_7d": round(pay7, 4) if pay7 == pay7 else None,
        "checks": checks,
        "detector": "rule:liquidity_stress",
    }
    ok = all(checks.values())
    days = suggested_days(runway_days)
    if ok:
        reasoning = (
            f"Cash under stress (cash at {evidence['cash_ratio_7d_vs_90d']} of its 90-day baseline, "
            f"runway {evidence['runway_days']} days) while deseasonalised revenue holds at "
            f"{evidence['revenue_ratio_28d']} and orders at {evidence['orders_ratio_28d']} of baseline and "
            f"payroll is kept: temporary liquidity stress, not structural decline. A {days}-day extension "
            "bridges the gap."
        )
    else:
        failed = ", ".join(k for k, v in checks.items() if not v)
        reasoning = f"Cash under stress but not a temporary pattern ({failed})."
    return Assessment(ok, days, reasoning, evidence)
