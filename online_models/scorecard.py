"""A transparent scorecard prior: what decides while the online model has seen few labels.

Why: a River model fresh from a restart-of-history knows nothing; sending its 0.5 to the limit policy
would lower everyone. The scorecard is a hand-set logistic score over a handful of features a credit
officer can read, and it hands over to the learned model once that model ranks recent labels better
(``online_models.default_model.ChampionGate``). Payment-history depth (installments paid on time) is
the strongest single term after the bureau score, as in bureau scorecards.
"""

from __future__ import annotations

import math

# points per unit of feature (positive = riskier); intercept sets a ~4% base rate
WEIGHTS: dict[str, float] = {
    "bureau_score": -0.7,  # (score - 600) / 100
    "bureau_missing": 0.35,
    "income_band": -0.35,  # 0 low .. 3 very high
    "age_band": -0.2,  # 0 = 18-25 .. 3 = 51+
    "utilisation": 0.5,
    "late_ratio": 1.5,  # share of resolved installments paid late
    "dpd_now": 0.1,
    "night_share_30d": 2.7,  # share of purchases between 00:00 and 06:00 local
    "count_30d": 0.1,
    "repay_to_spend_30d": -0.25,
    "log_velocity_24h": 0.2,
    "anomaly": 0.8,  # purchase-anomaly percentile in [0, 1] (bust-out / takeover bursts)
    # Depth of good payment history, in two parts: the first six on-time installments say little (a
    # bust-out or a borrower about to stop pays them too), an established record beyond them says a lot.
    # Chosen on seed 7 (360 days) and checked on seed 8: decision AUC 0.860 -> 0.872 over all labels,
    # 0.898 -> 0.923 over the model era (docs/model.md).
    "log_on_time": -0.5,  # ln(1 + min(on-time installments, 6))
    "log_on_time_beyond_6": -1.0,  # ln(1 + max(0, on-time installments - 6))
}
INTERCEPT = -5.2


def scorecard_pd(x: dict[str, float]) -> float:
    """Default probability from the scorecard.

    >>> round(scorecard_pd({"bureau_score": 1.5, "utilisation": 0.2}), 4) < 0.05
    True
    """
    on_time = float(x.get("n_resolved", 0.0)) * float(x.get("on_time_ratio", 1.0))
    x = {**x, "log_velocity_24h": math.log1p(max(0.0, float(x.get("velocity_24h", 0.0)))),
         "log_on_time": math.log1p(min(on_time, 6.0)), "log_on_time_beyond_6": math.log1p(max(0.0, on_time - 6.0))}
    z = INTERCEPT + sum(w * float(x.get(k, 0.0)) for k, w in WEIGHTS.items())
    z = max(-30.0, min(30.0, z))
    return 1.0 / (1.0 + math.exp(-z))
