"""Online models: delayed labels in event time, checkpoints, anomaly scores, exact prequential AUC."""

from __future__ import annotations

import random

from online_models.anomaly import PurchaseAnomaly
from online_models.default_model import DefaultModel
from online_models.metrics import Prequential, exact_auc
from online_models.scorecard import Scorecard
from riskmon.config import Settings
from riskmon.engine import Engine
from riskmon.eventtime import parse_ts
from riskmon.offline import run_offline
from riskmon.policy import load_policy
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-01T02:00:00Z")
# A small explicit prior, so these tests do not move when the shipped scorecard is refitted.
BUREAU_ONLY = Scorecard(intercept=-4.0, weights={"bureau_score": -0.7})


def _data(n: int, seed: int = 1) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = {"bureau_score": rng.gauss(0, 1), "utilisation": rng.random(), "night_share_30d": rng.random() * 0.3}
        z = -3.5 - 1.2 * x["bureau_score"] + 2.0 * x["utilisation"] + 4 * x["night_share_30d"]
        rows.append((x, rng.random() < 1 / (1 + 2.718281828 ** -z)))
    return rows


def _learn_prequentially(m: DefaultModel, data: list[tuple[dict[str, float], bool]]) -> None:
    """Predict each row before learning it, as the engine does (prediction at decision, label later)."""
    for x, y in data:
        p_model = m.model_pd(x)
        m.learn_one(x, y, p_model=p_model)


def test_model_learns_ranking_and_checkpoint_restores_it_exactly() -> None:
    m = DefaultModel.for_settings(500)
    train, test = _data(6000), _data(2000, seed=2)
    _learn_prequentially(m, train)
    preds = [m.model_pd(x) for x, _ in test]
    assert exact_auc(preds, [y for _, y in test]) > 0.75
    restored = DefaultModel.from_bytes(m.to_bytes())
    assert restored.version == m.version and restored.n_positive == m.n_positive
    assert restored.gate.recent == m.gate.recent and restored.warm == m.warm
    assert [restored.model_pd(x) for x, _ in test] == preds


def test_learned_probabilities_stay_near_the_base_rate() -> None:
    m = DefaultModel.for_settings(500)
    data = _data(8000, seed=3)
    _learn_prequentially(m, data)
    base = sum(y for _, y in data) / len(data)
    mean_pd = sum(m.model_pd(x) for x, _ in data[:2000]) / 2000
    assert base / 2.5 < mean_pd < base * 2.5


def test_learned_model_takes_over_only_when_it_ranks_recent_labels_better() -> None:
    # Outcomes driven by a feature the scorecard ignores: the learned model finds it and wins the gate.
    rng = random.Random(4)
    rows = []
    for _ in range(6000):
        x = {"bureau_score": rng.gauss(0, 1), "spend_30d": rng.random() * 4000, "limit": 2000.0}
        rows.append((x, rng.random() < (0.25 if x["spend_30d"] > 3000 else 0.01)))
    m = DefaultModel.for_settings(1000, BUREAU_ONLY)
    x_risky = {"bureau_score": 0.0, "spend_30d": 3900.0, "limit": 2000.0}
    assert m.predict_one(x_risky) == BUREAU_ONLY.pd(x_risky)  # cold: the scorecard decides
    _learn_prequentially(m, rows)
    assert m.warm and m.gate.last_auc is not None and m.gate.last_auc[1] > m.gate.last_auc[0]
    assert m.predict_one(x_risky) == m.model_pd(x_risky) > 0.1


def test_scorecard_keeps_decisions_when_the_model_is_no_better() -> None:
    # Outcomes follow the scorecard's own view (bureau score): the learned model cannot beat it by the
    # margin, so decisions stay with the transparent prior however many labels arrive.
    rng = random.Random(6)
    rows = []
    for _ in range(6000):
        x = {"bureau_score": rng.gauss(-3, 1.5)}  # a riskier book, so recent windows hold enough defaults
        rows.append((x, rng.random() < BUREAU_ONLY.pd(x)))
    m = DefaultModel.for_settings(1000, BUREAU_ONLY)
    _learn_prequentially(m, rows)
    assert m.n_labels == 6000 and m.gate.last_auc is not None
    assert not m.warm and m.predict_one(rows[0][0]) == BUREAU_ONLY.pd(rows[0][0])


def test_labels_are_learnt_only_at_the_horizon_in_event_time() -> None:
    s = Stream()
    s.account("u", T0)
    s.purchase("u", T0 + 1000, "300.00")
    s.repay("u", T0 + 2 * DAY, "300.00")  # paid long before due: label 0, but not learnt yet
    s.background(T0, 59)
    eng = Engine(load_policy(Settings().policy_path), lateness_ms=0, dedup_window_ms=45 * DAY)
    eng.label_log = []
    run = run_offline(s.sorted(), eng)
    assert eng.model.n_labels == 0 and len(run.states["u"].labels) == 1
    s.background(T0 + 59 * DAY, 3)  # the horizon (due + 30 days = purchase + 60 days) passes
    eng2 = Engine(load_policy(Settings().policy_path), lateness_ms=0, dedup_window_ms=45 * DAY)
    eng2.label_log = []
    run_offline(s.sorted(), eng2)
    assert eng2.model.n_labels == 1 and eng2.label_log[0][3] is False
    assert eng2.label_log[0][4] == T0 + 1000 + 60 * DAY


def test_anomaly_scores_a_burst_above_the_usual() -> None:
    det = PurchaseAnomaly(warmup=300, seed=3)
    rng = random.Random(5)
    for _ in range(3000):
        det.score_and_learn({"velocity_24h": rng.random() * 2, "utilisation": rng.random() * 0.5,
                             "amount_to_limit": rng.random() * 0.1, "count_24h": rng.choice([1, 1, 2])})
    normal = det.score_and_learn({"velocity_24h": 1.0, "utilisation": 0.3, "amount_to_limit": 0.05, "count_24h": 1})
    burst = det.score_and_learn({"velocity_24h": 40.0, "utilisation": 0.98, "util_jump": 0.6,
                                 "amount_to_limit": 0.6, "count_24h": 5})
    assert burst > normal
    restored = PurchaseAnomaly.from_bytes(det.to_bytes())
    assert restored.n_seen == det.n_seen


def test_prequential_auc_is_exact_with_ties() -> None:
    pq = Prequential()
    for p, y in [(0.1, 0), (0.4, 0), (0.35, 1), (0.8, 1), (0.4, 1)]:
        pq.update(p, bool(y))
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>both, 0.4>0.1, 0.4=0.4 (half) -> 4.5 / 6
    assert pq.auc == 4.5 / 6
    assert pq.n == 5 and pq.positives == 3
