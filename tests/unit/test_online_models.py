"""Online models: delayed labels in event time, checkpoints, anomaly scores, exact prequential AUC."""

from __future__ import annotations

import random

from online_models.anomaly import PurchaseAnomaly
from online_models.default_model import DefaultModel
from online_models.metrics import Prequential, exact_auc
from riskmon.config import Settings
from riskmon.engine import Engine
from riskmon.eventtime import parse_ts
from riskmon.offline import run_offline
from riskmon.policy import load_policy
from tests.unit.builders import DAY, Stream

T0 = parse_ts("2026-03-01T02:00:00Z")


def _data(n: int, seed: int = 1) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = {"bureau_score": rng.gauss(0, 1), "utilisation": rng.random(), "night_share_30d": rng.random() * 0.3}
        z = -3.5 - 1.2 * x["bureau_score"] + 2.0 * x["utilisation"] + 4 * x["night_share_30d"]
        rows.append((x, rng.random() < 1 / (1 + 2.718281828 ** -z)))
    return rows


def test_model_learns_ranking_and_checkpoint_restores_it_exactly() -> None:
    m = DefaultModel(min_labels=100, min_positive=20)
    train, test = _data(6000), _data(2000, seed=2)
    for x, y in train:
        m.learn_one(x, y)
    assert m.warm
    preds = [m.predict_one(x) for x, _ in test]
    assert exact_auc(preds, [y for _, y in test]) > 0.75
    restored = DefaultModel.from_bytes(m.to_bytes())
    assert restored.version == m.version and restored.n_positive == m.n_positive
    assert [restored.predict_one(x) for x, _ in test] == preds


def test_probabilities_stay_near_the_base_rate() -> None:
    m = DefaultModel(min_labels=100, min_positive=20)
    data = _data(8000, seed=3)
    for x, y in data:
        m.learn_one(x, y)
    base = sum(y for _, y in data) / len(data)
    mean_pd = sum(m.predict_one(x) for x, _ in data[:2000]) / 2000
    assert base / 2.5 < mean_pd < base * 2.5


def test_scorecard_carries_decisions_until_the_model_has_positives() -> None:
    m = DefaultModel(min_labels=10, min_positive=5)
    x = {"bureau_score": -2.0, "utilisation": 0.9}
    prior = m.predict_one(x)
    for _ in range(50):
        m.learn_one({"bureau_score": 1.0, "utilisation": 0.1}, False)
    assert m.trust == 0.0 and m.predict_one(x) == prior  # negatives alone never hand over


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
