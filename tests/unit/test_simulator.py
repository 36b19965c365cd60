"""A whole simulated run checked against the wire contract and an independent recomputation.

One small run (300 customers, 120 days, raised fault rates) is built once per module and every test
reads it; the file is re-read with plain orjson + the contract decoder, never with simulator code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from riskmon.contract import (
    TOPIC_ACCOUNTS,
    TOPIC_PURCHASES,
    TOPIC_REPAYMENTS,
    Account,
    Purchase,
    Rejected,
    Repayment,
    decode,
)
from riskmon.eventtime import MS_PER_DAY, parse_ts
from riskmon.ledger import Ledger
from simulator import SimConfig, Simulation, generate, simulate, write_jsonl
from simulator.faults import BAD_KINDS

CFG = SimConfig(days=120, users=300, enterprises=4, seed=11, bad_rate=0.04, dup_rate=0.03, late_rate=0.03,
                segment_mix={"prime": 0.4, "near_prime": 0.2, "subprime": 0.2, "cure_after_late": 0.1,
                             "bust_out": 0.1})

# kind -> what the contract's rejection reason must look like (field placeholder {f})
EXPECTED_REASON = {
    "malformed_json": r"^payload: malformed JSON",
    "not_object": r"^payload: must be a JSON object",
    "missing_field": r"^{f}: required$",
    "wrong_type": r"^{f}: ",
    "unknown_enum": r"^{f}: (unknown value|required)",
    "unknown_field": r"^{f}: unknown field$",
    "invalid_id": r"^{f}: must be a string of 1-64 characters",
    "nonpositive_amount": r"^{f}: must be (> 0|>= 0|a plain decimal string)",
    "three_decimals": r"^{f}: (more than 2 decimals$|must be a plain decimal string.*at most 2 decimals)",
    "oversize": r"^payload: oversize message",
    "bad_ts": r"^ts: ",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[dict]]:
    d = tmp_path_factory.mktemp("sim")
    write_jsonl(CFG, d / "in.jsonl", d / "truth.json")
    lines = [orjson.loads(x) for x in (d / "in.jsonl").read_bytes().splitlines()]
    return d, orjson.loads((d / "truth.json").read_bytes()), lines


def payload(line: dict) -> bytes:
    return line["raw"].encode() if "raw" in line else orjson.dumps(line["value"])


def test_same_config_gives_byte_identical_files_and_another_seed_does_not(run, tmp_path: Path) -> None:
    d, _, _ = run
    write_jsonl(CFG, tmp_path / "again.jsonl", tmp_path / "again.truth.json")
    assert (tmp_path / "again.jsonl").read_bytes() == (d / "in.jsonl").read_bytes()
    assert (tmp_path / "again.truth.json").read_bytes() == (d / "truth.json").read_bytes()
    other = SimConfig(days=30, users=20, enterprises=0, seed=12)
    same = SimConfig(days=30, users=20, enterprises=0, seed=11)
    assert list(generate(other)) != list(generate(same))


def test_generate_yields_the_file_lines(run) -> None:
    _, _, lines = run
    assert list(generate(CFG)) == lines


def test_every_valid_line_decodes_and_every_bad_line_is_rejected_for_its_rule(run) -> None:
    _, truth, lines = run
    bad_at = {b["line"]: b for b in truth["bad"]}
    assert len(bad_at) == truth["counts"]["bad"] > 50
    kinds_seen = set()
    for n, line in enumerate(lines):
        ev = decode(line["topic"], payload(line))
        if n in bad_at:
            b = bad_at[n]
            assert b["topic"] == line["topic"]
            assert isinstance(ev, Rejected), (n, b, line)
            assert re.match(EXPECTED_REASON[b["kind"]].format(f=re.escape(b["field"])), ev.reason), (b, ev.reason)
            kinds_seen.add(b["kind"])
        else:
            assert not isinstance(ev, Rejected), (n, line, ev)
            assert "raw" not in line
            key = ev.enterprise_id if line["topic"] == "business-metrics" else ev.user_id
            assert line["key"] == key
    assert kinds_seen == set(BAD_KINDS)


def test_counts_match_the_file(run) -> None:
    _, truth, lines = run
    c = truth["counts"]
    assert c["events_total"] == len(lines)
    valid_ids: set[str] = set()
    dups = 0
    per_topic: dict[str, int] = defaultdict(int)
    for line in lines:
        per_topic[line["topic"]] += 1
        ev = decode(line["topic"], payload(line))
        if isinstance(ev, Rejected):
            continue
        if ev.event_id in valid_ids:
            dups += 1
        valid_ids.add(ev.event_id)
    assert c["events_valid"] == len(valid_ids)
    assert c["duplicates"] == dups > 0
    assert c["late"] > 0
    assert {t: v["lines"] for t, v in c["per_topic"].items()} == dict(per_topic)


def test_lines_are_in_event_time_order_except_injected_late_ones(run) -> None:
    _, truth, lines = run
    bad = {b["line"] for b in truth["bad"]}
    seen: set[str] = set()
    late = 0
    high = 0
    for n, line in enumerate(lines):
        if n in bad:
            continue
        eid, ts = line["value"]["event_id"], parse_ts(line["value"]["ts"])
        if eid in seen:
            continue  # a duplicate: re-sent a little after the original
        seen.add(eid)
        if ts < high:
            late += 1
            assert high - ts <= 3 * 3_600_000 + 60_000  # late by minutes to hours, not days
        high = max(high, ts)
    assert late > 0
    assert late <= truth["counts"]["late"]


def test_truth_money_equals_an_independent_recomputation_from_the_file(run) -> None:
    _, truth, lines = run
    seen: set[str] = set()
    bought: dict[str, int] = defaultdict(int)
    paid: dict[str, int] = defaultdict(int)
    for line in lines:
        ev = decode(line["topic"], payload(line))
        if isinstance(ev, Rejected) or ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        if isinstance(ev, Purchase):
            bought[ev.user_id] += ev.amount
        elif isinstance(ev, Repayment):
            paid[ev.user_id] += ev.amount
    users = truth["users"]
    assert len(users) == CFG.users
    for uid, u in users.items():
        assert u["purchases_fen"] == bought[uid], uid
        assert u["repayments_fen"] == paid[uid], uid
        assert u["outstanding_fen"] == max(0, bought[uid] - paid[uid]), uid
        assert u["credit_balance_fen"] == max(0, paid[uid] - bought[uid]), uid
    assert sum(u["credit_balance_fen"] > 0 for u in users.values()) > 0  # lumps rounded up exist


def test_default_instant_matches_the_pipeline_ledger_replayed_on_the_file(run) -> None:
    """Replay each customer's valid, deduplicated events (event-time order) through riskmon.ledger."""
    _, truth, lines = run
    events: dict[str, list] = defaultdict(list)
    seen: set[str] = set()
    for line in lines:
        if line["topic"] not in (TOPIC_PURCHASES, TOPIC_REPAYMENTS):
            continue
        ev = decode(line["topic"], payload(line))
        if isinstance(ev, Rejected) or ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        events[ev.user_id].append(ev)
    end, dpd = truth["end_ms"], truth["rules"]["default_dpd"]
    defaults = 0
    for uid, u in truth["users"].items():
        led = Ledger()
        for ev in sorted(events[uid], key=lambda e: e.ts):
            if isinstance(ev, Purchase):
                led.purchase(ev.event_id, ev.ts, ev.amount, ev.installments, 0)
            else:
                led.repay(ev.ts, ev.amount, 0)
        reach = [i.due + dpd * MS_PER_DAY for i in led.installments
                 if i.paid_ts is None or i.paid_ts >= i.due + dpd * MS_PER_DAY]
        expected = min((r for r in reach if r < end), default=None)
        assert u["default_ts"] == expected, uid
        assert u["first_30dpd"] == (expected is not None)
        defaults += expected is not None
    assert defaults > 0


def _by_segment(truth: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for uid, u in truth["users"].items():
        out[u["segment"]].append({"id": uid, **u})
    return out


def test_segment_counts_follow_the_mix(run) -> None:
    _, truth, _ = run
    seg = _by_segment(truth)
    assert {s: len(v) for s, v in seg.items()} == {"prime": 120, "near_prime": 60, "subprime": 60,
                                                     "cure_after_late": 30, "bust_out": 30}


def test_prime_never_defaults_and_subprime_does(run) -> None:
    _, truth, _ = run
    seg = _by_segment(truth)
    assert all(u["default_ts"] is None for u in seg["prime"])
    assert all(u["default_ts"] is None for u in seg["near_prime"])
    sub_defaults = sum(u["default_ts"] is not None for u in seg["subprime"])
    assert 0.15 * len(seg["subprime"]) <= sub_defaults <= 0.8 * len(seg["subprime"])


def test_bust_out_maxes_out_the_limit_and_never_pays_again(run) -> None:
    _, truth, lines = run
    seg = _by_segment(truth)
    busted = [u for u in seg["bust_out"] if u["bust_out_ts"] is not None]
    assert len(busted) >= 0.6 * len(seg["bust_out"])
    burst_spend: dict[str, int] = defaultdict(int)
    later_repayments: dict[str, int] = defaultdict(int)
    start = {u["id"]: u["bust_out_ts"] for u in busted}
    for line in lines:
        ev = decode(line["topic"], payload(line))
        if not isinstance(ev, Purchase | Repayment) or ev.user_id not in start:
            continue
        t0 = start[ev.user_id]
        if isinstance(ev, Purchase) and t0 <= ev.ts < t0 + 2 * MS_PER_DAY:
            burst_spend[ev.user_id] += ev.amount
        if isinstance(ev, Repayment) and ev.ts >= t0:
            later_repayments[ev.user_id] += 1
    for u in busted:
        assert u["outstanding_fen"] >= u["credit_limit_fen"], u["id"]
        assert burst_spend[u["id"]] >= u["credit_limit_fen"] // 3, u["id"]
        assert later_repayments[u["id"]] == 0, u["id"]
        assert u["bust_out_ts"] - u["signup_ts"] >= 29 * MS_PER_DAY  # 1-3 months of good history first
    assert all(u["bust_out_ts"] is None for s, us in seg.items() if s != "bust_out" for u in us)


def test_cure_after_late_goes_late_once_then_pays_everything(run) -> None:
    _, truth, _ = run
    cured = 0
    for u in _by_segment(truth)["cure_after_late"]:
        late = [(paid - due) // MS_PER_DAY for _, _, due, _, paid in u["installments"]
                if paid is not None and paid > due]
        if late:
            assert max(late) <= 41, u["id"]
            assert max(late) >= 10, u["id"]
            cured += 1
    assert cured >= 0.5 * len(_by_segment(truth)["cure_after_late"])


def test_applicant_attributes_correlate_with_segment_but_overlap(run) -> None:
    _, truth, lines = run
    score = {}
    limits_sent = {}
    for line in lines:
        if line["topic"] == TOPIC_ACCOUNTS and "value" in line:
            ev = decode(TOPIC_ACCOUNTS, payload(line))
            if isinstance(ev, Account):
                score[ev.user_id] = ev.bureau_score
                limits_sent[ev.user_id] = ev.credit_limit
    seg = _by_segment(truth)
    prime = sorted(score[u["id"]] for u in seg["prime"] if score.get(u["id"]))
    sub = sorted(score[u["id"]] for u in seg["subprime"] if score.get(u["id"]))
    assert sum(prime) / len(prime) > sum(sub) / len(sub) + 50
    median_prime = prime[len(prime) // 2]
    assert sum(s > median_prime for s in sub) >= 1  # some subprime look better on paper than half of prime
    assert sum(s < sub[len(sub) // 2] for s in prime) >= 1
    omitted = [uid for uid, lim in limits_sent.items() if lim is None]
    assert omitted and all(truth["users"][uid]["credit_limit_fen"] == truth["rules"]["default_limit_fen"]
                           for uid in omitted)
    assert all(1000_00 <= lim <= 20000_00 for lim in limits_sent.values() if lim is not None)


def test_purchase_shape_installment_weights_night_share_and_credit_use(run) -> None:
    _, truth, lines = run
    plans: dict[int, int] = defaultdict(int)
    night = defaultdict(lambda: [0, 0])
    segment = {uid: u["segment"] for uid, u in truth["users"].items()}
    for line in lines:
        if line["topic"] != TOPIC_PURCHASES or "value" not in line:
            continue
        ev = decode(TOPIC_PURCHASES, payload(line))
        if isinstance(ev, Rejected):
            continue
        plans[ev.installments] += 1
        local_hour = ((ev.ts // 3_600_000) + 8) % 24
        night[segment[ev.user_id]][0] += local_hour < 6
        night[segment[ev.user_id]][1] += 1
    assert set(plans) == {1, 3, 6, 12, 24}
    assert plans[1] == max(plans.values()) and plans[24] == min(plans.values())
    share = {s: a / b for s, (a, b) in night.items()}
    assert share["subprime"] > share["prime"] and share["bust_out"] > share["prime"]
    # mostly within the limit: outside bust-outs, few customers end above their limit
    over = [u for u in truth["users"].values() if u["segment"] != "bust_out"
            and u["outstanding_fen"] > u["credit_limit_fen"]]
    assert len(over) <= 0.05 * CFG.users


def test_duplicates_are_exact_copies_of_an_earlier_valid_line(run) -> None:
    _, _, lines = run
    first: dict[str, bytes] = {}
    dups = 0
    for line in lines:
        ev = decode(line["topic"], payload(line))
        if isinstance(ev, Rejected):
            continue
        if ev.event_id in first:
            assert payload(line) == first[ev.event_id]
            dups += 1
        else:
            first[ev.event_id] = payload(line)
    assert dups > 0


def test_simulation_object_exposes_lines_and_truth() -> None:
    sim = simulate(SimConfig(days=20, users=10, enterprises=0, seed=3, bad_rate=0, dup_rate=0, late_rate=0))
    assert isinstance(sim, Simulation)
    assert sim.truth["counts"]["bad"] == sim.truth["counts"]["duplicates"] == 0
    assert len(sim.lines) == sim.truth["counts"]["events_valid"]


def test_worker_processes_do_not_change_the_run() -> None:
    cfg = SimConfig(days=45, users=60, enterprises=2, seed=9, bad_rate=0.05)
    one, three = simulate(cfg, workers=1), simulate(cfg, workers=3)
    assert one.lines == three.lines
    assert orjson.dumps(one.truth) == orjson.dumps(three.truth)
