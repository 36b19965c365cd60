"""``riskmon evaluate`` end to end on a small simulated book (broker-free engine, hindsight batch model)."""

from __future__ import annotations

from pathlib import Path

from riskmon.config import Settings
from riskmon.evaluate import evaluate
from simulator import SimConfig, write_jsonl


def test_evaluate_scores_a_small_book_against_its_ground_truth(tmp_path: Path) -> None:
    inp, truth = tmp_path / "in.jsonl", tmp_path / "truth.json"
    write_jsonl(SimConfig(days=130, users=300, enterprises=10, seed=5), inp, truth)
    res = evaluate(inp, truth, settings=Settings(var_dir=tmp_path / "var"))
    m, d = res["model"], res["decisions"]
    assert res["targets_met"]["ledger_exact"] and d["accounts"] == 300 and d["outstanding_mismatches"] == 0
    assert m["labels"] > 1000 and m["positives"] > 10
    # decisions (the fitted scorecard) rank defaults far better than chance, as does the hindsight model
    assert m["decision_auc_all"] > 0.65 and m["batch_gbm_auc_all"] > 0.6
    assert abs(m["gap_all"] - (m["batch_gbm_auc_all"] - m["decision_auc_all"])) < 1e-12
    assert d["reached_30dpd"] == d["reached_30dpd_frozen"]
    assert set(res["targets_met"]) >= {"model_auc>=0.80", "model_within_0.03_of_batch", "bust_out_caught>=70%"}
