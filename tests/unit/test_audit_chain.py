"""The audit log's hash definitions and its tamper diagnosis, on in-memory rows (no ClickHouse).

The integration tests prove the same on the real engine with SQL tampering; here hypothesis throws
every single-row tamper at random positions of random chains, which the engine tests cannot afford.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmon import outputs as o
from riskmon.audit import (
    Anchor,
    AuditLog,
    Problem,
    VerifyReport,
    _Head,
    _Row,
    anchor_hash,
    anchors_genesis_hash,
    canonical_json,
    chain_hash,
    entry_bytes,
    genesis_hash,
    record_id_of,
    subject_of,
    ts_of,
)

T0 = 1_772_352_000_000
CHAIN = "alerts/03"


def test_chain_hash_is_sha256_of_prev_payload_and_seq() -> None:
    prev = genesis_hash(CHAIN)
    payload = b'{"a":1}'
    expected = hashlib.sha256(bytes.fromhex(prev) + payload + (7).to_bytes(8, "big")).hexdigest()
    assert chain_hash(prev, payload, 7) == expected
    assert chain_hash(prev, payload, 8) != expected  # the position is part of the hash


def test_genesis_is_per_chain_and_fixed() -> None:
    assert genesis_hash("alerts/00") != genesis_hash("alerts/01")
    assert genesis_hash("alerts/00") == hashlib.sha256(b"riskmon-audit/v1/genesis\x00alerts/00").hexdigest()


def test_canonical_json_ignores_key_order_and_is_compact() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": "é"}}) == '{"a":{"c":"é","d":2},"b":1}'.encode()
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def _alert(i: int, user: str = "u1") -> dict[str, Any]:
    return o.alert(ts=T0 + i * 1000, kind="k", severity="high", subject_type="user", subject_id=user,
                   dedup_key=f"d{i}", summary=f"s{i}", details={"i": i})


def test_record_ids_subjects_and_times_of_the_audited_records() -> None:
    lc = o.limit_change(ts=T0, user_id="u9", action="freeze", old_limit=100, new_limit=0, reason_codes=[],
                        score=None, grade=None, model_version=None, cause_id="c")
    br = o.bureau_report(ts=T0, user_id="u9", outstanding=5, dpd=90, first_due_unpaid=T0, episode_id="e")
    al = _alert(1, user="u9")
    assert record_id_of("limit-changes", lc) == lc["event_id"]
    assert record_id_of("bureau-reports", br) == br["report_id"]
    assert record_id_of("alerts", al) == al["alert_id"]
    assert {subject_of(lc), subject_of(br), subject_of(al)} == {"u9"}
    assert ts_of(al) == T0 + 1000 and ts_of({}) == 0
    with pytest.raises(ValueError):
        record_id_of("alerts", {"ts": "x"})


def test_chain_of_is_stable_bounded_and_keeps_a_subject_together() -> None:
    log = AuditLog(client=None, shards=8)
    chains = {log.chain_of("alerts", _alert(i, user=f"u{i % 50}")) for i in range(500)}
    assert chains <= {f"alerts/{k:02d}" for k in range(8)} and len(chains) == 8
    assert len({log.chain_of("alerts", _alert(i, user="u7")) for i in range(20)}) == 1
    assert AuditLog(client=None, shards=8).chain_of("alerts", _alert(1, "u7")) == log.chain_of("alerts", _alert(2, "u7"))


def test_anchor_policy_counts_and_event_time_periods() -> None:
    log = AuditLog(client=None, anchor_every=10, anchor_period_ms=86_400_000)
    assert log._anchor_due(_Head(seq=10, hash="", ts=T0, anchored_seq=0, anchored_ts=T0))
    assert not log._anchor_due(_Head(seq=9, hash="", ts=T0, anchored_seq=0, anchored_ts=T0))
    assert log._anchor_due(_Head(seq=3, hash="", ts=T0 + 86_400_000, anchored_seq=2, anchored_ts=T0))
    assert not log._anchor_due(_Head(seq=2, hash="", ts=T0 + 86_400_000, anchored_seq=2, anchored_ts=T0))


def test_anchor_json_round_trip_and_hash() -> None:
    prev = anchors_genesis_hash()
    a = Anchor(1, CHAIN, 5, "ab" * 32, T0, prev, anchor_hash(prev, 1, CHAIN, 5, "ab" * 32, T0))
    assert Anchor.from_json(a.to_json()) == a
    assert anchor_hash(prev, 1, CHAIN, 6, "ab" * 32, T0) != a.anchor_hash


def test_report_to_dict() -> None:
    r = VerifyReport(ok=False, problems=[Problem("c", 2, "deleted", "d")], problems_total=1)
    assert r.to_dict()["first_problem"] == {"chain": "c", "seq": 2, "kind": "deleted", "detail": "d"}
    assert VerifyReport().to_dict()["first_problem"] is None


# ----------------------------------------------------------------------------------- diagnosis
def build_chain(n: int) -> list[_Row]:
    rows, prev = [], genesis_hash(CHAIN)
    for seq in range(1, n + 1):
        rec = _alert(seq, user="u3")
        payload = entry_bytes(CHAIN, "alerts", rec)
        h = chain_hash(prev, payload, seq)
        rows.append(_Row(CHAIN, seq, "alerts", rec["alert_id"], "u3", ts_of(rec), payload.decode(), prev, h))
        prev = h
    return rows


def diagnose(rows: list[_Row], anchors: dict[int, list[Anchor]] | None = None) -> list[Problem]:
    rows = sorted(rows, key=lambda r: (r.seq, r.hash))
    groups: list[list[_Row]] = []
    for r in rows:
        if groups and groups[-1][0].seq == r.seq:
            groups[-1].append(r)
        else:
            groups.append([r])
    found: list[Problem] = []
    AuditLog._verify_chain(CHAIN, iter(groups), anchors or {}, found.append, search=lambda: True, window=64)
    return found


def anchor_at(rows: list[_Row], seq: int) -> dict[int, list[Anchor]]:
    return {seq: [Anchor(1, CHAIN, seq, rows[seq - 1].hash, 0, "", "")]}


def test_intact_chain_has_no_problems() -> None:
    rows = build_chain(30)
    assert diagnose(rows, anchor_at(rows, 30)) == []


@settings(max_examples=200, deadline=None)
@given(n=st.integers(3, 40), data=st.data())
def test_every_single_row_tamper_is_detected_at_its_seq(n: int, data: st.DataObject) -> None:
    rows = build_chain(n)
    anchors = anchor_at(rows, n)  # the tail is anchored, as after `riskmon audit anchor`
    kind = data.draw(st.sampled_from(["edit", "delete", "insert", "swap", "truncate", "rehash", "column"]))
    i = data.draw(st.integers(1, n))
    tampered = [_Row(**{k: getattr(r, k) for k in r.__slots__}) for r in rows]
    target = tampered[i - 1]
    if kind == "edit":
        target.payload = target.payload.replace('"severity":"high"', '"severity":"info"')
        expected = {(i, "edited")}
    elif kind == "rehash":
        target.payload = target.payload.replace('"severity":"high"', '"severity":"info"')
        target.hash = chain_hash(target.prev_hash, target.payload.encode(), i)
        expected = {(i, "edited")}
    elif kind == "column":
        target.subject = "other"
        expected = {(i, "edited")}
    elif kind == "delete":
        del tampered[i - 1]
        expected = {(i, "deleted" if i < n else "truncated")}
    elif kind == "truncate":
        del tampered[i - 1:]
        expected = {(i, "truncated")}
    elif kind == "insert":
        rec = {**_alert(999, user="u3")}
        payload = entry_bytes(CHAIN, "alerts", rec)
        prev = rows[i - 2].hash if i > 1 else genesis_hash(CHAIN)
        forged = _Row(CHAIN, i, "alerts", rec["alert_id"], "u3", ts_of(rec), payload.decode(), prev,
                      chain_hash(prev, payload, i))
        tampered.append(forged)
        expected = {(i, "inserted")}
    else:  # swap
        j = data.draw(st.integers(1, n).filter(lambda j: j != i))
        a, b = sorted((i, j))
        tampered[a - 1].seq, tampered[b - 1].seq = b, a
        expected = {(a, "reordered")}
    problems = diagnose(tampered, anchors)
    assert problems, kind
    first = min(problems, key=lambda p: p.seq)
    assert {(first.seq, first.kind)} == expected, (kind, i, problems)


def test_from_policy_reads_the_audit_section(tmp_path: Any) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("audit:\n  shards: 5\n  anchor_every: 7\n  anchor_period_hours: 2\n")
    log = AuditLog.from_policy(None, policy)
    assert (log.shards, log.anchor_every, log.anchor_period_ms) == (5, 7, 7_200_000)
    packaged = AuditLog.from_policy(None)
    assert packaged.shards >= 1 and packaged.anchor_every >= 1
