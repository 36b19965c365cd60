"""Hand-written scenarios: exact messages, deterministic ids and bytes, truth by the ledger rule."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from riskmon.contract import Purchase, Rejected, Repayment, decode
from riskmon.eventtime import MS_PER_DAY, parse_ts
from simulator import read_jsonl
from simulator.scenarios import Scenario

DAY = MS_PER_DAY


def ladder_scenario() -> Scenario:
    """The DPD-ladder case: alice never pays, bob pays everything at DPD 10, background moves time on."""
    sc = Scenario(start="2026-03-01")
    sc.account("alice", sc.day(0), limit="5000.00").purchase("alice", sc.day(1), "1200.00", installments=3)
    sc.account("bob", sc.day(0), limit="5000.00").purchase("bob", sc.day(1), "1200.00", installments=3)
    sc.repay_all("bob", sc.day(1 + 30 + 10))
    return sc.background_traffic(users=30, days=120, seed=5)


def test_ladder_scenario_truth() -> None:
    sc = ladder_scenario()
    truth = sc.truth()
    first_due = sc.day(1) + 30 * DAY
    alice, bob = truth["users"]["alice"], truth["users"]["bob"]
    assert alice["default_ts"] == first_due + 30 * DAY
    assert alice["outstanding_fen"] == 1200_00 and alice["dpd_at_end"] == (truth["end_ms"] - first_due) // DAY
    assert [i[4] for i in alice["installments"]] == [None, None, None]
    assert bob["default_ts"] is None and bob["outstanding_fen"] == 0 and bob["repayments_fen"] == 1200_00
    assert bob["installments"][0][4] - bob["installments"][0][2] == 10 * DAY  # paid at DPD 10
    assert truth["end_ms"] == sc.start_ms + 120 * DAY
    assert sum(uid.startswith("bg") for uid in truth["users"]) == 30


def test_scenario_lines_are_ordered_valid_and_span_the_window(tmp_path: Path) -> None:
    sc = ladder_scenario()
    lines = sc.lines()
    ts = [parse_ts(line["value"]["ts"]) for line in lines]
    assert ts == sorted(ts)
    assert ts[-1] - ts[0] > 100 * DAY
    assert all(not isinstance(decode(line["topic"], orjson.dumps(line["value"])), Rejected) for line in lines)
    mine = [line for line in lines if line["key"] in ("alice", "bob")]
    assert [line["value"]["event_id"] for line in mine] == [
        "s:alice:a1", "s:bob:a1", "s:alice:p1", "s:bob:p1", "s:bob:r1"]
    assert mine[-1]["value"]["amount"] == "1200.00"
    n = sc.write_jsonl(tmp_path / "a.jsonl", tmp_path / "a.truth.json")
    ladder_scenario().write_jsonl(tmp_path / "b.jsonl")
    assert n == len(lines)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert [orjson.loads(p) for _, _, p in read_jsonl(tmp_path / "a.jsonl")] == [x["value"] for x in lines]
    assert orjson.loads((tmp_path / "a.truth.json").read_bytes())["users"]["alice"]["default_ts"] is not None


def test_repay_due_pays_only_what_is_due_and_times_accept_several_forms() -> None:
    sc = Scenario(start="2026-03-01")
    sc.account("u1", timedelta(hours=1))  # no limit: pipeline default applies
    sc.purchase("u1", "2026-03-02T10:00:00Z", 100, installments=3)  # int = fen: 0.33 + 0.33 + 0.34
    sc.repay_due("u1", sc.day(1, 10) + 30 * DAY)  # exactly at the first due instant
    sc.repay_due("u1", sc.day(1, 10) + 30 * DAY + 1000)  # nothing more is due: no message
    truth = sc.truth()
    u = truth["users"]["u1"]
    assert u["credit_limit_fen"] == truth["rules"]["default_limit_fen"] and u["limit_sent"] is False
    assert u["repayments_fen"] == 33 and u["repayments"] == 1
    assert u["outstanding_fen"] == 67
    assert [line["value"]["amount"] for line in sc.lines() if line["topic"] == "purchases"] == ["1.00"]


def test_duplicates_and_bad_messages_are_recorded_and_do_not_change_truth() -> None:
    sc = Scenario(start="2026-03-01")
    sc.account("u1", sc.day(0), limit="3000.00").purchase("u1", sc.day(1), "300.00", installments=3)
    sc.repay("u1", sc.day(20), "100.00").duplicate("s:u1:r1", delay_ms=5000)
    sc.bad("s:u1:p1", "three_decimals").bad("s:u1:r1", "malformed_json").raw("repayments", "u1", "{oops", sc.day(21))
    lines = sc.lines()
    truth = sc.truth()
    assert truth["users"]["u1"]["repayments_fen"] == 100_00 and truth["users"]["u1"]["outstanding_fen"] == 200_00
    bad_lines = {b["line"] for b in truth["bad"]}
    assert len(bad_lines) == 3
    for n, line in enumerate(lines):
        raw = line["raw"].encode() if "raw" in line else orjson.dumps(line["value"])
        assert isinstance(decode(line["topic"], raw), Rejected) == (n in bad_lines)
    payments = [line for line in lines if line["topic"] == "repayments" and "value" in line
                and isinstance(decode("repayments", orjson.dumps(line["value"])), Repayment)]
    assert len(payments) == 2 and payments[0] == payments[1]


def test_send_classifies_by_the_contract_and_same_ts_purchases_follow_the_pipeline_order() -> None:
    sc = Scenario(start="2026-03-01")
    t = sc.day(2)
    sc.purchase("u1", t, "90.00", installments=3, event_id="pb").purchase("u1", t, "30.00", event_id="pa")
    sc.send("purchases", "u1", {"event_id": "x", "ts": "2026-03-05T00:00:00Z", "user_id": "u1"})
    sc.repay("u1", t + 31 * DAY, "30.00")
    sched = sc.schedule("u1")
    # same due instant (t + 30d): "pa" sorts before "pb" by event_id, like riskmon.ledger
    first = [i for i in sched.items if i.due == t + 30 * DAY]
    assert [(i.purchase_id, i.paid_ts is not None) for i in first] == [("pa", True), ("pb", False)]
    assert sc.truth()["bad"][0]["field"] == "installments"  # the first rule the contract checks
    assert isinstance(decode("purchases", orjson.dumps(sc.lines()[0]["value"])), Purchase)


def test_bad_times_and_amounts_are_refused_by_the_builder() -> None:
    sc = Scenario(start="2026-03-01")
    with pytest.raises(ValueError):
        sc.purchase("u1", sc.day(1), "1.005")
    with pytest.raises(TypeError):
        sc.repay("u1", True, "1.00")  # type: ignore[arg-type]
