"""The state of one consumer account: ledger, recent activity, counters, collection episode, labels.

One object per user, serialised to one compact JSON blob in Redis, so a batch reads and writes every
user it touches in a single round trip. ``applied`` remembers event ids inside the dedup window: a
redelivered or duplicated event is recognised and changes nothing. Ids leaving the window (event time
older than ``dedup_floor``) are kept as 32-bit fingerprints (``old_ids``, the newest 4,096), so an event
older than the window is still told apart: a redelivery (fingerprint known) is a duplicate, a genuinely
new late event (fingerprint unknown; a fingerprint set has no false negatives) is applied. Replays make
this matter: 45 days of event time pass in seconds, and a slow partition can still deliver an event of
"two months ago" that was never seen (docs/reliability.md).
"""

from __future__ import annotations

import base64
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any

import orjson

from riskmon.features import Activity
from riskmon.label_features import Features, as_dict, shared_names
from riskmon.ledger import Ledger

STATE_FORMAT = 1
MAX_OLD_IDS = 4096  # fingerprints of ids older than the dedup window kept per account


def fingerprint(event_id: str) -> int:
    """32-bit fingerprint of an event id (CRC-32: fast, stable across processes and versions)."""
    return zlib.crc32(event_id.encode())


@dataclass
class Episode:
    """A delinquency episode: from the first overdue day until all overdue installments are paid."""

    episode_id: str
    start_due: int
    fired: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)  # dedup keys a cure resolves

    def to_list(self) -> list[Any]:
        """Compact form."""
        return [self.episode_id, self.start_due, self.fired, self.pages]

    @classmethod
    def from_list(cls, v: list[Any]) -> Episode:
        """Inverse of :meth:`to_list`."""
        return cls(v[0], v[1], list(v[2]), list(v[3]))


@dataclass
class AccountState:
    """Everything riskmon knows about one user (see module docstring)."""

    user_id: str
    opened_ts: int = 0
    credit_limit: int = 0
    frozen: bool = False
    grade: str | None = None
    last_pd: float | None = None
    model_version: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    activity: Activity = field(default_factory=Activity)
    applied: dict[str, int] = field(default_factory=dict)
    dedup_floor: int = 0  # ids of events older than this are only kept as fingerprints (module docstring)
    old_ids: list[int] = field(default_factory=list)  # fingerprints, oldest first
    n_on_time: int = 0
    n_late: int = 0
    cure_ts: int = 0
    awaiting_unfreeze: bool = False
    coll_cursor: int = 0  # the collection timeline has been processed up to this instant
    max_dpd: int = 0
    dpd: int = 0
    last_raise_ts: int = 0
    last_lower_ts: int = 0
    last_repay_ts: int = 0
    last_fraud_ts: int = 0
    episode: Episode | None = None
    n_episodes: int = 0
    reminded: list[str] = field(default_factory=list)
    contacts: list[int] = field(default_factory=list)
    deferred: list[list[Any]] = field(default_factory=list)  # [ready_ts, kind, ref, dpd, step_ts]
    # [purchase_id, due1, x, p_decision, p_model, warm]; x: the decision's features (Features, compact)
    labels: list[list[Any]] = field(default_factory=list)
    # purchase_id -> (feature names, the label's packed row as JSON): labels never change once written, so
    # each is serialised once, not at every commit (they were most of a blob's float formatting)
    packed_rows: dict[str, tuple[tuple[str, ...], orjson.Fragment]] = field(
        default_factory=dict, repr=False, compare=False)
    version: int = 0  # CAS version in Redis, managed by the store
    next_at: int | None | bool = field(default=False, repr=False, compare=False)  # cached next timer; False: unknown
    next_p: Any = field(default=None, repr=False, compare=False)  # the scan that gave ``next_at`` (Engine.advance)

    @property
    def is_new(self) -> bool:
        """True until the account has been opened (first account or purchase event)."""
        return self.opened_ts == 0

    @property
    def available(self) -> int:
        """Available credit in fen (0 while frozen)."""
        return 0 if self.frozen else max(0, self.credit_limit - self.ledger.outstanding)

    def seen(self, event_id: str, ts: int) -> bool:
        """Was this event already applied? Exact inside the window, by fingerprint before it."""
        if event_id in self.applied:
            return True
        return ts < self.dedup_floor and fingerprint(event_id) in set(self.old_ids)

    def mark(self, event_id: str, ts: int) -> None:
        """Remember an applied event."""
        self.applied[event_id] = ts

    def prune(self, now: int, dedup_window_ms: int) -> None:
        """Forget what no rule can need any more (old event ids, paid installments, old contacts)."""
        cutoff = now - dedup_window_ms
        self.dedup_floor = max(self.dedup_floor, cutoff)
        if self.applied and min(self.applied.values()) < cutoff:
            keep = {}
            for k, v in self.applied.items():
                if v >= cutoff:
                    keep[k] = v
                else:
                    self.old_ids.append(fingerprint(k))
            self.applied = keep
            if len(self.old_ids) > MAX_OLD_IDS:
                del self.old_ids[: len(self.old_ids) - MAX_OLD_IDS]
        removed = self.ledger.prune_paid(cutoff)
        self.activity.prune(now)
        week = now - 7 * 86_400_000
        self.contacts = [c for c in self.contacts if c > week]
        # A reminder is remembered while its installment is in the ledger (the timeline reads paid ones
        # too, as they were at the cursor). Reminders are only ever noted for installments in the
        # ledger, and only prune_paid removes any, so the filter is needed only when it did: building
        # the set for every touched account was ~2 % of a mature book's engine time.
        if removed and self.reminded:
            live = {f"{i.purchase_id}:{i.k}" for i in self.ledger.installments}
            self.reminded = [r for r in self.reminded if r in live]

    def to_bytes(self) -> bytes:
        """Serialise (orjson; ints stay ints so money stays exact)."""
        return orjson.dumps(
            {
                "f": STATE_FORMAT,
                "u": self.user_id,
                "o": self.opened_ts,
                "l": self.credit_limit,
                "z": self.frozen,
                "g": self.grade,
                "pd": self.last_pd,
                "mv": self.model_version,
                "at": self.attrs,
                "lg": self.ledger.to_dict(),
                "ac": self.activity.to_dict(),
                "ap": self.applied,
                "df0": self.dedup_floor,
                "oi": base64.b64encode(array("I", self.old_ids).tobytes()).decode() if self.old_ids else "",
                "c": [self.n_on_time, self.n_late, self.cure_ts, int(self.awaiting_unfreeze),
                      self.max_dpd, self.dpd, self.last_raise_ts, self.last_lower_ts, self.last_repay_ts,
                      self.last_fraud_ts, self.n_episodes, self.coll_cursor],
                "ep": self.episode.to_list() if self.episode else None,
                "rm": self.reminded,
                "ct": self.contacts,
                "df": self.deferred,
                "lb": self._packed_labels(),
            }
        )

    @classmethod
    def from_bytes(cls, blob: bytes, version: int = 0) -> AccountState:
        """Inverse of :meth:`to_bytes`."""
        d = orjson.loads(blob)
        if d.get("f") != STATE_FORMAT:
            raise ValueError(f"unsupported account state format {d.get('f')}")
        c = d["c"]
        return cls(
            user_id=d["u"],
            opened_ts=d["o"],
            credit_limit=d["l"],
            frozen=d["z"],
            grade=d["g"],
            last_pd=d["pd"],
            model_version=d["mv"],
            attrs=d["at"],
            ledger=Ledger.from_dict(d["lg"]),
            activity=Activity.from_dict(d["ac"]),
            applied=d["ap"],
            dedup_floor=d.get("df0", 0),
            old_ids=array("I", base64.b64decode(d["oi"])).tolist() if d.get("oi") else [],
            n_on_time=c[0],
            n_late=c[1],
            cure_ts=c[2],
            awaiting_unfreeze=bool(c[3]),
            max_dpd=c[4],
            dpd=c[5],
            last_raise_ts=c[6],
            last_lower_ts=c[7],
            last_repay_ts=c[8],
            last_fraud_ts=c[9],
            n_episodes=c[10],
            coll_cursor=c[11],
            episode=Episode.from_list(d["ep"]) if d["ep"] else None,
            reminded=d["rm"],
            contacts=d["ct"],
            deferred=d["df"],
            labels=_unpack_labels(d["lb"]),
            version=version,
        )


    def _packed_labels(self) -> list[list[Any]] | dict[str, Any]:
        """Pending labels with the feature names written once, not once per label.

        Why: each pending label keeps its decision-time feature vector (~37 named values); written as a
        dict per label they were 80 % of a state blob (11.4 KB mean at 10 labels per account), and of the
        worker's serialisation and Redis traffic. Labels whose features do not share one key order (none
        today) keep the plain form, which :func:`_unpack_labels` also reads. Each label's row is
        serialised once (``packed_rows``): the bytes are the same as packing it afresh.
        """
        cache, fresh = self.packed_rows, {}
        keys = None
        rows = []
        for lab in self.labels:
            hit = cache.get(lab[0])
            if hit is None:
                x = lab[2]
                if isinstance(x, Features):
                    names, values = x.names, x.values.tolist()
                else:
                    names, values = shared_names(tuple(x)), list(x.values())
                row = orjson.dumps([lab[0], lab[1], values, *lab[3:]])
                # kept for the label's life: an exact-size copy (orjson's bytes keep their ~8 KB write
                # buffer: measured 8.2 KB held per 513-byte row, +446 MiB of worker RSS in the bench), and
                # one shared tuple of names for every label with the same features
                hit = (names, orjson.Fragment(memoryview(row).tobytes()))
            if keys is None:
                keys = hit[0]
            elif hit[0] is not keys and hit[0] != keys:  # same names, same order: the values line up
                # (one shared tuple almost always: ``is`` spares comparing ~37 names per label)
                return [[lab[0], lab[1], as_dict(lab[2]), *lab[3:]] for lab in self.labels]
            fresh[lab[0]] = hit
            rows.append(hit[1])
        self.packed_rows = fresh  # resolved labels drop out
        return {"k": keys, "v": rows} if rows else []


def _unpack_labels(packed: list[list[Any]] | dict[str, Any]) -> list[list[Any]]:
    """Inverse of :meth:`AccountState._packed_labels` (and the identity on the plain form of older blobs)."""
    if isinstance(packed, list):
        return packed
    keys = shared_names(tuple(packed["k"]))
    out = []
    for v in packed["v"]:
        if len(v[2]) != len(keys):
            raise ValueError(f"label {v[0]}: {len(v[2])} feature values for {len(keys)} names")
        out.append([v[0], v[1], Features(keys, array("d", v[2])), *v[3:]])
    return out
