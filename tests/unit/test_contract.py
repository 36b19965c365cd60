"""Hostile payloads named one by one, the documented examples, and the documented schema differences.

Why examples next to the property tests: each case here is a known attack or producer mistake with the
exact reason operators will see in `dead-letters`; docs/events.md promises these reasons.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import riskmon
from riskmon import contract as c
from riskmon.contract import Purchase, Rejected, decode

DOCS = Path(riskmon.__file__).parent.parent / "docs" / "events.md"
SCHEMA_DIR = Path(riskmon.__file__).parent / "schemas"
REASON_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}: \S")

GOOD = {"event_id": "p1", "ts": "2026-03-01T08:00:00Z", "user_id": "u1", "order_id": "o1", "amount": "12.50",
        "merchant_id": "m1", "category": "home", "channel": "app", "installments": 3}


def purchase(**changes: object) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def reason(raw: bytes | str | None, topic: str = "purchases", **kw: int) -> str:
    result = decode(topic, raw, **kw)
    assert isinstance(result, Rejected), result
    assert REASON_RE.match(result.reason), result.reason
    assert "unexpected validation error" not in result.reason, result.reason
    return result.reason


def test_good_purchase_decodes_exactly() -> None:
    p = decode("purchases", purchase())
    assert p == Purchase("p1", 1_772_352_000_000, "u1", "o1", 1250, "m1", "home", "app", 3)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "payload: malformed JSON"),
    (b"{", "payload: malformed JSON"),
    (b'{"event_id": "p1",}', "payload: malformed JSON"),
    (b"\xef\xbb\xbf{}", "payload: malformed JSON"),
    (b'{"event_id": "p\xff\xfe1"}', "payload: malformed JSON"),
    (b'{"event_id": "\\ud800"}', "payload: malformed JSON"),
    (b'{"amount": NaN}', "payload: malformed JSON"),
    (b'{"amount": Infinity}', "payload: malformed JSON"),
    (b'{"amount": -Infinity}', "payload: malformed JSON"),
    (b'{"amount": 1e400}', "payload: malformed JSON"),
    (b"[1, 2]", "payload: must be a JSON object"),
    (b'"hello"', "payload: must be a JSON object"),
    (b"null", "payload: must be a JSON object"),
    (None, "payload: empty message"),
])
def test_malformed_payloads(raw: bytes | None, expected: str) -> None:
    assert reason(raw).startswith(expected)


def test_lone_surrogate_in_a_python_str_payload() -> None:
    assert reason('{"event_id": "\ud800"}').startswith("payload: malformed JSON")


@pytest.mark.parametrize("depth", [1_025, 30_000, 100_000])
def test_deep_nesting(depth: int) -> None:
    raw = b"[" * depth + b"]" * depth
    assert reason(raw, max_bytes=10**7).startswith("payload: malformed JSON")
    nested = b'{"event_id": ' + raw + b"}"
    assert reason(nested, max_bytes=10**7).startswith("payload: malformed JSON")


def test_oversize_message_is_rejected_before_parsing() -> None:
    raw = purchase(merchant_id="m" * 64) + b" " * c.MAX_MESSAGE_BYTES
    assert reason(raw).startswith("payload: oversize message")
    assert reason("x" * (c.MAX_MESSAGE_BYTES + 1)).startswith("payload: oversize message")
    assert reason(b"[" * 100_000).startswith("payload: oversize message")  # 10^5 levels > 64 KiB


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("amount", "NaN", "amount: must be a plain decimal string"),
    ("amount", "Infinity", "amount: must be a plain decimal string"),
    ("amount", "-Infinity", "amount: must be a plain decimal string"),
    ("amount", 1e308, "amount: out of range"),
    ("amount", 10**30, "amount: out of range"),
    ("amount", 1_000_000_000.01, "amount: out of range"),
    ("amount", 12.345, "amount: more than 2 decimals"),
    ("amount", "12.345", "amount: must be a plain decimal string"),
    ("amount", "1e2", "amount: must be a plain decimal string"),
    ("amount", " 12.50", "amount: must be a plain decimal string"),
    ("amount", "١٢", "amount: must be a plain decimal string"),
    ("amount", 0, "amount: must be > 0"),
    ("amount", "0.00", "amount: must be > 0"),
    ("amount", -5, "amount: must be > 0"),
    ("amount", "-5", "amount: must be a plain decimal string"),
    ("amount", True, "amount: must be a number or decimal string"),
    ("amount", [1], "amount: must be a number or decimal string"),
    ("amount", None, "amount: required"),
    ("amount", ..., "amount: required"),
    ("installments", True, "installments: unknown value"),
    ("installments", 5, "installments: unknown value"),
    ("installments", "3", "installments: unknown value"),
    ("installments", [3], "installments: unknown value"),
    ("channel", "APP", "channel: unknown value"),
    ("channel", {"a": 1}, "channel: unknown value"),
    ("category", True, "category: unknown value"),
    ("ts", "2026-03-01T08:00:00", "ts: must be an RFC 3339 timestamp"),
    ("ts", "2026-03-01T08:00+08:00", "ts: must be an RFC 3339 timestamp"),
    ("ts", "2026-03-01T08:00:00+0800", "ts: must be an RFC 3339 timestamp"),
    ("ts", "2026-02-30T08:00:00Z", "ts: must be an RFC 3339 timestamp"),
    ("ts", "9999-12-31T23:59:59Z", "ts: outside 2000-01-01..2100-01-01"),
    ("ts", "1970-01-01T00:00:00Z", "ts: outside 2000-01-01..2100-01-01"),
    ("ts", "0001-01-01T00:00:00+00:00", "ts: outside 2000-01-01..2100-01-01"),
    ("ts", 1772352000000, "ts: must be an RFC 3339 timestamp"),
    ("user_id", "", "user_id: must be a string"),
    ("user_id", "u1\n", "user_id: must be a string"),
    ("user_id", "x" * 65, "user_id: must be a string"),
    ("user_id", 42, "user_id: must be a string"),
    ("extra", 1, "extra: unknown field"),
    ("", 1, "payload: unknown field with a name"),
    ("k" * 5000, 1, "payload: unknown field with a name"),
])
def test_field_rules(field: str, value: object, expected: str) -> None:
    assert reason(purchase(**{field: value})).startswith(expected)


def test_account_and_metric_rules() -> None:
    acc = {"event_id": "a1", "ts": "2026-03-01T08:00:00Z", "user_id": "u1"}
    assert not isinstance(decode("accounts", json.dumps({**acc, "credit_limit": None})), Rejected)
    assert reason(json.dumps({**acc, "credit_limit": -1}), "accounts") == "credit_limit: must be >= 0"
    assert reason(json.dumps({**acc, "bureau_score": 700.0}), "accounts").startswith("bureau_score: must be an integer")
    assert reason(json.dumps({**acc, "bureau_score": True}), "accounts").startswith("bureau_score: must be an integer")
    assert reason(json.dumps({**acc, "city_tier": 5}), "accounts").startswith("city_tier: must be an integer")
    m = {"event_id": "b1", "ts": "2026-03-01T08:00:00Z", "enterprise_id": "e1", "industry": "retail",
         "metric": "revenue", "value": 1.5}
    assert not isinstance(decode("business-metrics", json.dumps(m)), Rejected)
    assert reason(json.dumps({**m, "value": -1}), "business-metrics") == "value: must be >= 0 for revenue"
    assert not isinstance(decode("business-metrics", json.dumps({**m, "metric": "cash_balance", "value": -1})), Rejected)
    assert reason(json.dumps({**m, "value": "1.5"}), "business-metrics") == "value: must be a number"
    assert reason(json.dumps({**m, "value": True}), "business-metrics") == "value: must be a number"
    assert reason(json.dumps({**m, "value": 1e16}), "business-metrics").startswith("value: must be finite")
    assert reason(b"{}", "nope").startswith("topic: unknown input topic")


def _examples() -> list[tuple[str, str]]:
    return re.findall(r"```json ([a-z-]+)\n(.*?)\n```", DOCS.read_text(), flags=re.S)


def test_docs_have_an_example_per_topic() -> None:
    topics = {t for t, _ in _examples()}
    assert set(c.INPUT_TOPICS) | {"limit-changes", "alerts", "bureau-reports", "dead-letters"} <= topics


@pytest.mark.parametrize(("topic", "text"), _examples())
def test_docs_examples_validate_and_decode(topic: str, text: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{topic}.json").read_text(), parse_float=Decimal)
    doc = json.loads(text, parse_float=Decimal)
    assert not list(Draft202012Validator(schema).iter_errors(doc))
    if topic in c.INPUT_TOPICS:
        assert not isinstance(decode(topic, text), Rejected)
    else:
        from riskmon import outputs
        if topic == "dead-letters":
            inner = json.loads(doc["payload"])
            assert reason(json.dumps({**GOOD, **inner})) == doc["reason"]
        assert topic in outputs.OUTPUT_TOPICS


@pytest.mark.parametrize(("ts", "decode_ok", "schema_ok"), [
    ("1999-12-31T23:00:00-02:00", True, False),   # UTC 2000-01-01T01:00Z: range is checked in UTC
    ("2100-01-01T00:30:00+01:00", True, False),
    ("2026-02-30T08:00:00Z", False, True),        # calendar: pattern cannot tell
])
def test_documented_ts_differences(ts: str, decode_ok: bool, schema_ok: bool) -> None:
    """docs/events.md lists these; if one disappears, update the doc."""
    schema = json.loads((SCHEMA_DIR / "purchases.json").read_text())
    assert (not isinstance(decode("purchases", purchase(ts=ts)), Rejected)) is decode_ok
    assert Draft202012Validator(schema).is_valid(json.loads(purchase(ts=ts))) is schema_ok
