"""The audit log on the real ClickHouse engine (chdb in a tmp dir): append, restart, tamper by SQL, verify.

Each tamper test starts from a copy of one populated database (300 decisions of 3 types, 37 users) and
changes stored rows the way somebody with write access would: ALTER TABLE UPDATE, DELETE, INSERT of a
forged row, swapping two rows' seq, deleting the tail. verify must notice and name the kind and place.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from riskmon import outputs as o
from riskmon.audit import AuditLog, chain_hash, entry_bytes
from riskmon.cli.main import main as cli_main
from sinks.clickhouse.client import connect

pytestmark = pytest.mark.integration

T0 = 1_772_352_000_000  # 2026-03-01T08:00:00Z
N = 300
SHARDS = 4
ANCHOR_EVERY = 8


def decisions(start: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` customer-affecting records built by riskmon.outputs, deterministic in ``start``."""
    out = []
    for i in range(start, start + count):
        user, ts = f"u{i % 37}", T0 + i * 600_000
        if i % 3 == 0:
            out.append(("limit-changes", o.limit_change(
                ts=ts, user_id=user, action="lower", old_limit=500_000, new_limit=350_000 - i,
                reason_codes=["pd_high"], score=0.41, grade="D", model_version="m1", cause_id=f"e{i}")))
        elif i % 3 == 1:
            out.append(("alerts", o.alert(
                ts=ts, kind="collector_page", severity="high", subject_type="user", subject_id=user,
                dedup_key=f"ladder:{user}:{i}", summary=f"DPD {i % 90}", details={"dpd": i % 90})))
        else:
            out.append(("bureau-reports", o.bureau_report(
                ts=ts, user_id=user, outstanding=1_234_500 + i, dpd=90, first_due_unpaid=T0, episode_id=f"ep{i}")))
    return out


def new_log(client: Any) -> AuditLog:
    return AuditLog(client, shards=SHARDS, anchor_every=ANCHOR_EVERY, anchor_period_ms=None)


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chdb directory holding N audited decisions appended in batches of 50; the client is closed."""
    path = tmp_path_factory.mktemp("audit") / "ch"
    client = connect(f"chdb://{path}")
    try:
        log = new_log(client)
        records = decisions(0, N)
        assert sum(log.append(records[i:i + 50]) for i in range(0, N, 50)) == N
    finally:
        client.close()
    return path


@pytest.fixture
def db(populated: Path, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """A private copy of the populated database, opened (closed after the test)."""
    path = tmp_path / "ch"
    shutil.copytree(populated, path, symlinks=True)  # chdb keeps relative symlinks into store/
    client = connect(f"chdb://{path}")
    try:
        yield client, path
    finally:
        client.close()


def sql(client: Any, statement: str) -> None:
    client.command(statement + (" SETTINGS mutations_sync = 1" if statement.startswith("ALTER") else ""))


def longest_chain(client: Any) -> tuple[str, int]:
    chain, n = client.query(
        "SELECT chain, count() AS n FROM audit_log GROUP BY chain ORDER BY n DESC, chain LIMIT 1").result_rows[0]
    return chain, int(n)


def row(client: Any, chain: str, seq: int) -> dict[str, Any]:
    cols = ["chain", "seq", "record_type", "record_id", "subject", "ts", "payload", "prev_hash", "hash"]
    r = client.query(f"SELECT {', '.join(cols)} FROM audit_log WHERE chain = %(c)s AND seq = %(s)s",
                     parameters={"c": chain, "s": seq}).result_rows[0]
    return dict(zip(cols, r, strict=True))


def insert_rows(client: Any, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    client.insert("audit_log", [[r[c] for c in cols] for r in rows], column_names=cols)


# ----------------------------------------------------------------------------------- behaviour
def test_intact_log_verifies(db: tuple[Any, Path]) -> None:
    client, _ = db
    report = new_log(client).verify()
    assert report.ok, report.problems
    assert report.records_checked == N
    assert report.chains_checked == 3 * SHARDS
    assert report.anchors_checked >= N // ANCHOR_EVERY - 3 * SHARDS
    assert report.first_problem is None
    # every stored row really is chained: recompute one chain independently of riskmon.audit
    chain, n = longest_chain(client)
    prev = hashlib.sha256(b"riskmon-audit/v1/genesis\x00" + chain.encode()).hexdigest()
    for seq in range(1, n + 1):
        r = row(client, chain, seq)
        assert r["prev_hash"] == prev
        expected = hashlib.sha256(bytes.fromhex(prev) + r["payload"].encode() + seq.to_bytes(8, "big")).hexdigest()
        assert r["hash"] == expected
        prev = r["hash"]


def test_reappend_is_idempotent(db: tuple[Any, Path]) -> None:
    client, _ = db
    log = new_log(client)
    heads = log.heads()
    assert log.append(decisions(0, N)) == 0
    dup = decisions(N, 5)
    assert log.append(dup + dup) == 5  # duplicates inside one batch too
    assert client.query("SELECT count() FROM audit_log").result_rows[0][0] == N + 5
    assert log.append(dup) == 0
    assert sum(seq for seq, _ in log.heads().values()) == sum(seq for seq, _ in heads.values()) + 5
    assert log.verify().ok


def test_restart_continues_every_chain(db: tuple[Any, Path]) -> None:
    client, path = db
    before = new_log(client).heads()
    client.close()
    client = connect(f"chdb://{path}")  # a new process would do exactly this
    try:
        log = new_log(client)
        assert log.heads() == before  # read back from ClickHouse, not remembered
        assert log.append(decisions(N, 60)) == 60
        first_new = dict(client.query(
            "SELECT chain, min(seq) FROM audit_log WHERE record_id IN %(ids)s GROUP BY chain",
            parameters={"ids": [o_["event_id"] if "event_id" in o_ else o_.get("alert_id") or o_["report_id"]
                                for _, o_ in decisions(N, 60)]}).result_rows)
        for chain, seq in first_new.items():
            assert seq == before.get(chain, (0, ""))[0] + 1
            r = row(client, chain, seq)
            assert r["prev_hash"] == before[chain][1]  # linked to the head written before the restart
        report = log.verify()
        assert report.ok and report.records_checked == N + 60
    finally:
        client.close()


def test_edited_payload_is_caught(db: tuple[Any, Path]) -> None:
    client, _ = db
    chain, _ = longest_chain(client)
    r = row(client, chain, 5)
    forged = r["payload"].replace('"severity":"high"', '"severity":"info"').replace('"dpd":90', '"dpd":30')
    forged = forged.replace('"new_limit":"', '"new_limit":"9')
    assert forged != r["payload"]
    sql(client, f"ALTER TABLE audit_log UPDATE payload = '{forged}' WHERE chain = '{chain}' AND seq = 5")
    report = new_log(client).verify()
    assert not report.ok
    assert (report.first_problem.chain, report.first_problem.seq, report.first_problem.kind) == (chain, 5, "edited")


def test_edited_and_rehashed_row_is_caught(db: tuple[Any, Path]) -> None:
    """An attacker who knows the hash definition rewrites a row and its hash: the next row no longer links."""
    client, _ = db
    chain, _ = longest_chain(client)
    r = row(client, chain, 7)
    entry = orjson.loads(r["payload"])
    entry["record"]["summary" if "summary" in entry["record"] else "user_id"] = "tampered"
    payload = entry_bytes(entry["chain"], entry["type"], entry["record"])
    new_hash = chain_hash(r["prev_hash"], payload, 7)
    sql(client, f"ALTER TABLE audit_log UPDATE payload = '{payload.decode()}', hash = '{new_hash}' "
                f"WHERE chain = '{chain}' AND seq = 7")
    report = new_log(client).verify()
    assert not report.ok
    p = report.first_problem
    assert (p.chain, p.seq, p.kind) == (chain, 7, "edited"), report.problems


def test_edited_index_column_is_caught(db: tuple[Any, Path]) -> None:
    """Columns Grafana queries (subject, ts...) must agree with the hashed payload."""
    client, _ = db
    chain, _ = longest_chain(client)
    sql(client, f"ALTER TABLE audit_log UPDATE subject = 'someone_else' WHERE chain = '{chain}' AND seq = 3")
    p = new_log(client).verify().first_problem
    assert (p.chain, p.seq, p.kind) == (chain, 3, "edited") and "subject" in p.detail


def test_deleted_row_is_caught(db: tuple[Any, Path]) -> None:
    client, _ = db
    chain, _ = longest_chain(client)
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq = 4")
    report = new_log(client).verify()
    p = report.first_problem
    assert (p.chain, p.seq, p.kind) == (chain, 4, "deleted"), report.problems
    assert report.records_checked == N - 1


def test_deleted_row_with_renumbered_rest_is_caught(db: tuple[Any, Path]) -> None:
    """Deleting seq 4 and moving every later row down one seq (to hide the gap) is still a deletion."""
    client, _ = db
    chain, n = longest_chain(client)
    later = [row(client, chain, s) for s in range(5, n + 1)]
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq >= 4")
    insert_rows(client, [{**r, "seq": r["seq"] - 1} for r in later])
    p = new_log(client).verify().first_problem
    assert (p.chain, p.seq, p.kind) == (chain, 4, "deleted")


@pytest.mark.parametrize("self_consistent", [True, False])
def test_forged_row_is_caught(db: tuple[Any, Path], self_consistent: bool) -> None:
    """A forged decision inserted at an existing seq, with a correctly computed hash or a made-up one."""
    client, _ = db
    chain, _ = longest_chain(client)
    r = row(client, chain, 6)
    entry = orjson.loads(r["payload"])
    entry["record"] = {**entry["record"], "ts": "2026-03-02T00:00:00Z"}
    payload = entry_bytes(entry["chain"], entry["type"], entry["record"])
    h = chain_hash(r["prev_hash"], payload, 6) if self_consistent else "ab" * 32
    insert_rows(client, [{**r, "payload": payload.decode(), "hash": h, "record_id": r["record_id"] + "x"}])
    report = new_log(client).verify()
    p = report.first_problem
    assert (p.chain, p.seq, p.kind) == (chain, 6, "inserted"), report.problems


def test_swapped_rows_are_caught_as_reordered(db: tuple[Any, Path]) -> None:
    """Swap the seq of two decisions (key columns cannot be UPDATEd: rows are re-inserted swapped)."""
    client, _ = db
    chain, _ = longest_chain(client)
    a, b = row(client, chain, 3), row(client, chain, 9)
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq IN (3, 9)")
    insert_rows(client, [{**a, "seq": 9}, {**b, "seq": 3}])
    report = new_log(client).verify()
    kinds = {(p.seq, p.kind) for p in report.problems if p.chain == chain}
    assert report.first_problem.kind == "reordered" and report.first_problem.seq == 3, report.problems
    assert (9, "reordered") in kinds


def test_deleted_tail_is_caught_as_truncated(db: tuple[Any, Path]) -> None:
    client, _ = db
    chain, n = longest_chain(client)
    anchored = client.query("SELECT max(seq) FROM audit_anchors WHERE chain = %(c)s", parameters={"c": chain}
                            ).result_rows[0][0]
    assert anchored >= ANCHOR_EVERY
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq >= {anchored - 2}")
    report = new_log(client).verify()
    p = report.first_problem
    assert (p.chain, p.kind) == (chain, "truncated"), report.problems
    assert p.seq == anchored - 2


def test_whole_chain_deleted_is_caught(db: tuple[Any, Path]) -> None:
    client, _ = db
    chain, _ = longest_chain(client)
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}'")
    report = new_log(client).verify()
    assert (report.first_problem.chain, report.first_problem.kind) == (chain, "truncated")


def test_edited_anchor_is_caught(db: tuple[Any, Path]) -> None:
    client, _ = db
    sql(client, "ALTER TABLE audit_anchors UPDATE seq = seq + 1 WHERE anchor_no = 5")
    report = new_log(client).verify()
    assert any(p.chain == "audit_anchors" and p.seq == 5 and p.kind == "edited" for p in report.problems)


def test_covered_tracks_are_caught_only_with_exported_anchors(db: tuple[Any, Path], tmp_path: Path) -> None:
    """Truncating a chain AND deleting the anchors that saw it passes the in-database check; anchors
    exported earlier to a write-once store still catch it (docs/audit.md, limits)."""
    client, path = db
    exported = tmp_path / "anchors.jsonl"
    client.close()
    assert cli_main(["audit", "export-anchors", "--dsn", f"chdb://{path}", "--out", str(exported)]) == 0
    client = connect(f"chdb://{path}")
    try:
        chain, n = longest_chain(client)
        first = client.query("SELECT min(anchor_no) FROM audit_anchors WHERE chain = %(c)s AND seq > %(s)s",
                             parameters={"c": chain, "s": n - ANCHOR_EVERY}).result_rows[0][0]
        seq_cut = client.query("SELECT max(seq) FROM audit_anchors WHERE chain = %(c)s AND anchor_no < %(a)s",
                               parameters={"c": chain, "a": first}).result_rows[0][0]
        sql(client, f"DELETE FROM audit_anchors WHERE anchor_no >= {first}")
        sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq > {seq_cut}")
        log = new_log(client)
        assert log.verify().ok  # consistent rewrite of both tables: invisible from inside the database
        from riskmon.audit import Anchor
        external = [Anchor.from_json(line) for line in exported.read_bytes().splitlines()]
        report = log.verify(external)
        assert not report.ok
        assert any(p.chain == chain and p.kind == "truncated" for p in report.problems), report.problems
        assert any(p.chain == "audit_anchors" and p.kind == "truncated" for p in report.problems)
    finally:
        client.close()


def test_cli_verify_exit_codes(db: tuple[Any, Path], capsys: pytest.CaptureFixture[str]) -> None:
    client, path = db
    client.close()
    dsn = f"chdb://{path}"
    assert cli_main(["audit", "verify", "--dsn", dsn]) == 0
    assert "OK" in capsys.readouterr().out
    client = connect(dsn)
    chain, _ = longest_chain(client)
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq = 2")
    client.close()
    assert cli_main(["audit", "verify", "--dsn", dsn, "--json"]) == 1
    out = orjson.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["first_problem"] == {
        "chain": chain, "seq": 2, "kind": "deleted", "detail": "seq 2..2 missing"}
    assert cli_main(["audit", "trail", "--dsn", dsn, "u1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(orjson.loads(line)["record"].get("user_id", "u1") == "u1" for line in lines)
    assert cli_main(["audit", "anchor", "--dsn", dsn]) == 0


def test_inserted_row_with_renumbered_rest_is_caught(db: tuple[Any, Path]) -> None:
    """A forged row slipped in at seq 4, every later row moved up one seq to make room."""
    client, _ = db
    chain, n = longest_chain(client)
    later = [row(client, chain, s) for s in range(4, n + 1)]
    sql(client, f"DELETE FROM audit_log WHERE chain = '{chain}' AND seq >= 4")
    forged = {**later[0], "record_id": "forged", "hash": "cd" * 32}
    insert_rows(client, [forged] + [{**r, "seq": r["seq"] + 1} for r in later])
    report = new_log(client).verify()
    p = report.first_problem
    assert (p.chain, p.seq, p.kind) == (chain, 4, "inserted"), report.problems
