"""Hand-written scenarios for tests: a few named customers doing exactly what a test needs, optionally
on top of simulated background traffic that moves event time on.

Example (the DPD-ladder test: one customer never pays, another pays everything at DPD 10)::

    sc = Scenario(start="2026-03-01")
    sc.account("alice", sc.day(0), limit="5000.00").purchase("alice", sc.day(1), "1200.00", installments=3)
    sc.account("bob", sc.day(0), limit="5000.00").purchase("bob", sc.day(1), "1200.00", installments=3)
    sc.repay_all("bob", sc.day(1 + 30 + 10))       # first installment due day 31: all paid at DPD 10
    sc.background_traffic(users=50, days=120)
    sc.write_jsonl(path); truth = sc.truth()      # truth["users"]["alice"]["default_ts"], ...

Amounts are CNY decimal strings (``"12.50"``) or ``Decimal``; an ``int`` means fen. Times are epoch ms,
RFC 3339 strings, ``datetime`` or a ``timedelta`` from the start. Event ids are deterministic
(``s:<user>:p<n>``...), so the same scenario always produces the same bytes. Ground truth uses the same
ledger rule and definitions as :func:`simulator.simulate`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from riskmon.contract import (
    TOPIC_ACCOUNTS,
    TOPIC_METRICS,
    TOPIC_PURCHASES,
    TOPIC_REPAYMENTS,
    Account,
    Purchase,
    Rejected,
    Repayment,
    decode,
)
from riskmon.eventtime import MS_PER_DAY, MS_PER_HOUR, fmt_ts, parse_ts
from riskmon.money import fmt, to_fen
from simulator.config import SimConfig, start_ms
from simulator.consumers import user_truth
from simulator.faults import make_bad
from simulator.schedule import RepaymentSchedule
from simulator.stream import BAD, DUPLICATE, VALID, Line, Simulation, ledger_defaults, simulate
from simulator.writers import write_lines

Time = int | str | datetime | timedelta
Money = str | Decimal | int


@dataclass(slots=True)
class _Msg:
    ts: int  # emission instant
    event_ts: int  # the event's own ts (differs for duplicates and late sends)
    seq: int
    topic: str
    key: str
    payload: bytes
    raw: bool
    flag: str
    bad: tuple[str, str] | None = None


class Scenario:
    """Builder of a deterministic scenario; every method returns the scenario for chaining."""

    def __init__(self, start: str | int = "2026-03-01", *, default_limit_fen: int | None = None,
                 default_dpd: int | None = None) -> None:
        self.start_ms = start if isinstance(start, int) else start_ms(start)
        pol_limit, pol_dpd = ledger_defaults() if default_limit_fen is None or default_dpd is None else (0, 0)
        self.default_limit_fen = pol_limit if default_limit_fen is None else default_limit_fen
        self.default_dpd = pol_dpd if default_dpd is None else default_dpd
        self._msgs: list[_Msg] = []
        self._by_event: dict[str, _Msg] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._background: Simulation | None = None
        self._end_ms: int | None = None

    # -- time -------------------------------------------------------------------------------------------
    def ts(self, when: Time) -> int:
        """Epoch ms of a time given as ms, RFC 3339, datetime or offset from the start."""
        if isinstance(when, bool):
            raise TypeError("time must not be a bool")
        if isinstance(when, int):
            return when
        if isinstance(when, str):
            return parse_ts(when)
        if isinstance(when, timedelta):
            return self.start_ms + int(when.total_seconds() * 1000)
        if isinstance(when, datetime):
            if when.tzinfo is None:
                raise ValueError("datetime must be timezone-aware")
            return int(when.timestamp() * 1000)
        raise TypeError(f"unsupported time {when!r}")

    def day(self, n: float, hour: float = 12.0) -> int:
        """Epoch ms of ``hour`` (UTC) on day ``n`` after the start (day 0 = start date)."""
        return self.start_ms + int(n * MS_PER_DAY) + int(hour * MS_PER_HOUR)

    def until(self, end: Time) -> Scenario:
        """Fix the end of the scenario window (truth is taken there); default: background end or last event."""
        self._end_ms = self.ts(end)
        return self

    @property
    def end_ms(self) -> int:
        """Exclusive end of the window used for ground truth."""
        if self._end_ms is not None:
            return self._end_ms
        ends = [m.ts + 1 for m in self._msgs]
        if self._background is not None:
            ends.append(self._background.config.end_ms)
        return max(ends) if ends else self.start_ms

    # -- messages ---------------------------------------------------------------------------------------
    def _next_id(self, user: str, kind: str) -> str:
        n = self._counters.get((user, kind), 0) + 1
        self._counters[(user, kind)] = n
        return f"s:{user}:{kind}{n}"

    def _add(self, ts: int, topic: str, key: str, payload: bytes, *, raw: bool = False, flag: str = VALID,
             bad: tuple[str, str] | None = None, event_id: str | None = None, event_ts: int | None = None) -> None:
        msg = _Msg(ts, ts if event_ts is None else event_ts, len(self._msgs), topic, key, payload, raw, flag, bad)
        self._msgs.append(msg)
        if event_id is not None and flag == VALID:
            self._by_event[event_id] = msg

    def send(self, topic: str, key: str, value: dict[str, Any], ts: Time | None = None) -> Scenario:
        """Send any JSON object as-is, emitted at ``ts`` (default: its own ``ts``; later = a late event).

        Whether it counts as valid or bad is decided by the contract decoder."""
        payload = orjson.dumps(value)
        ev = decode(topic, payload)
        if isinstance(ev, Rejected):
            self._add(self.ts(ts) if ts is not None else self.end_ms, topic, key, payload, flag=BAD,
                      bad=("custom", ev.reason.split(":")[0]))
        else:
            self._add(self.ts(ts) if ts is not None else ev.ts, topic, key, payload, event_id=ev.event_id,
                      event_ts=ev.ts)
        return self

    def account(self, user: str, ts: Time, limit: Money | None = None, *, event_id: str | None = None,
                **attrs: Any) -> Scenario:
        """Open (or update) an account; ``limit=None`` sends no credit_limit (the pipeline default applies)."""
        when = self.ts(ts)
        eid = event_id or self._next_id(user, "a")
        value: dict[str, Any] = {"event_id": eid, "ts": fmt_ts(when), "user_id": user}
        if limit is not None:
            value["credit_limit"] = _money(limit)
        value.update(attrs)
        self._add(when, TOPIC_ACCOUNTS, user, orjson.dumps(value), event_id=eid)
        return self

    def purchase(self, user: str, ts: Time, amount: Money, installments: int = 1, *,
                 category: str = "electronics", channel: str = "app", merchant_id: str = "m-scenario",
                 order_id: str | None = None, event_id: str | None = None) -> Scenario:
        """A purchase of ``amount`` in ``installments`` (1, 3, 6, 12 or 24)."""
        when = self.ts(ts)
        eid = event_id or self._next_id(user, "p")
        value = {"event_id": eid, "ts": fmt_ts(when), "user_id": user, "order_id": order_id or f"o{eid[1:]}",
                 "amount": _money(amount), "merchant_id": merchant_id, "category": category,
                 "channel": channel, "installments": installments}
        self._add(when, TOPIC_PURCHASES, user, orjson.dumps(value), event_id=eid)
        return self

    def repay(self, user: str, ts: Time, amount: Money, *, method: str = "bank_transfer",
              event_id: str | None = None) -> Scenario:
        """A repayment of ``amount``."""
        when = self.ts(ts)
        eid = event_id or self._next_id(user, "r")
        value = {"event_id": eid, "ts": fmt_ts(when), "user_id": user, "amount": _money(amount), "method": method}
        self._add(when, TOPIC_REPAYMENTS, user, orjson.dumps(value), event_id=eid)
        return self

    def repay_due(self, user: str, ts: Time, *, method: str = "bank_transfer") -> Scenario:
        """Pay everything due at or before ``ts`` (given the events added so far); no-op if nothing is due."""
        when = self.ts(ts)
        owed = self.schedule(user, until=when).due_by(when)
        return self.repay(user, when, owed, method=method) if owed > 0 else self

    def repay_all(self, user: str, ts: Time, *, method: str = "bank_transfer") -> Scenario:
        """Pay the whole outstanding balance at ``ts`` (given the events added so far)."""
        when = self.ts(ts)
        owed = self.schedule(user, until=when).outstanding
        return self.repay(user, when, owed, method=method) if owed > 0 else self

    def metric(self, enterprise: str, ts: Time, metric: str, value: float, *, industry: str = "retail",
               event_id: str | None = None) -> Scenario:
        """One business metric of an enterprise."""
        when = self.ts(ts)
        eid = event_id or self._next_id(enterprise, "m")
        doc = {"event_id": eid, "ts": fmt_ts(when), "enterprise_id": enterprise, "industry": industry,
               "metric": metric, "value": value}
        self._add(when, TOPIC_METRICS, enterprise, orjson.dumps(doc), event_id=eid)
        return self

    def duplicate(self, event_id: str, delay_ms: int = 60_000) -> Scenario:
        """Re-send an earlier valid message byte for byte, ``delay_ms`` after it."""
        orig = self._by_event[event_id]
        self._add(orig.ts + delay_ms, orig.topic, orig.key, orig.payload, flag=DUPLICATE, event_ts=orig.event_ts)
        return self

    def bad(self, event_id: str, kind: str, delay_ms: int = 1000, seed: int = 0) -> Scenario:
        """Send a contract-breaking variant (``simulator.faults.BAD_KINDS``) of an earlier valid message."""
        orig = self._by_event[event_id]
        n = sum(1 for m in self._msgs if m.flag == BAD) + 1
        msg = make_bad(random.Random(f"{seed}:{event_id}:{kind}:{n}"), orig.topic, orjson.loads(orig.payload),
                       f"x:{event_id}:{n}"[:64], kind)
        self._add(orig.ts + delay_ms, orig.topic, orig.key, msg.payload(), raw=msg.raw is not None, flag=BAD,
                  bad=(msg.kind, msg.field))
        return self

    def raw(self, topic: str, key: str, payload: str, ts: Time) -> Scenario:
        """Send an exact payload string (e.g. malformed JSON)."""
        self._add(self.ts(ts), topic, key, payload.encode("utf-8"), raw=True, flag=BAD, bad=("raw", "payload"))
        return self

    def background_traffic(self, users: int = 50, days: int = 120, *, enterprises: int = 0, seed: int = 0,
                           bad_rate: float = 0.0, dup_rate: float = 0.0, late_rate: float = 0.0,
                           segment_mix: dict[str, float] | None = None, prefix: str = "bg") -> Scenario:
        """Simulated customers (ids ``<prefix>00000``...) over ``days`` from the start, moving time on."""
        kwargs: dict[str, Any] = {"segment_mix": segment_mix} if segment_mix else {}
        cfg = SimConfig(days=days, users=users, enterprises=enterprises, seed=seed,
                        start=fmt_ts(self.start_ms)[:10], bad_rate=bad_rate, dup_rate=dup_rate,
                        late_rate=late_rate, user_prefix=prefix, **kwargs)
        if cfg.start_ms != self.start_ms:
            raise ValueError("background traffic needs a scenario start at 00:00Z")
        self._background = simulate(cfg, self.default_limit_fen, self.default_dpd)
        return self

    # -- results ----------------------------------------------------------------------------------------
    def _lines(self) -> list[Line]:
        own: list[Line] = [(m.ts, 0, m.seq, m.topic, m.key, m.payload, m.flag, m.raw, m.bad) for m in self._msgs]
        if self._background is not None:
            own.extend((ln[0], ln[1] + 1) + ln[2:] for ln in self._background.lines)  # type: ignore[misc]
        own.sort(key=lambda ln: ln[:3])
        return own

    def simulation(self) -> Simulation:
        """The scenario as a :class:`Simulation` (lines in emission order + truth)."""
        return Simulation(self._background.config if self._background else None,  # type: ignore[arg-type]
                          self._lines(), self.truth())

    def lines(self) -> list[dict[str, Any]]:
        """JSONL line objects in emission order."""
        return list(Simulation(None, self._lines()).iter_dicts())  # type: ignore[arg-type]

    def write_jsonl(self, path: str | Path, truth_path: str | Path | None = None) -> int:
        """Write the JSONL file (and the truth file); returns the number of lines."""
        lines = self._lines()
        write_lines(Simulation(None, lines), path)  # type: ignore[arg-type]
        if truth_path is not None:
            Path(truth_path).write_bytes(orjson.dumps(self.truth(), option=orjson.OPT_SORT_KEYS) + b"\n")
        return len(lines)

    def schedule(self, user: str, until: int | None = None) -> RepaymentSchedule:
        """The user's installment schedule after their valid scenario events (up to ``until``, inclusive)."""
        sched = RepaymentSchedule()
        seen: set[str] = set()
        for m in sorted(self._msgs, key=lambda m: (m.event_ts, m.seq)):
            if m.key != user or m.flag != VALID or m.topic not in (TOPIC_PURCHASES, TOPIC_REPAYMENTS):
                continue
            ev = decode(m.topic, m.payload)
            if not isinstance(ev, Purchase | Repayment) or ev.event_id in seen:
                continue
            if until is not None and ev.ts > until:
                continue
            seen.add(ev.event_id)
            if isinstance(ev, Purchase):
                sched.purchase(ev.ts, ev.event_id, ev.amount, ev.installments, ev.order_id)
            else:
                sched.repay(ev.ts, ev.amount)
        return sched

    def truth(self) -> dict[str, Any]:
        """Ground truth of every scenario and background customer at :attr:`end_ms`."""
        end = self.end_ms
        limits: dict[str, int] = {}  # latest credit_limit sent per user (event-time order)
        for a in sorted(self._msgs, key=lambda m: (m.event_ts, m.seq)):
            if a.topic == TOPIC_ACCOUNTS and a.flag == VALID:
                ev = decode(a.topic, a.payload)
                if isinstance(ev, Account) and ev.credit_limit is not None:
                    limits[ev.user_id] = ev.credit_limit
        users: dict[str, Any] = {}
        for m in self._msgs:
            if m.topic == TOPIC_METRICS or m.key in users or m.flag != VALID:
                continue
            limit = limits.get(m.key, self.default_limit_fen)
            sent = m.key in limits
            users[m.key] = user_truth(self.schedule(m.key), end, self.default_dpd, True, segment="scenario",
                                      credit_limit_fen=limit, limit_sent=sent, bust_out_ts=None)
        bad = [{"line": n, "topic": ln[3], "kind": ln[8][0], "field": ln[8][1]}
               for n, ln in enumerate(self._lines()) if ln[6] == BAD and ln[8] is not None]
        truth: dict[str, Any] = {"start_ms": self.start_ms, "end_ms": end,
                                 "rules": {"default_limit_fen": self.default_limit_fen,
                                           "default_dpd": self.default_dpd},
                                 "users": users, "enterprises": [], "bad": bad}
        if self._background is not None:
            truth["users"].update(self._background.truth["users"])
            truth["enterprises"] = self._background.truth["enterprises"]
        return truth


def _money(amount: Money) -> str:
    if isinstance(amount, bool):
        raise TypeError("amount must not be a bool")
    if isinstance(amount, int):
        return fmt(amount)
    return fmt(to_fen(str(amount)))
