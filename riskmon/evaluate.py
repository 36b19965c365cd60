"""``riskmon evaluate``: score the decisions against the simulator's ground truth.

What is measured, and why this way:

- **Default model.** The broker-free engine is run over the input file (the same code the workers run),
  logging every learnt label with the feature vector frozen at decision time. The *prequential* AUC is
  computed exactly over labels in the order they resolved, for (a) the decision pd actually used (the
  scorecard while the model is cold, the model after hand-over) and (b) the model on the decisions it
  carried. The *batch* comparison is scikit-learn gradient boosting trained with hindsight: 5-fold
  cross-validated predictions over all labels, scored on the same rows as (b).
- **Decisions.** From a replay directory (the real pipeline) when given, else from the engine run:
  outstanding per account against ground truth, raises of prime users, bust-out users lowered or flagged
  before they max out, freeze of every account that reached 30 DPD.
- **Enterprise early warning.** ``riskmon.ews.evaluate.evaluate_ews`` over the EWS alerts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from online_models.default_model import EXCLUDED
from online_models.metrics import exact_auc
from riskmon.config import Settings
from riskmon.eventtime import MS_PER_DAY, parse_ts
from riskmon.money import to_fen
from riskmon.offline import labelled_engine, read_lines, run_offline

TARGETS = {
    "model_auc_min": 0.80,
    "model_gap_max": 0.03,
    "bust_out_caught_min": 0.70,
    "prime_raised_min": 0.5,
}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []


def model_metrics(label_log: list[tuple], horizon_ms: int, folds: int = 5, seed: int = 7) -> dict[str, Any]:
    """Prequential AUCs of the default model against a hindsight gradient-boosting model on the same rows.

    Rows: every label of the run, and the "model era" — labels of decisions taken after the first label
    resolved (before it there is no learned model at all, only the scorecard). The batch model is trained
    with hindsight on every other customer's labels (5 folds grouped by customer): with random folds it
    recognises each customer by the exact values of their applicant attributes and scores their other
    purchases from their own outcomes, which is memory, not modelling (reported as
    ``batch_gbm_auc_random_folds`` for reference). ``horizon_ms``: how long after its decision a label
    is learnt (``Engine.label_horizon_ms``), to place each label at its decision time.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict

    if not label_log:
        return {"labels": 0}
    y = np.array([bool(r[3]) for r in label_log])
    p_decision = np.array([r[1] for r in label_log])
    p_model = np.array([r[2] for r in label_log])
    warm = np.array([bool(r[5]) for r in label_log])
    learnt_at = np.array([r[4] for r in label_log])
    decided_at = learnt_at - horizon_ms
    users = np.array([r[6] for r in label_log])
    era = decided_at >= learnt_at.min()
    keys = sorted(k for k in label_log[0][0] if k not in EXCLUDED)
    X = np.array([[r[0].get(k, 0.0) for k in keys] for r in label_log])
    res: dict[str, Any] = {
        "labels": int(len(y)),
        "positives": int(y.sum()),
        "model_era_labels": int(era.sum()),
        "model_era_positives": int(y[era].sum()),
        "decided_by_model": int(warm.sum()),
        "decision_auc_all": exact_auc(p_decision, y),
        "learned_model_auc_all": exact_auc(p_model, y),
    }
    q = np.clip(p_decision, 1e-7, 1 - 1e-7)
    res["decision_logloss_all"] = float(-np.mean(np.where(y, np.log(q), np.log(1 - q))))
    if y.sum() < folds or (~y).sum() < folds or len(set(users)) < folds:
        return res
    gbm = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    grouped = cross_val_predict(gbm, X, y, cv=GroupKFold(n_splits=folds), groups=users, method="predict_proba")[:, 1]
    rand = cross_val_predict(gbm, X, y, cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
                             method="predict_proba")[:, 1]
    res["batch_gbm_auc_all"] = exact_auc(grouped, y)
    res["batch_gbm_auc_random_folds"] = exact_auc(rand, y)
    res["gap_all"] = res["batch_gbm_auc_all"] - res["decision_auc_all"]
    if era.any() and y[era].any() and (~y[era]).any():
        res["model_auc"] = exact_auc(p_decision[era], y[era])
        res["learned_model_auc"] = exact_auc(p_model[era], y[era])
        res["batch_gbm_auc_same_rows"] = exact_auc(grouped[era], y[era])
        res["gap"] = res["batch_gbm_auc_same_rows"] - res["model_auc"]
    res["by_month"] = _by_month(decided_at, y, p_decision, grouped)
    return res


def _by_month(decided_at: np.ndarray, y: np.ndarray, p: np.ndarray, batch: np.ndarray) -> list[dict[str, Any]]:
    """AUC of the decisions and of the batch model per 30-day period of decision time."""
    out = []
    t0 = int(decided_at.min())
    for k in range(int((decided_at.max() - t0) // (30 * MS_PER_DAY)) + 1):
        m = (decided_at >= t0 + k * 30 * MS_PER_DAY) & (decided_at < t0 + (k + 1) * 30 * MS_PER_DAY)
        if y[m].any() and (~y[m]).any():
            out.append({"month": k + 1, "labels": int(m.sum()), "positives": int(y[m].sum()),
                        "decision_auc": round(exact_auc(p[m], y[m]), 4),
                        "batch_gbm_auc": round(exact_auc(batch[m], y[m]), 4)})
    return out


def decision_checks(outputs: dict[str, list[dict]], accounts: dict[str, dict], truth: dict[str, Any],
                    decisions: list[dict], lateness_ms: int) -> dict[str, Any]:
    """Ledger exactness, prime raises, bust-out catch rate, freezes at 30 DPD."""
    users = truth["users"]
    mismatched = [u for u, t in users.items() if u in accounts
                  and to_fen(accounts[u]["outstanding"]) != t["outstanding_fen"]]
    missing = [u for u in users if u not in accounts]
    limits = defaultdict(list)
    for c in outputs.get("limit-changes", []):
        limits[c["user_id"]].append(c)
    flags = defaultdict(list)
    flag_kind = defaultdict(list)
    for a in outputs.get("alerts", []):
        if a["kind"] == "fraud_suspected":
            flags[a["subject_id"]].append(parse_ts(a["ts"]))
            flag_kind[a["subject_id"]].append("fraud")
    for u, cs in limits.items():
        flags[u] += [parse_ts(c["ts"]) for c in cs if c["action"] == "lower"]
    util_by_user = defaultdict(list)
    for d in decisions:
        util_by_user[d["user_id"]].append((parse_ts(d["ts"]), d["utilisation"]))
    prime = [u for u, t in users.items() if t["segment"] == "prime"]
    raised = [u for u in prime if any(c["action"] == "raise" for c in limits[u])]
    bust = [u for u, t in users.items() if t["segment"] == "bust_out" and t.get("bust_out_ts")]
    caught, lowered_before = [], []
    for u in bust:
        start = users[u]["bust_out_ts"]
        maxed = [ts for ts, util in sorted(util_by_user[u]) if ts >= start and util >= 0.95]
        maxout = maxed[0] if maxed else None
        # caught = flagged or lowered during the burst, strictly before the purchase that maxed out
        if any(start <= f and (maxout is None or f < maxout) for f in flags[u]):
            caught.append(u)
        elif any(start - 30 * MS_PER_DAY <= f < start for f in flags[u]):
            lowered_before.append(u)
    good = [u for u, t in users.items() if t["segment"] in ("prime", "near_prime")]
    good_flagged = [u for u in good if any(a == "fraud" for a in flag_kind[u])]
    good_lowered = [u for u in good if any(c["action"] == "lower" for c in limits[u])]
    end = truth["end_ms"] - lateness_ms
    defaulted = [u for u, t in users.items() if t.get("default_ts") is not None and t["default_ts"] <= end]
    frozen = [u for u in defaulted if any(c["action"] == "freeze" for c in limits[u])]
    return {
        "accounts": len(accounts),
        "outstanding_mismatches": len(mismatched),
        "accounts_missing": len(missing),
        "prime_users": len(prime),
        "prime_raised": len(raised),
        "prime_raised_share": len(raised) / len(prime) if prime else None,
        "bust_out_users": len(bust),
        "bust_out_caught_before_maxout": len(caught),
        "bust_out_caught_share": len(caught) / len(bust) if bust else None,
        "bust_out_lowered_in_30d_before_burst_only": len(lowered_before),
        "good_users": len(good),
        "good_users_fraud_flagged": len(good_flagged),
        "good_users_lowered": len(good_lowered),
        "reached_30dpd": len(defaulted),
        "reached_30dpd_frozen": len(frozen),
        "unfrozen_defaulters": sorted(set(defaulted) - set(frozen))[:20],
    }


def evaluate(input_path: Path, truth_path: Path, replay_dir: Path | None = None, settings: Settings | None = None,
             say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Run every evaluation; the result says which targets are met."""
    from riskmon.ews.evaluate import evaluate_ews
    from riskmon.ews.offline import run_offline as run_ews_offline

    settings = settings or Settings()
    truth = json.loads(truth_path.read_text())
    engine = labelled_engine(settings)
    policy = engine.policy
    say("running the engine over the input (broker-free)")
    run = run_offline(read_lines(input_path), engine)
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for topic, _, rec in run.outputs:
        by_topic[topic].append(rec)
    say("training the hindsight batch model")
    model = model_metrics(engine.label_log, engine.label_horizon_ms)
    if replay_dir is not None:
        outputs = {"alerts": _read_jsonl(replay_dir / "alerts.jsonl"),
                   "limit-changes": _read_jsonl(replay_dir / "limit_changes.jsonl")}
        accounts = {a["user_id"]: a for a in _read_jsonl(replay_dir / "accounts.jsonl")}
        source = str(replay_dir)
    else:
        outputs = dict(by_topic)
        from riskmon.money import fmt

        accounts = {u: {"outstanding": fmt(s.ledger.outstanding)} for u, s in run.states.items()}
        source = "engine"
    decisions = decision_checks(outputs, accounts, truth, by_topic.get("decisions", []),
                                settings.allowed_lateness_s * 1000)
    if replay_dir is not None:
        ews_alerts = [a for a in outputs["alerts"] if a.get("subject_type") == "enterprise"]
    else:
        say("running enterprise early warning (broker-free)")
        metrics = []
        for topic, raw in read_lines(input_path):
            if topic == "business-metrics":
                try:
                    doc = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict):
                    metrics.append((0, doc))
        ews_alerts, _, _ = run_ews_offline(metrics, policy.section("ews"))
    ews = evaluate_ews(ews_alerts, truth.get("enterprises", [])) if truth.get("enterprises") else {}
    met = {
        "ledger_exact": decisions["outstanding_mismatches"] == 0 and decisions["accounts_missing"] == 0,
        "model_auc>=0.80": model.get("model_auc", 0) >= TARGETS["model_auc_min"],
        "model_within_0.03_of_batch": model.get("gap", 1) <= TARGETS["model_gap_max"],
        "bust_out_caught>=70%": (decisions["bust_out_caught_share"] or 0) >= TARGETS["bust_out_caught_min"],
        "prime_users_raised": decisions["prime_raised"] > 0,
        "all_30dpd_frozen": decisions["reached_30dpd"] == decisions["reached_30dpd_frozen"],
    }
    if ews:
        met["ews_all_targets"] = bool(ews.get("all_targets_met"))
    return {"source": source, "model": model, "decisions": decisions, "ews": ews, "targets_met": met,
            "all_targets_met": all(met.values())}
