"""`riskmon simulate` end to end on a small run (file output)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from riskmon.cli.main import main


def test_simulate_writes_deterministic_jsonl_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--days", "40", "--users", "40", "--enterprises", "2", "--seed", "3", "--start",
            "2026-03-01", "--bad-rate", "0.05", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl"), "--truth", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "throughput:" in out and "events/s" in out
    assert main([*args, "--out", str(tmp_path / "b.jsonl")]) == 0  # truth defaults to b.truth.json
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.truth.json").read_bytes()
    truth = orjson.loads((tmp_path / "a.json").read_bytes())
    lines = (tmp_path / "a.jsonl").read_bytes().splitlines()
    assert truth["counts"]["events_total"] == len(lines) and truth["counts"]["bad"] > 0
    assert len(truth["users"]) == 40 and len(truth["enterprises"]) == 2
    assert f"{len(lines)} messages" in out


def test_simulate_rejects_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--segments", "prime=1,whales=2", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "unknown segment" in capsys.readouterr().err
    assert main(["simulate", "--bad-rate", "0.9", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(SystemExit):
        main(["simulate", "--users", "5"])  # needs --out or --bootstrap


def test_simulate_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--bootstrap", "--truth", "--segments", "bust_out", "byte-identical"):
        assert word in text
