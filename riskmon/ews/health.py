"""Health score (0..100), grade A-E and recommendation of an enterprise from its open signals.

Why additive penalties: every point lost is traceable to a named signal, so the grade on a dashboard can
be explained in one sentence ("C: receivables stretched and payroll down"). Weights reflect how close a
signal sits to default in practice: running out of cash and a revenue collapse weigh most, a single
statistical anomaly least.
"""

from __future__ import annotations

PENALTIES: dict[str, float] = {
    "cash_runway": 30.0,
    "revenue_drop": 25.0,
    "order_drop": 15.0,
    "payroll_drop": 15.0,
    "receivables_stretch": 10.0,
    "drift_revenue": 12.0,
    "drift_order_count": 10.0,
    "drift_payroll": 10.0,
    "drift_receivables_days": 8.0,
    "anomaly": 8.0,
}
SEVERE_RUNWAY_DAYS = 10.0
TREND_PENALTY_MAX = 10.0
PEER_GAP_PENALTY = 5.0


def health_score(open_signals: list[str], runway_days: float | None, revenue_slope: float,
                 revenue_ratio: float, peer_median: float | None) -> float:
    """Score 100 (healthy) .. 0 from open signals, cash runway, revenue trend and peer gap.

    ``revenue_slope`` is the 28-day trend of deseasonalised revenue as a fraction per day; a decline of
    1%/day or faster costs the full trend penalty. ``revenue_ratio`` is 7-day mean / 28-day baseline.
    """
    score = 100.0
    for sig in open_signals:
        score -= PENALTIES.get(sig, 0.0)
    if runway_days is not None and runway_days < SEVERE_RUNWAY_DAYS:
        score -= 10.0
    if revenue_slope == revenue_slope and revenue_slope < 0:
        score -= min(TREND_PENALTY_MAX, -revenue_slope * 100 * TREND_PENALTY_MAX)
    if (peer_median is not None and revenue_ratio == revenue_ratio
            and revenue_ratio < peer_median - 0.15):
        score -= PEER_GAP_PENALTY
    return max(0.0, min(100.0, score))


def recommendation(grade: str, extension_open: bool) -> str:
    """What the credit officer should do: none|monitor|extend_terms|review_exposure|reduce_exposure."""
    if extension_open:
        return "extend_terms"
    return {"A": "none", "B": "none", "C": "monitor", "D": "review_exposure"}.get(grade, "reduce_exposure")
