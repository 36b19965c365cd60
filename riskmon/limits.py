"""Dynamic credit limits: raise, lower, freeze, unfreeze — each with reason codes.

Pure decisions over an account state and policy; the engine applies them and emits ``limit-changes``.
Thresholds live in the policy file (``limits:`` section), documented in docs/policies.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from riskmon.account import AccountState
from riskmon.eventtime import MS_PER_DAY
from riskmon.policy import Policy


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """A proposed limit change."""

    action: str
    new_limit: int
    reasons: list[str]


def consider_raise(state: AccountState, policy: Policy, now: int,
                   peak_util_30d: Callable[[], float]) -> LimitDecision | None:
    """Raise by at most ``raise_max_pct`` (cap, once per interval) for proven, low-risk, heavy users.

    ``peak_util_30d`` is asked for only once the cheap conditions hold: it replays 30 days of activity,
    and this runs after every purchase and repayment while few accounts have the on-time history a
    raise needs.
    """
    lim = policy.limits
    if state.frozen or state.episode is not None or state.dpd > 0:
        return None
    if state.n_on_time < int(lim["raise_min_on_time_installments"]):
        return None
    if peak_util_30d() < float(lim["raise_min_utilisation"]):
        return None
    if state.last_pd is None or state.last_pd > float(lim["raise_max_pd"]):
        return None
    if state.last_raise_ts and now - state.last_raise_ts < int(lim["raise_min_interval_days"]) * MS_PER_DAY:
        return None
    new = min(policy.raise_cap, state.credit_limit + state.credit_limit * int(lim["raise_max_pct"]) // 100)
    if new <= state.credit_limit:
        return None
    return LimitDecision("raise", new, ["on_time_history", "high_utilisation", "low_pd"])


def consider_lower(state: AccountState, policy: Policy, now: int, pd: float, anomaly: float,
                   fraud: bool) -> LimitDecision | None:
    """Lower (never below outstanding) on high default probability, anomaly or suspected fraud."""
    lim = policy.limits
    reasons = []
    if pd >= float(lim["lower_pd"]):
        reasons.append("high_pd")
    if anomaly >= float(lim["lower_anomaly"]):
        reasons.append("purchase_anomaly")
    if fraud:
        reasons.append("fraud_suspected")
    if not reasons or state.frozen:
        return None
    if state.last_lower_ts and now - state.last_lower_ts < int(lim.get("lower_min_interval_days", 7)) * MS_PER_DAY:
        return None
    cut = state.credit_limit * (100 - int(lim["lower_pct"])) // 100
    new = max(state.ledger.outstanding, cut)
    if new >= state.credit_limit:
        return None
    return LimitDecision("lower", new, reasons)
