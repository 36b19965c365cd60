"""Tamper-evident audit trail: every customer-affecting decision in hash-chained ClickHouse rows.

Why: a limit change, an alert or a bureau report changes what happens to a customer. Regulators and
disputes ask "what did you decide, when, and has the record been altered since?". ClickHouse tables
can be edited by anyone with write access, so each record is chained to its predecessor by SHA-256 and
periodic *anchors* (chain head hash + length) are stored in a second table and can be exported to a
write-once store. ``verify`` recomputes everything from the stored bytes and names the first problem.

Chains are per (record type, shard of the subject id): a customer's decisions of one type stay in one
chain in decision order, the number of chains is bounded (cheap head recovery, anchors and verify), and
one damaged chain does not hide problems in others. See docs/audit.md for the exact definitions.

Single writer: one ``AuditLog`` appends to a given ClickHouse database at a time (the sink); the chain
heads live in memory and are read back from ClickHouse on start, so a restart continues every chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from riskmon.config import Settings
from riskmon.eventtime import TimeError, parse_ts

LOG_TABLE = "audit_log"
ANCHOR_TABLE = "audit_anchors"
ANCHOR_CHAIN = "audit_anchors"  # the ``chain`` named in problems found in the anchor table itself
HASH_VERSION = b"riskmon-audit/v1"

#: Record types of riskmon/outputs.py that affect a customer, and the field that identifies a record.
AUDITED_TYPES: dict[str, str] = {
    "limit-changes": "event_id",
    "alerts": "alert_id",
    "bureau-reports": "report_id",
}
_ID_FIELDS = ("event_id", "alert_id", "report_id", "dead_letter_id", "id")
_SUBJECT_FIELDS = ("user_id", "subject_id", "enterprise_id")
KINDS = ("edited", "deleted", "inserted", "reordered", "truncated")

_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
    chain LowCardinality(String),
    seq UInt64,
    record_type LowCardinality(String),
    record_id String,
    subject String,
    ts DateTime64(3, 'UTC'),
    payload String,
    prev_hash String,
    hash String,
    INDEX record_id_bf record_id TYPE bloom_filter GRANULARITY 4,
    INDEX subject_bf subject TYPE bloom_filter GRANULARITY 4
) ENGINE = MergeTree ORDER BY (chain, seq)
"""
_ANCHOR_DDL = f"""
CREATE TABLE IF NOT EXISTS {ANCHOR_TABLE} (
    anchor_no UInt64,
    chain LowCardinality(String),
    seq UInt64,
    head_hash String,
    ts DateTime64(3, 'UTC'),
    prev_anchor_hash String,
    anchor_hash String
) ENGINE = MergeTree ORDER BY anchor_no
"""
_LOG_COLUMNS = ["chain", "seq", "record_type", "record_id", "subject", "ts", "payload", "prev_hash", "hash"]
_ANCHOR_COLUMNS = ["anchor_no", "chain", "seq", "head_hash", "ts", "prev_anchor_hash", "anchor_hash"]


# ----------------------------------------------------------------------------------- hash definitions
def canonical_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON with sorted keys: one byte string per logical record."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def genesis_hash(chain: str) -> str:
    """The ``prev_hash`` of a chain's first record (chain-specific, so chains cannot be spliced)."""
    return hashlib.sha256(HASH_VERSION + b"/genesis\x00" + chain.encode()).hexdigest()


def anchors_genesis_hash() -> str:
    """The ``prev_anchor_hash`` of anchor 1."""
    return hashlib.sha256(HASH_VERSION + b"/anchors").hexdigest()


def entry_bytes(chain: str, record_type: str, record: dict[str, Any]) -> bytes:
    """What is hashed and stored (column ``payload``) for one record."""
    return canonical_json({"chain": chain, "type": record_type, "record": record})


def chain_hash(prev_hash: str, payload: bytes, seq: int) -> str:
    """``sha256(prev_hash || payload || seq)``: 32 raw bytes, the payload bytes, seq as 8 bytes big-endian."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + payload + seq.to_bytes(8, "big")).hexdigest()


def anchor_hash(prev_anchor_hash: str, anchor_no: int, chain: str, seq: int, head_hash: str, ts_ms: int) -> str:
    """Anchors are chained too, so editing or removing one in the middle is detected."""
    body = canonical_json({"anchor_no": anchor_no, "chain": chain, "seq": seq, "head_hash": head_hash,
                           "ts": ts_ms})
    return hashlib.sha256(bytes.fromhex(prev_anchor_hash) + body).hexdigest()


def record_id_of(record_type: str, record: dict[str, Any]) -> str:
    """The id that makes appends idempotent (``event_id`` / ``alert_id`` / ``report_id``...)."""
    key = AUDITED_TYPES.get(record_type)
    if key and record.get(key):
        return str(record[key])
    for key in _ID_FIELDS:
        if record.get(key):
            return str(record[key])
    raise ValueError(f"{record_type} record has no id field ({', '.join(_ID_FIELDS)})")


def subject_of(record: dict[str, Any]) -> str:
    """The customer (user or enterprise) a record is about; '' if none."""
    for key in _SUBJECT_FIELDS:
        if record.get(key):
            return str(record[key])
    return ""


def ts_of(record: dict[str, Any]) -> int:
    """Event time of a record in epoch ms (0 if it has no valid ``ts``)."""
    try:
        return parse_ts(record.get("ts"))
    except TimeError:
        return 0


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# ----------------------------------------------------------------------------------- report types
@dataclass(slots=True, frozen=True)
class Problem:
    """One integrity problem; ``kind`` is a diagnosis, detection is the guarantee (docs/audit.md)."""

    chain: str
    seq: int
    kind: str
    detail: str


@dataclass(slots=True)
class VerifyReport:
    """Outcome of :meth:`AuditLog.verify`."""

    ok: bool = True
    chains_checked: int = 0
    records_checked: int = 0
    anchors_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0

    @property
    def first_problem(self) -> Problem | None:
        """The first problem in (chain, seq) order, or None when the log is intact."""
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``riskmon audit verify --json``)."""
        fp = self.first_problem
        return {
            "ok": self.ok, "chains_checked": self.chains_checked, "records_checked": self.records_checked,
            "anchors_checked": self.anchors_checked, "problems_total": self.problems_total,
            "first_problem": asdict(fp) if fp else None, "problems": [asdict(p) for p in self.problems],
        }


@dataclass(slots=True, frozen=True)
class Anchor:
    """A chain's head at some point: the chain must still contain ``seq`` with ``head_hash``."""

    anchor_no: int
    chain: str
    seq: int
    head_hash: str
    ts: int
    prev_anchor_hash: str
    anchor_hash: str

    def to_json(self) -> bytes:
        """One line of an exported anchors file."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: bytes | str) -> Anchor:
        """Parse one line of an exported anchors file."""
        return cls(**orjson.loads(line))


@dataclass(slots=True)
class _Head:
    seq: int
    hash: str
    ts: int
    anchored_seq: int = 0
    anchored_ts: int = 0


@dataclass(slots=True)
class _Row:
    chain: str
    seq: int
    record_type: str
    record_id: str
    subject: str
    ts: int
    payload: str
    prev_hash: str
    hash: str

    def hash_ok(self, seq: int) -> bool:
        try:
            return chain_hash(self.prev_hash, self.payload.encode(), seq) == self.hash
        except ValueError:  # prev_hash edited into something that is not hex
            return False

    def columns_problem(self) -> str | None:
        """Which indexed column disagrees with the hashed payload (columns are what Grafana queries)."""
        try:
            entry = orjson.loads(self.payload)
            record = entry["record"]
            expected = {"chain": entry["chain"], "record_type": entry["type"],
                        "record_id": record_id_of(entry["type"], record), "subject": subject_of(record),
                        "ts": ts_of(record)}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return "payload is not an audit entry"
        for name, value in expected.items():
            if getattr(self, name) != value:
                return f"column {name} ({getattr(self, name)!r}) differs from the hashed payload ({value!r})"
        return None


# ----------------------------------------------------------------------------------- the log
class AuditLog:
    """Append-only, hash-chained decision log in ClickHouse (tables ``audit_log``, ``audit_anchors``).

    >>> # log = AuditLog(connect("chdb:///tmp/ch")); log.append([("alerts", alert_record)]); log.verify().ok
    """

    def __init__(self, client: Any, *, shards: int = 16, anchor_every: int = 256,
                 anchor_period_ms: int | None = 86_400_000) -> None:
        """``client`` is a clickhouse-connect client. Anchors are written when a chain has grown by
        ``anchor_every`` records or its head moved into a new event-time period of ``anchor_period_ms``
        since the last anchor, and by :meth:`anchor`. ``shards`` must stay fixed for a database."""
        if shards < 1 or anchor_every < 1:
            raise ValueError("shards and anchor_every must be >= 1")
        self.client = client
        self.shards = shards
        self.anchor_every = anchor_every
        self.anchor_period_ms = anchor_period_ms
        self._heads: dict[str, _Head] | None = None
        self._anchor_no = 0
        self._anchor_hash = anchors_genesis_hash()
        self._schema_ready = False

    @classmethod
    def from_policy(cls, client: Any, policy_path: Path | None = None) -> AuditLog:
        """An AuditLog with the ``audit:`` section of the policy file (shards, anchor cadence)."""
        path = policy_path or Settings().policy_path
        try:
            section = (yaml.safe_load(path.read_text()) or {}).get("audit") or {}
        except OSError:
            section = {}
        opts: dict[str, Any] = {}
        if "shards" in section:
            opts["shards"] = int(section["shards"])
        if "anchor_every" in section:
            opts["anchor_every"] = int(section["anchor_every"])
        if "anchor_period_hours" in section:
            hours = section["anchor_period_hours"]
            opts["anchor_period_ms"] = int(float(hours) * 3_600_000) if hours else None
        return cls(client, **opts)

    # ---------------------------------------------------------------- schema and state
    def ensure_schema(self) -> None:
        """Create both tables if missing (idempotent)."""
        self.client.command(_LOG_DDL)
        self.client.command(_ANCHOR_DDL)
        self._schema_ready = True

    def _state(self) -> dict[str, _Head]:
        """Chain heads and the anchor chain head, read back from ClickHouse once per instance."""
        if self._heads is not None:
            return self._heads
        if not self._schema_ready:
            self.ensure_schema()
        heads: dict[str, _Head] = {}
        for chain, seq, h, ts in self.client.query(
            f"SELECT chain, max(seq), argMax(hash, seq), argMax(toUnixTimestamp64Milli(ts), seq) "
            f"FROM {LOG_TABLE} GROUP BY chain"
        ).result_rows:
            heads[chain] = _Head(seq=int(seq), hash=h, ts=int(ts))
        for chain, seq, ts in self.client.query(
            f"SELECT chain, max(seq), argMax(toUnixTimestamp64Milli(ts), seq) FROM {ANCHOR_TABLE} GROUP BY chain"
        ).result_rows:
            if chain in heads:
                heads[chain].anchored_seq, heads[chain].anchored_ts = int(seq), int(ts)
        rows = self.client.query(
            f"SELECT anchor_no, anchor_hash FROM {ANCHOR_TABLE} ORDER BY anchor_no DESC LIMIT 1"
        ).result_rows
        if rows:
            self._anchor_no, self._anchor_hash = int(rows[0][0]), rows[0][1]
        self._heads = heads
        return heads

    def chain_of(self, record_type: str, record: dict[str, Any]) -> str:
        """``<record type>/<shard>``, the shard a stable hash of the subject id."""
        digest = hashlib.blake2b(subject_of(record).encode(), digest_size=8).digest()
        return f"{record_type}/{int.from_bytes(digest, 'big') % self.shards:02d}"

    def heads(self) -> dict[str, tuple[int, str]]:
        """Current ``chain -> (seq, head hash)`` (as this writer knows it)."""
        return {c: (h.seq, h.hash) for c, h in sorted(self._state().items())}

    # ---------------------------------------------------------------- append
    def _existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 2000):
            chunk = ids[i:i + 2000]
            rows = self.client.query(
                f"SELECT DISTINCT record_id FROM {LOG_TABLE} WHERE record_id IN %(ids)s", parameters={"ids": chunk}
            ).result_rows
            found.update(r[0] for r in rows)
        return found

    def append(self, records: list[tuple[str, dict[str, Any]]]) -> int:
        """Append ``(record_type, record)`` pairs in order; returns how many were new.

        A record whose id is already in the log (e.g. re-delivered after a sink restart) is skipped, so
        appending is idempotent. The rows of one call go in one INSERT; the in-memory heads advance only
        after it succeeded, so a failed insert can simply be retried.
        """
        heads = self._state()
        if not records:
            return 0
        ids = [record_id_of(t, r) for t, r in records]
        seen = self._existing_ids(sorted(set(ids)))
        pending: dict[str, _Head] = {}
        rows: list[list[Any]] = []
        for (record_type, record), rid in zip(records, ids, strict=True):
            if rid in seen:
                continue
            seen.add(rid)
            chain = self.chain_of(record_type, record)
            head = pending.get(chain) or heads.get(chain) or _Head(0, genesis_hash(chain), 0)
            seq = head.seq + 1
            payload = entry_bytes(chain, record_type, record)
            h = chain_hash(head.hash, payload, seq)
            ts = ts_of(record)
            rows.append([chain, seq, record_type, rid, subject_of(record), _dt(ts), payload.decode(), head.hash, h])
            pending[chain] = _Head(seq, h, ts, head.anchored_seq, head.anchored_ts)
        if rows:
            self.client.insert(LOG_TABLE, rows, column_names=_LOG_COLUMNS)
            heads.update(pending)
            self._write_anchors([c for c in pending if self._anchor_due(heads[c])])
        return len(rows)

    # ---------------------------------------------------------------- anchors
    def _anchor_due(self, head: _Head) -> bool:
        if head.seq - head.anchored_seq >= self.anchor_every:
            return True
        period = self.anchor_period_ms
        return bool(period) and head.seq > head.anchored_seq and head.ts // period != head.anchored_ts // period

    def anchor(self) -> int:
        """Anchor every chain whose head moved since its last anchor (call on flush / shutdown)."""
        heads = self._state()
        return self._write_anchors([c for c, h in heads.items() if h.seq > h.anchored_seq])

    def _write_anchors(self, chains: Iterable[str]) -> int:
        heads = self._state()
        rows, no, prev = [], self._anchor_no, self._anchor_hash
        for chain in sorted(chains):
            head = heads[chain]
            no += 1
            ah = anchor_hash(prev, no, chain, head.seq, head.hash, head.ts)
            rows.append([no, chain, head.seq, head.hash, _dt(head.ts), prev, ah])
            prev = ah
        if not rows:
            return 0
        self.client.insert(ANCHOR_TABLE, rows, column_names=_ANCHOR_COLUMNS)
        self._anchor_no, self._anchor_hash = no, prev
        for chain in chains:
            heads[chain].anchored_seq, heads[chain].anchored_ts = heads[chain].seq, heads[chain].ts
        return len(rows)

    def anchors(self) -> list[Anchor]:
        """All stored anchors in order (``riskmon audit export-anchors`` writes them as JSON lines)."""
        if not self._schema_ready:
            self.ensure_schema()
        return [Anchor(int(n), c, int(s), hh, int(ts), p, ah) for n, c, s, hh, ts, p, ah in self.client.query(
            f"SELECT anchor_no, chain, seq, head_hash, toUnixTimestamp64Milli(ts), prev_anchor_hash, anchor_hash "
            f"FROM {ANCHOR_TABLE} ORDER BY anchor_no, anchor_hash"
        ).result_rows]

    # ---------------------------------------------------------------- reading
    def trail(self, subject: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The audited decisions about one subject, in event-time order (for disputes)."""
        if not self._schema_ready:
            self.ensure_schema()
        rows = self.client.query(
            f"SELECT chain, seq, record_type, payload, hash FROM {LOG_TABLE} WHERE subject = %(s)s "
            f"ORDER BY ts, chain, seq LIMIT %(n)s", parameters={"s": subject, "n": limit},
        ).result_rows
        return [{"chain": c, "seq": int(s), "record_type": t, "record": orjson.loads(p)["record"], "hash": h}
                for c, s, t, p, h in rows]

    # ---------------------------------------------------------------- verify
    def verify(self, external_anchors: Iterable[Anchor] | None = None, *, max_problems: int = 1000,
               search_window: int = 1024, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute every chain and anchor from the stored bytes and report what does not add up.

        ``external_anchors`` (e.g. an exported anchors file kept in a write-once store) are checked in
        addition to the stored ones: that catches an attacker who rewrote both tables consistently.
        """
        if not self._schema_ready:
            self.ensure_schema()
        report = VerifyReport()
        problems: list[Problem] = []

        def add(p: Problem) -> None:
            report.problems_total += 1
            if len(problems) < max_problems and p not in problems:
                problems.append(p)

        stored = self.anchors()
        report.anchors_checked = len(stored)
        expect = self._check_anchor_chain(stored, add)
        for a in external_anchors or ():
            report.anchors_checked += 1
            twin = next((s for s in stored if s.anchor_no == a.anchor_no), None)
            if twin is None:
                add(Problem(ANCHOR_CHAIN, a.anchor_no, "truncated" if a.anchor_no > len(stored) else "deleted",
                            "exported anchor is missing from the anchors table"))
            elif twin != a:
                add(Problem(ANCHOR_CHAIN, a.anchor_no, "edited", "anchors table differs from the exported anchor"))
            expect.setdefault(a.chain, {}).setdefault(a.seq, []).append(a)

        chains_seen: set[str] = set()
        for chain, groups in self._chain_groups(report, progress):
            chains_seen.add(chain)
            self._verify_chain(chain, groups, expect.get(chain, {}), add,
                               search=lambda: report.problems_total < max_problems, window=search_window)
        for chain in sorted(set(expect) - chains_seen):
            last = max(expect[chain])
            add(Problem(chain, 1, "truncated", f"anchors expect {last} records, the chain has none"))
        report.chains_checked = len(chains_seen)
        problems.sort(key=lambda p: (p.chain == ANCHOR_CHAIN, p.chain, p.seq))
        report.problems = problems
        report.ok = report.problems_total == 0
        return report

    @staticmethod
    def _check_anchor_chain(stored: list[Anchor], add: Callable[[Problem], None]) -> dict[str, dict[int, list]]:
        expect: dict[str, dict[int, list[Anchor]]] = {}
        prev, want = anchors_genesis_hash(), 1
        for a in stored:
            try:
                good = anchor_hash(a.prev_anchor_hash, a.anchor_no, a.chain, a.seq, a.head_hash, a.ts)
            except ValueError:
                good = ""
            if a.anchor_no < want:
                add(Problem(ANCHOR_CHAIN, a.anchor_no, "inserted", "two anchors with the same number"))
                continue
            if a.anchor_no > want:
                add(Problem(ANCHOR_CHAIN, want, "deleted", f"anchors {want}..{a.anchor_no - 1} are missing"))
            elif good != a.anchor_hash:
                add(Problem(ANCHOR_CHAIN, a.anchor_no, "edited", "anchor hash does not match its content"))
            elif a.prev_anchor_hash != prev:
                add(Problem(ANCHOR_CHAIN, a.anchor_no, "edited", "anchor does not link to the previous anchor"))
            expect.setdefault(a.chain, {}).setdefault(a.seq, []).append(a)
            prev, want = a.anchor_hash, a.anchor_no + 1
        return expect

    def _chain_groups(self, report: VerifyReport,
                      progress: Callable[[int], None] | None) -> Iterator[tuple[str, Iterator[list[_Row]]]]:
        """Stream the log ordered by (chain, seq) as chains of same-seq row groups (O(1) memory per chain)."""
        sql = (f"SELECT chain, seq, record_type, record_id, subject, toUnixTimestamp64Milli(ts), payload, "
               f"prev_hash, hash FROM {LOG_TABLE} ORDER BY chain, seq, hash")

        def rows() -> Iterator[_Row]:
            with self.client.query_row_block_stream(sql) as stream:
                for block in stream:
                    for r in block:
                        yield _Row(r[0], int(r[1]), r[2], r[3], r[4], int(r[5]), r[6], r[7], r[8])
                    report.records_checked += len(block)
                    if progress:
                        progress(len(block))

        it = rows()
        pending = next(it, None)
        while pending is not None:
            chain = pending.chain
            box: list[_Row | None] = [pending]

            def groups(chain: str = chain, box: list = box) -> Iterator[list[_Row]]:
                while box[0] is not None and box[0].chain == chain:
                    group = [box[0]]
                    box[0] = next(it, None)
                    while box[0] is not None and box[0].chain == chain and box[0].seq == group[0].seq:
                        group.append(box[0])
                        box[0] = next(it, None)
                    yield group

            g = groups()
            yield chain, g
            for _ in g:  # drain if the consumer stopped early
                pass
            pending = box[0]

    @staticmethod
    def _verify_chain(chain: str, groups: Iterator[list[_Row]], expect: dict[int, list[Anchor]],
                      add: Callable[[Problem], None], search: Callable[[], bool], window: int) -> None:
        """Walk one chain; see docs/audit.md "How verify diagnoses" for the rules."""
        exp_seq, exp_prev, shift, skip_link, last_seq = 1, genesis_hash(chain), 0, False, 0

        def original_seq(r: _Row, seq: int) -> int | None:
            if shift and r.hash_ok(seq + shift):
                return seq + shift
            if not search():
                return None
            for d in range(1, window + 1):
                for cand in (seq - d, seq + d):
                    if cand > 0 and r.hash_ok(cand):
                        return cand
            return None

        it = iter(groups)
        group = next(it, None)
        while group is not None:
            nxt = next(it, None)
            seq = group[0].seq
            had_problem = False
            if seq < exp_seq:  # seq 0: nothing legitimate is ever written there
                for _ in group:
                    add(Problem(chain, seq, "inserted", "row with a seq no writer produces"))
                group = nxt
                continue
            if seq > exp_seq:
                add(Problem(chain, exp_seq, "deleted", f"seq {exp_seq}..{seq - 1} missing"))
                had_problem, skip_link = True, True
            # the genuine row of a seq: self-consistent, linked, and vouched for by the next row or an anchor
            vouched = ({r.prev_hash for r in nxt} if nxt else set()) | {a.head_hash for a in expect.get(seq, ())}
            evals = []
            for r in group:
                own = r.hash_ok(seq)
                linked = skip_link or r.prev_hash == exp_prev
                evals.append((own and linked, own, r.hash in vouched, r))
            evals.sort(key=lambda e: (not e[0], not e[1], not e[2]))
            _, own, _, row = evals[0]
            linked = skip_link or row.prev_hash == exp_prev
            for e in evals[1:]:
                add(Problem(chain, seq, "inserted", f"extra row claiming seq {seq} (hash {e[3].hash[:12]}...)"))
                had_problem = True
            if own and linked:
                shift = 0
            elif own:
                at = max(seq - 1, 1)
                add(Problem(chain, at, "edited", f"seq {seq} does not link to seq {seq - 1}: "
                                                 f"seq {seq - 1} was rewritten and re-hashed, or seq {seq} forged"))
                had_problem, shift = True, 0
            else:
                orig = original_seq(row, seq)
                if orig is None and nxt and any(r.prev_hash == exp_prev for r in nxt):
                    # the next row links to the one before: this row was slipped in and the rest renumbered
                    add(Problem(chain, seq, "inserted", f"row not in the chain: seq {seq + 1} links to seq {seq - 1}"))
                    shift = -1
                    group = nxt
                    exp_seq = seq + 1
                    continue
                if orig is None:
                    add(Problem(chain, seq, "edited", "hash does not match the stored content"))
                    had_problem = True
                elif orig - seq != shift:
                    new_shift = orig - seq
                    follows = bool(nxt) and any(r.hash_ok(nxt[0].seq + new_shift) for r in nxt)
                    if follows and new_shift > 0:
                        kind, detail = "deleted", f"{new_shift} row(s) removed before seq {seq} and the rest renumbered"
                    elif follows:
                        kind, detail = "inserted", f"{-new_shift} row(s) inserted before seq {seq} and the rest renumbered"
                    else:
                        kind, detail = "reordered", f"row stored at seq {seq} was written as seq {orig}"
                    add(Problem(chain, seq, kind, detail))
                    had_problem, shift = True, new_shift
            if own or not had_problem:
                col = row.columns_problem()
                if col:
                    add(Problem(chain, seq, "edited", col))
                    had_problem = True
            for a in expect.get(seq, ()):
                if a.head_hash != row.hash:
                    add(Problem(chain, seq, "edited", f"differs from anchor #{a.anchor_no}"))
                    had_problem = True
            exp_seq, exp_prev, skip_link, last_seq = seq + 1, row.hash, had_problem, seq
            group = nxt
        beyond = [s for s in expect if s > last_seq]
        if beyond:
            a = expect[max(beyond)][0]
            add(Problem(chain, last_seq + 1, "truncated",
                        f"anchor #{a.anchor_no} saw seq {a.seq}; the chain ends at seq {last_seq}"))
