"""The wire contract: decode and validate input messages at the edge.

Every input message is checked here before any state changes. A message that breaks the contract is
never raised as an exception into a worker: ``decode`` returns a :class:`Rejected` with a reason that
names the field and the rule, and the agent sends it to ``dead-letters``. The JSON Schema files in
``riskmon/schemas/`` document the same rules for producers (a test keeps the two in agreement).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from riskmon.eventtime import TimeError, parse_ts
from riskmon.money import MoneyError, to_fen

MAX_MESSAGE_BYTES = 65_536
ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
# RFC 3339 date-time with seconds and an offset (Python's fromisoformat alone also takes ISO 8601 forms
# like "08:00+0800", "08:00" without seconds, offsets with seconds, comma fractions). Same pattern as the
# `ts` of riskmon/schemas/*.json; ASCII digits only.
TS_RE = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
# A money string is a plain decimal: no sign, exponent, spaces, underscores or non-ASCII digits, which
# Decimal() would otherwise accept; at most 2 decimals; range and sign are checked by to_fen.
MONEY_STR_RE = re.compile(r"(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?")
# Unknown field names come from the sender: only a short plain name is echoed in the reason.
_FIELD_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

CHANNELS = frozenset({"app", "web", "pos"})
INSTALLMENTS = frozenset({1, 3, 6, 12, 24})
CATEGORIES = frozenset(
    {"electronics", "fashion", "groceries", "travel", "home", "digital", "beauty", "education", "other"}
)
METHODS = frozenset({"bank_transfer", "card", "wallet", "auto_debit"})
INCOME_BANDS = frozenset({"low", "mid", "high", "very_high"})
AGE_BANDS = frozenset({"18-25", "26-35", "36-50", "51+"})
INDUSTRIES = frozenset(
    {"retail", "manufacturing", "logistics", "hospitality", "software", "agriculture", "construction",
     "healthcare"}
)
METRICS = frozenset({"revenue", "cash_balance", "receivables_days", "order_count", "payroll"})

TOPIC_ACCOUNTS = "accounts"
TOPIC_PURCHASES = "purchases"
TOPIC_REPAYMENTS = "repayments"
TOPIC_METRICS = "business-metrics"
INPUT_TOPICS = (TOPIC_ACCOUNTS, TOPIC_PURCHASES, TOPIC_REPAYMENTS, TOPIC_METRICS)


@dataclass(slots=True, frozen=True)
class Account:
    """An account opened or updated (credit limit in fen; None = configured default)."""

    event_id: str
    ts: int
    user_id: str
    credit_limit: int | None
    income_band: str | None = None
    age_band: str | None = None
    bureau_score: int | None = None
    city_tier: int | None = None


@dataclass(slots=True, frozen=True)
class Purchase:
    """An installment purchase (amount in fen)."""

    event_id: str
    ts: int
    user_id: str
    order_id: str
    amount: int
    merchant_id: str
    category: str
    channel: str
    installments: int


@dataclass(slots=True, frozen=True)
class Repayment:
    """A repayment (amount in fen)."""

    event_id: str
    ts: int
    user_id: str
    amount: int
    method: str


@dataclass(slots=True, frozen=True)
class BusinessMetric:
    """One daily business metric of an enterprise (value is a measurement, not a ledger amount)."""

    event_id: str
    ts: int
    enterprise_id: str
    industry: str
    metric: str
    value: float


Event = Account | Purchase | Repayment | BusinessMetric


@dataclass(slots=True, frozen=True)
class Rejected:
    """A message that breaks the contract; ``reason`` is ``"<field>: <rule>"``."""

    reason: str


class _Invalid(Exception):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")


def _obj(doc: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = set(doc) - allowed
    if extra:
        name = sorted(extra)[0]
        if _FIELD_NAME_RE.fullmatch(name):
            raise _Invalid(name, "unknown field")
        raise _Invalid("payload", "unknown field with a name that is empty, too long or not [A-Za-z0-9_.-]")


def _id(doc: dict[str, Any], field: str) -> str:
    v = doc.get(field)
    if v is None:
        raise _Invalid(field, "required")
    if not isinstance(v, str) or not ID_RE.fullmatch(v):
        raise _Invalid(field, "must be a string of 1-64 characters [A-Za-z0-9_.:-]")
    return v


def _enum(doc: dict[str, Any], field: str, allowed: frozenset, required: bool = True) -> Any:
    v = doc.get(field)
    if v is None:
        if required:
            raise _Invalid(field, "required")
        return None
    if not isinstance(v, str) or v not in allowed:
        raise _Invalid(field, f"unknown value (allowed: {', '.join(map(str, sorted(allowed)))})")
    return v


def _ts(doc: dict[str, Any]) -> int:
    if "ts" not in doc:
        raise _Invalid("ts", "required")
    if isinstance(doc["ts"], str) and not TS_RE.fullmatch(doc["ts"]):
        raise _Invalid("ts", "must be an RFC 3339 timestamp like 2026-03-01T08:00:00Z (seconds and offset required)")
    try:
        return parse_ts(doc["ts"])
    except TimeError as exc:
        raise _Invalid("ts", str(exc)) from None


def _money(doc: dict[str, Any], field: str, positive: bool = True) -> int:
    if field not in doc or doc[field] is None:
        raise _Invalid(field, "required")
    if isinstance(doc[field], str) and not MONEY_STR_RE.fullmatch(doc[field]):
        raise _Invalid(field, "must be a plain decimal string like 12.50 (digits, at most 2 decimals)")
    try:
        fen = to_fen(doc[field])
    except MoneyError as exc:
        raise _Invalid(field, str(exc)) from None
    if positive and fen <= 0:
        raise _Invalid(field, "must be > 0")
    if not positive and fen < 0:
        raise _Invalid(field, "must be >= 0")
    return fen


def _int(doc: dict[str, Any], field: str, lo: int, hi: int) -> int | None:
    v = doc.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _Invalid(field, f"must be an integer in {lo}..{hi}")
    return v


_ACCOUNT_FIELDS = frozenset(
    {"event_id", "ts", "user_id", "credit_limit", "income_band", "age_band", "bureau_score", "city_tier"}
)
_PURCHASE_FIELDS = frozenset(
    {"event_id", "ts", "user_id", "order_id", "amount", "merchant_id", "category", "channel", "installments"}
)
_REPAYMENT_FIELDS = frozenset({"event_id", "ts", "user_id", "amount", "method"})
_METRIC_FIELDS = frozenset({"event_id", "ts", "enterprise_id", "industry", "metric", "value"})


def _account(d: dict[str, Any]) -> Account:
    _obj(d, _ACCOUNT_FIELDS)
    limit = _money(d, "credit_limit", positive=False) if d.get("credit_limit") is not None else None
    return Account(
        event_id=_id(d, "event_id"),
        ts=_ts(d),
        user_id=_id(d, "user_id"),
        credit_limit=limit,
        income_band=_enum(d, "income_band", INCOME_BANDS, required=False),
        age_band=_enum(d, "age_band", AGE_BANDS, required=False),
        bureau_score=_int(d, "bureau_score", 300, 900),
        city_tier=_int(d, "city_tier", 1, 4),
    )


def _purchase(d: dict[str, Any]) -> Purchase:
    _obj(d, _PURCHASE_FIELDS)
    inst = d.get("installments")
    if inst is None:
        raise _Invalid("installments", "required")
    if isinstance(inst, bool) or not isinstance(inst, int | float) or inst not in INSTALLMENTS:
        raise _Invalid("installments", "unknown value (allowed: 1, 3, 6, 12, 24)")
    return Purchase(
        event_id=_id(d, "event_id"),
        ts=_ts(d),
        user_id=_id(d, "user_id"),
        order_id=_id(d, "order_id"),
        amount=_money(d, "amount"),
        merchant_id=_id(d, "merchant_id"),
        category=_enum(d, "category", CATEGORIES),
        channel=_enum(d, "channel", CHANNELS),
        installments=int(inst),
    )


def _repayment(d: dict[str, Any]) -> Repayment:
    _obj(d, _REPAYMENT_FIELDS)
    return Repayment(
        event_id=_id(d, "event_id"),
        ts=_ts(d),
        user_id=_id(d, "user_id"),
        amount=_money(d, "amount"),
        method=_enum(d, "method", METHODS),
    )


def _metric(d: dict[str, Any]) -> BusinessMetric:
    _obj(d, _METRIC_FIELDS)
    v = d.get("value")
    if v is None:
        raise _Invalid("value", "required")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Invalid("value", "must be a number")
    fv = float(v)
    if not math.isfinite(fv) or abs(fv) > 1e15:
        raise _Invalid("value", "must be finite and within +-1e15")
    metric = _enum(d, "metric", METRICS)
    if metric != "cash_balance" and fv < 0:
        raise _Invalid("value", f"must be >= 0 for {metric}")
    return BusinessMetric(
        event_id=_id(d, "event_id"),
        ts=_ts(d),
        enterprise_id=_id(d, "enterprise_id"),
        industry=_enum(d, "industry", INDUSTRIES),
        metric=metric,
        value=fv,
    )


_DECODERS = {
    TOPIC_ACCOUNTS: _account,
    TOPIC_PURCHASES: _purchase,
    TOPIC_REPAYMENTS: _repayment,
    TOPIC_METRICS: _metric,
}


def decode(topic: str, raw: bytes | str | None, max_bytes: int = MAX_MESSAGE_BYTES) -> Event | Rejected:
    """Decode one raw message of an input topic into a typed event, or say why it is rejected.

    Never raises for any input: that is what keeps a poison message from crashing a worker.

    >>> decode("repayments", b'{"event_id":"r1","ts":"2026-03-01T08:00:00Z","user_id":"u1","amount":"10.5","method":"card"}').amount
    1050
    >>> decode("repayments", b'{"event_id":"r1"}').reason
    'ts: required'
    """
    try:
        decoder = _DECODERS.get(topic)
        if decoder is None:
            return Rejected(f"topic: unknown input topic {topic!r}")
        if raw is None:
            return Rejected("payload: empty message")
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        if len(raw) > max_bytes:
            return Rejected(f"payload: oversize message ({len(raw)} bytes > {max_bytes})")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            msg = str(exc).split(":")[0]
            return Rejected(f"payload: malformed JSON ({msg})")
        if not isinstance(doc, dict):
            return Rejected("payload: must be a JSON object")
        return decoder(doc)
    except _Invalid as exc:
        return Rejected(str(exc))
    except RecursionError:
        return Rejected("payload: nesting too deep")
    except Exception as exc:  # noqa: BLE001 - the edge must never crash a worker
        return Rejected(f"payload: unexpected validation error {type(exc).__name__}")


def subject_of(event: Event) -> str:
    """The partition key of an event: user_id or enterprise_id."""
    return event.enterprise_id if isinstance(event, BusinessMetric) else event.user_id
