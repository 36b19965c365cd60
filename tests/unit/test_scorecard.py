"""The scorecard prior: the shipped points table, its file format, and fitting it on resolved labels."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from online_models.default_model import DefaultModel
from online_models.metrics import exact_auc
from online_models.model_features import model_features
from online_models.scorecard import SHIPPED, Scorecard, load_scorecard
from online_models.scorecard_fit import fit_scorecard
from riskmon.cli.main import main
from riskmon.config import Settings


def test_shipped_scorecard_is_a_fitted_points_table_with_provenance() -> None:
    sc = load_scorecard()
    assert Settings().scorecard_path == SHIPPED
    assert set(sc.weights) <= set(model_features({})) and len(sc.weights) >= 10
    assert sc.fitted["labels"] > 10_000 and "seed 8" in sc.fitted["source"]
    # The directions a credit officer expects of the strongest terms.
    assert sc.weights["dpd_now"] > 1 and sc.weights["night_share"] > 1 and sc.weights["log_on_time"] < -1
    clean = {"bureau_score": 1.0, "n_resolved": 8, "on_time_ratio": 1.0, "days_since_repayment": 10}
    late = {**clean, "dpd_now": 25.0, "n_resolved": 2, "on_time_ratio": 0.5, "late_ratio": 0.5}
    assert sc.pd(late) > 5 * sc.pd(clean)


def test_file_round_trip_and_clear_errors(tmp_path: Path) -> None:
    sc = Scorecard(intercept=-3.0, weights={"dpd_now": 2.0, "utilisation": 0.5}, fitted={"source": "test"})
    path = tmp_path / "sc.json"
    path.write_text(sc.to_json())
    back = Scorecard.load(path)
    assert back == sc and back.pd({"dpd_now": 15.0}) == sc.pd({"dpd_now": 15.0})
    with pytest.raises(ValueError, match="unknown features"):
        Scorecard(intercept=0.0, weights={"shoe_size": 1.0})
    path.write_text(json.dumps({"format": 99, "intercept": 0, "weights": {}}))
    with pytest.raises(ValueError, match=r"cannot read scorecard .*sc\.json.*format 99"):
        Scorecard.load(path)
    with pytest.raises(ValueError, match="cannot read scorecard"):
        Scorecard.load(tmp_path / "missing.json")


def test_the_scorecard_is_configuration_not_part_of_the_checkpoint() -> None:
    mine = Scorecard(intercept=-2.0, weights={"utilisation": 1.0})
    m = DefaultModel.for_settings(1000, mine)
    assert m.predict_one({"utilisation": 0.5}) == mine.pd({"utilisation": 0.5})
    m.learn_one({"utilisation": 0.9}, True, p_model=0.5)
    other = Scorecard(intercept=-5.0, weights={})
    restored = DefaultModel.from_bytes(m.to_bytes(), other)
    assert restored.scorecard is other and restored.n_labels == 1
    assert DefaultModel.from_bytes(m.to_bytes()).scorecard == load_scorecard()


def _label_log(n: int, seed: int) -> list[tuple]:
    """Engine-format label rows whose outcomes depend on DPD and night-time share only."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = {"dpd_now": rng.choice([0.0, 0.0, 0.0, 10.0, 25.0]), "night_share_30d": rng.random() * 0.5,
             "bureau_score": rng.gauss(0, 1)}
        z = -4.0 + 0.1 * x["dpd_now"] + 4.0 * x["night_share_30d"]
        rows.append((x, 0.0, 0.0, rng.random() < 1 / (1 + 2.718281828 ** -z), 0, False, "u"))
    return rows


def test_fit_recovers_the_drivers_of_default_and_ranks_new_customers() -> None:
    sc = fit_scorecard(_label_log(20_000, 1), c=1.0, source="synthetic")
    assert sc.weights["dpd_now"] > 1.5 and sc.weights["night_share"] > 1.5
    assert abs(sc.weights.get("bureau_score", 0.0)) < 0.2  # noise feature: near zero
    test = _label_log(5_000, 2)
    assert exact_auc([sc.pd(r[0]) for r in test], [r[3] for r in test]) > 0.75
    assert sc.fitted["labels"] == 20_000 and sc.fitted["source"] == "synthetic"
    with pytest.raises(ValueError, match="at least 20 labels of each class"):
        fit_scorecard(_label_log(50, 3))
    with pytest.raises(ValueError, match="no resolved labels"):
        fit_scorecard([])


def test_fit_scorecard_command_fits_a_replayed_history_and_the_workers_read_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sc.json"
    monkeypatch.setenv("RISKMON_VAR_DIR", str(tmp_path / "var"))
    assert main(["fit-scorecard", "--days", "130", "--users", "400", "--seed", "3", "--out", str(out)]) == 0
    sc = Scorecard.load(out)
    assert sc.fitted["labels"] > 1000 and sc.fitted["defaults"] >= 20 and sc.fitted["auc_in_sample"] > 0.7
    monkeypatch.setenv("RISKMON_SCORECARD_FILE", str(out))
    assert Settings().scorecard_path == out
