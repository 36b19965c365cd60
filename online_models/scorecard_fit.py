"""Fit the scorecard prior on a previous book's resolved labels (``riskmon fit-scorecard``).

Why logistic regression on the model features, and not something stronger: the scorecard decides alone
until the online model proves itself, so it must be readable (one weight per named feature) and
short; regularisation (``c``, inverse strength) keeps weights of rare features small.
Only labels are used, never simulator ground truth: the same outcomes a lender sees in its own book
(installment paid by due + grace, or 30 days past due).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from online_models.metrics import exact_auc
from online_models.model_features import model_features
from online_models.scorecard import Scorecard


def fit_scorecard(label_log: list[tuple], c: float = 0.1, source: str = "") -> Scorecard:
    """A scorecard fitted on ``label_log`` rows ``(features at decision, ..., label, ...)`` (engine format).

    Raises ValueError when the labels cannot support a fit (too few, or only one class).
    """
    from sklearn.linear_model import LogisticRegression

    if not label_log:
        raise ValueError("no resolved labels to fit on (replay a longer history: labels resolve 60 days "
                         "after each purchase)")
    keys = sorted(model_features({}))
    X = np.array([[f[k] for k in keys] for f in (model_features(r[0]) for r in label_log)])
    y = np.array([bool(r[3]) for r in label_log])
    if y.sum() < 20 or (~y).sum() < 20:
        raise ValueError(f"need at least 20 labels of each class, got {int(y.sum())} defaults and "
                         f"{int((~y).sum())} paid")
    lr = LogisticRegression(C=c, max_iter=5000).fit(X, y)
    weights = {k: float(w) for k, w in zip(keys, lr.coef_[0], strict=True) if abs(w) >= 5e-4}
    fitted: dict[str, Any] = {
        "source": source, "labels": int(len(y)), "defaults": int(y.sum()), "c": c,
        "auc_in_sample": round(exact_auc(lr.predict_proba(X)[:, 1], y), 4),
        "date": dt.date.today().isoformat(),
    }
    return Scorecard(intercept=float(lr.intercept_[0]), weights=weights, fitted=fitted)
