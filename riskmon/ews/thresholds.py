"""EWS thresholds: the ``ews:`` section of the policy file, with documented defaults.

Why defaults in code as well as in YAML: a policy file written before a threshold existed must still
load, and unit tests can build a policy from a partial dict. Every key is validated here so a typo in
the YAML fails fast instead of silently disabling a covenant.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

DEFAULTS: dict[str, Any] = {
    "warmup_days": 28,  # no signal may alert before this many days of history
    "retention_days": 120,  # daily buckets kept per metric (>= baseline_days + current_days)
    "current_days": 7,  # the "current" window of every covenant
    "short_baseline_days": 28,  # revenue: 7-day mean vs the 28 days before it
    "baseline_days": 90,  # receivables/payroll/orders/cash: vs the 90 days before the current week
    "revenue_drop_ratio": 0.70,  # revenue 7-day mean < 70% of 28-day baseline
    "cash_runway_days": 30,  # cash / average daily net outflow (28 days) < 30 days
    "runway_outflow_days": 28,
    "receivables_stretch_ratio": 1.50,  # receivables days 7-day mean > 150% of 90-day baseline
    "payroll_drop_ratio": 0.75,  # payroll 7-day mean < 75% of baseline (down 25%)
    "order_drop_ratio": 0.60,  # order count 7-day mean < 60% of baseline (down 40%)
    "clear_days": 7,  # a signal closes after this many consecutive clean days (hysteresis)
    "seasonal_metrics": ["revenue", "order_count"],
    "season_alpha": 0.15,  # EWMA rate of the weekday / month-phase profile
    "month_phases": 10,  # month split into this many phases for the monthly profile
    "drift_metrics": ["revenue", "order_count", "receivables_days", "payroll"],
    "drift_delta": 0.5,  # Page-Hinkley tolerance, in noise standard deviations
    "drift_threshold": 12.0,  # Page-Hinkley alarm level, in noise standard deviations
    "drift_min_sigma": 0.03,  # floor of the relative noise level used to normalise
    "drift_hold_days": 28,  # a drift signal stays open this long after the last detection
    "anomaly_warmup_days": 45,
    "anomaly_threshold": 0.95,  # HalfSpaceTrees score (0..1, high = anomalous) ...
    "anomaly_persist_days": 2,  # ... on this many consecutive days before ews_anomaly opens
    "anomaly_trees": 8,
    "anomaly_height": 5,
    "anomaly_window": 60,
    "anomaly_seed": 7,
    "extension_cash_ratio": 0.60,  # cash stress: cash 7-day mean < 60% of baseline, or runway open
    "extension_revenue_ratio": 0.90,  # revenue 28-day mean >= 90% of baseline = stable
    "extension_revenue_week_ratio": 0.85,  # ... and the last 7 days >= 85%
    "extension_orders_ratio": 0.85,
    "extension_payroll_ratio": 0.90,
    "extension_structural_lookback_days": 60,  # no structural signal in this many days
    "peer_stale_days": 14,  # peer entries older than this are ignored for industry medians
    "watchlist_grades": ["D", "E"],
    "grade_bounds": {"A": 85, "B": 70, "C": 55, "D": 40},  # health score (0..100) lower bounds
    "dedup_window_days": 45,  # processed event ids kept (event time) for idempotency
}


class EwsPolicyError(ValueError):
    """The ``ews:`` policy section has an unknown key or a value of the wrong kind."""


@dataclass(frozen=True, slots=True)
class EwsPolicy:
    """Parsed ``ews:`` section (see :data:`DEFAULTS` for meanings)."""

    warmup_days: int
    retention_days: int
    current_days: int
    short_baseline_days: int
    baseline_days: int
    revenue_drop_ratio: float
    cash_runway_days: float
    runway_outflow_days: int
    receivables_stretch_ratio: float
    payroll_drop_ratio: float
    order_drop_ratio: float
    clear_days: int
    seasonal_metrics: tuple[str, ...]
    season_alpha: float
    month_phases: int
    drift_metrics: tuple[str, ...]
    drift_delta: float
    drift_threshold: float
    drift_min_sigma: float
    drift_hold_days: int
    anomaly_warmup_days: int
    anomaly_threshold: float
    anomaly_persist_days: int
    anomaly_trees: int
    anomaly_height: int
    anomaly_window: int
    anomaly_seed: int
    extension_cash_ratio: float
    extension_revenue_ratio: float
    extension_revenue_week_ratio: float
    extension_orders_ratio: float
    extension_payroll_ratio: float
    extension_structural_lookback_days: int
    peer_stale_days: int
    watchlist_grades: tuple[str, ...]
    grade_bounds: tuple[tuple[str, float], ...]
    dedup_window_days: int

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None = None) -> EwsPolicy:
        """Build from an ``ews:`` section (or a whole policy document holding one)."""
        section = dict(section or {})
        if "ews" in section and isinstance(section["ews"], dict):
            section = dict(section["ews"])
        unknown = set(section) - set(DEFAULTS)
        if unknown:
            raise EwsPolicyError(f"ews.{sorted(unknown)[0]}: unknown key")
        merged = {**DEFAULTS, **section}
        values: dict[str, Any] = {}
        try:
            for f in fields(cls):
                raw = merged[f.name]
                if f.name == "grade_bounds":
                    bounds = tuple((g, float(raw[g])) for g in ("A", "B", "C", "D"))
                    if [b for _, b in bounds] != sorted((b for _, b in bounds), reverse=True):
                        raise EwsPolicyError("ews.grade_bounds: must decrease from A to D")
                    values[f.name] = bounds
                elif f.type.startswith("tuple"):
                    values[f.name] = tuple(str(x) for x in raw)
                elif f.type == "int":
                    values[f.name] = int(raw)
                else:
                    values[f.name] = float(raw)
        except EwsPolicyError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise EwsPolicyError(f"ews: invalid value ({exc})") from exc
        policy = cls(**values)
        if policy.retention_days < policy.baseline_days + policy.current_days:
            raise EwsPolicyError("ews.retention_days: must be >= baseline_days + current_days")
        return policy

    def grade(self, score: float) -> str:
        """Grade A-E of a health score 0..100."""
        for grade, bound in self.grade_bounds:
            if score >= bound:
                return grade
        return "E"
