"""Bad input: messages that break the wire contract on purpose, one kind at a time.

Why one rule per message: the pipeline must dead-letter each with a reason naming the field and the
rule, and the ground truth records which rule each bad line breaks so a test can check the reason.
Every bad message is derived from a real event of the run (same topic and key) so it lands on the same
partition and looks plausible, but carries its own ``event_id`` so it never shadows a valid event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from riskmon.contract import (
    MAX_MESSAGE_BYTES,
    TOPIC_ACCOUNTS,
    TOPIC_METRICS,
    TOPIC_PURCHASES,
    TOPIC_REPAYMENTS,
)

BAD_KINDS = (
    "malformed_json",  # not parseable JSON (raw line form)
    "not_object",  # valid JSON that is not an object (raw line form)
    "missing_field",  # a required field left out
    "wrong_type",  # a field of the wrong JSON type
    "unknown_enum",  # a value outside an enum
    "unknown_field",  # an extra field the contract does not know
    "invalid_id",  # an id breaking the id rule
    "nonpositive_amount",  # amount zero or negative (credit_limit / revenue negative)
    "three_decimals",  # money with more than two decimals
    "oversize",  # payload larger than the 64 KiB limit
    "bad_ts",  # ts not RFC 3339 with an offset, or outside 2000..2100
)

REQUIRED: dict[str, tuple[str, ...]] = {
    TOPIC_ACCOUNTS: ("event_id", "ts", "user_id"),
    TOPIC_PURCHASES: ("event_id", "ts", "user_id", "order_id", "amount", "merchant_id", "category", "channel",
                      "installments"),
    TOPIC_REPAYMENTS: ("event_id", "ts", "user_id", "amount", "method"),
    TOPIC_METRICS: ("event_id", "ts", "enterprise_id", "industry", "metric", "value"),
}

_WRONG_TYPES: dict[str, tuple[tuple[str, Any], ...]] = {
    TOPIC_ACCOUNTS: (("event_id", 12345), ("ts", 1772352000000), ("user_id", ["u1"]), ("bureau_score", "700"),
                     ("city_tier", 2.5), ("credit_limit", True)),
    TOPIC_PURCHASES: (("event_id", 12345), ("ts", 1772352000000), ("user_id", 42), ("amount", {"cny": 1}),
                      ("installments", "3"), ("merchant_id", 3.14)),
    TOPIC_REPAYMENTS: (("event_id", 12345), ("ts", 1772352000000), ("user_id", 42), ("amount", [10]),
                       ("amount", False)),
    TOPIC_METRICS: (("event_id", 12345), ("ts", 1772352000000), ("enterprise_id", 7), ("value", "12.5"),
                    ("value", True)),
}

_UNKNOWN_ENUMS: dict[str, tuple[tuple[str, Any], ...]] = {
    TOPIC_ACCOUNTS: (("income_band", "ultra"), ("age_band", "12-17")),
    TOPIC_PURCHASES: (("category", "weapons"), ("channel", "fax"), ("installments", 5), ("installments", 36)),
    TOPIC_REPAYMENTS: (("method", "cash"), ("method", "crypto")),
    TOPIC_METRICS: (("industry", "mining"), ("metric", "ebitda")),
}

_ID_FIELDS: dict[str, tuple[str, ...]] = {
    TOPIC_ACCOUNTS: ("event_id", "user_id"),
    TOPIC_PURCHASES: ("event_id", "user_id", "order_id", "merchant_id"),
    TOPIC_REPAYMENTS: ("event_id", "user_id"),
    TOPIC_METRICS: ("event_id", "enterprise_id"),
}
_BAD_IDS = ("user 17", "x" * 65, "", "订单42", "a/b")

_BAD_TS = (
    "1999-12-31T23:59:59Z",  # before 2000
    "2100-01-01T00:00:01Z",  # after 2100
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-03-01 08:00:00Z",  # space instead of T
    "2026-03-01T08:00:00",  # no offset
    "01/03/2026 08:00:00",
    "2026-13-01T08:00:00Z",  # month 13
    "yesterday",
)

# (field, bad value) per topic; metrics have no money field (their values may carry any decimals)
_NONPOSITIVE: dict[str, tuple[tuple[str, Any], ...]] = {
    TOPIC_ACCOUNTS: (("credit_limit", "-100.00"), ("credit_limit", -1)),
    TOPIC_PURCHASES: (("amount", "0.00"), ("amount", "-15.20"), ("amount", 0), ("amount", -3)),
    TOPIC_REPAYMENTS: (("amount", "0"), ("amount", "-0.01"), ("amount", -250.5)),
    TOPIC_METRICS: (("value", -5.0),),
}
_THREE_DECIMALS: dict[str, tuple[tuple[str, Any], ...]] = {
    TOPIC_ACCOUNTS: (("credit_limit", "1000.005"),),
    TOPIC_PURCHASES: (("amount", "12.345"), ("amount", 99.999)),
    TOPIC_REPAYMENTS: (("amount", "0.001"), ("amount", 10.125)),
}


@dataclass(frozen=True, slots=True)
class BadMessage:
    """One contract-breaking message: a JSON object ``value`` or, for unparseable payloads, ``raw``."""

    kind: str
    field: str  # the field named in the expected rejection reason ("payload" for payload-level rules)
    value: dict[str, Any] | None = None
    raw: str | None = None

    def payload(self) -> bytes:
        """The exact bytes a producer sends."""
        return self.raw.encode("utf-8") if self.raw is not None else orjson.dumps(self.value)


def kinds_for(topic: str) -> tuple[str, ...]:
    """The bad kinds that make sense on a topic."""
    if topic == TOPIC_METRICS:
        return tuple(k for k in BAD_KINDS if k != "three_decimals")
    return BAD_KINDS


def make_bad(rng: random.Random, topic: str, template: dict[str, Any], event_id: str,
             kind: str | None = None) -> BadMessage:
    """Derive a bad message of ``kind`` (or a random applicable kind) from a valid event value."""
    kind = kind or rng.choice(kinds_for(topic))
    doc = dict(template)
    doc["event_id"] = event_id
    if kind == "malformed_json":
        text = orjson.dumps(doc).decode()
        style = rng.randrange(3)
        if style == 0:
            raw = text[: rng.randrange(1, len(text) - 1)]  # truncated mid-message
        elif style == 1:
            raw = text[:-1] + ",}"  # trailing comma
        else:
            raw = text.replace('"', "'")  # Python-style quotes
        return BadMessage(kind, "payload", raw=raw)
    if kind == "not_object":
        raw = rng.choice(("[1,2,3]", "null", '"purchase"', "42", "[" + orjson.dumps(doc).decode() + "]"))
        return BadMessage(kind, "payload", raw=raw)
    if kind == "missing_field":
        field = rng.choice(REQUIRED[topic])
        doc.pop(field, None)
        return BadMessage(kind, field, value=doc)
    if kind == "oversize":
        doc["padding"] = "x" * (MAX_MESSAGE_BYTES + rng.randrange(1, 4096))
        return BadMessage(kind, "payload", value=doc)
    if kind == "unknown_field":
        field = rng.choice(("coupon_code", "promo", "debug", "userId"))
        doc[field] = "X1"
        return BadMessage(kind, field, value=doc)
    if kind == "invalid_id":
        field = rng.choice(_ID_FIELDS[topic])
        doc[field] = rng.choice(_BAD_IDS)
        return BadMessage(kind, field, value=doc)
    if kind == "bad_ts":
        doc["ts"] = rng.choice(_BAD_TS)
        return BadMessage(kind, "ts", value=doc)
    table = {"wrong_type": _WRONG_TYPES, "unknown_enum": _UNKNOWN_ENUMS, "nonpositive_amount": _NONPOSITIVE,
             "three_decimals": _THREE_DECIMALS}[kind]
    field, bad = rng.choice(table[topic])
    doc[field] = bad
    if kind == "nonpositive_amount" and topic == TOPIC_METRICS:
        doc["metric"] = "revenue"  # cash_balance may be negative; revenue may not
    return BadMessage(kind, field, value=doc)
