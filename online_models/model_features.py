"""The decision-time feature transforms shared by the scorecard and the learned default model.

Why one module: the scorecard's weights (``riskmon/policies/scorecard.json``) are fitted on exactly these
transforms (``riskmon fit-scorecard``), and the learned River model reads the same ones, so the
champion/challenger gate compares two models of one feature vector.
"""

from __future__ import annotations

import math

# Account age is kept out of the learned model: in a book where most accounts opened together, age is
# calendar time, and a default hazard that peaks at a given age would only be learnt after that age has
# passed for the cohort (the model would learn yesterday's lifecycle stage and apply it to today's).
EXCLUDED = frozenset({"account_age_days"})


def model_features(x: dict[str, float]) -> dict[str, float]:
    """Fixed transforms of the decision-time features: bounded, mostly in [0, 3].

    Why fixed transforms ahead of the scaler: an online StandardScaler sees a feature that is constant for
    the first weeks (no account has history yet) with a near-zero variance, and the first real values
    then get z-scores in the hundreds; clipping and logs keep every input in a sane range from day one.
    """
    lim = max(x.get("limit", 1.0), 1.0)
    dsr = x.get("days_since_repayment", -1.0)
    n_res = x.get("n_resolved", 0.0)
    return {
        "bureau_score": x.get("bureau_score", 0.0),
        "bureau_missing": x.get("bureau_missing", 0.0),
        "income_band": x.get("income_band", 1.0) / 3.0,
        "age_band": x.get("age_band", 1.0) / 3.0,
        "city_tier": x.get("city_tier", 2.0) / 4.0,
        "utilisation": min(2.0, x.get("utilisation", 0.0)),
        "late_ratio": x.get("late_ratio", 0.0),
        "on_time_ratio": x.get("on_time_ratio", 1.0),
        "log_on_time": math.log1p(n_res * x.get("on_time_ratio", 1.0)) / 2.0,
        "log_late": math.log1p(n_res * x.get("late_ratio", 0.0)) / 2.0,
        "dpd_now": min(60.0, x.get("dpd_now", 0.0)) / 30.0,
        "max_dpd": min(60.0, x.get("max_dpd", 0.0)) / 30.0,
        "n_episodes": min(3.0, x.get("n_episodes", 0.0)),
        "never_repaid": 1.0 if dsr < 0 else 0.0,
        "log_days_since_repay": math.log1p(max(dsr, 0.0)) / 4.0,
        "repay_to_spend": min(2.0, x.get("repay_to_spend_30d", 1.0)),
        "log_count_24h": math.log1p(x.get("count_24h", 0.0)),
        "log_count_7d": math.log1p(x.get("count_7d", 0.0)),
        "log_count_30d": math.log1p(x.get("count_30d", 0.0)),
        "spend24_to_limit": min(2.0, x.get("spend_24h", 0.0) / lim),
        "spend7_to_limit": min(3.0, x.get("spend_7d", 0.0) / lim),
        "spend30_to_limit": min(4.0, x.get("spend_30d", 0.0) / lim),
        "log_velocity": math.log1p(max(0.0, x.get("velocity_24h", 0.0))) / 3.0,
        "night_share": x.get("night_share_30d", 0.0),
        "anomaly": x.get("anomaly", 0.0),
        "amount_to_limit": min(2.0, x.get("amount_to_limit", 0.0)),
        "util_jump": min(2.0, max(0.0, x.get("util_jump", 0.0))),
        "new_merchants_24h": min(5.0, x.get("new_merchants_24h", 0.0)) / 5.0,
        "installments": x.get("installments", 1.0) / 24.0,
        "log_distinct_merchants_7d": math.log1p(x.get("distinct_merchants_7d", 0.0)),
        "log_distinct_categories_7d": math.log1p(x.get("distinct_categories_7d", 0.0)),
        "log_limit": math.log(lim / 5000.0),
        "channel_web": x.get("channel_web", 0.0),
        "channel_pos": x.get("channel_pos", 0.0),
    }
