"""Property tests: hostile payloads never crash ``decode``, and ``decode`` agrees with the JSON Schemas.

Why hypothesis: the edge of the system reads bytes written by anybody. Example tests cover the cases we
thought of; generated messages (valid ones, and valid ones with a few random mutations) cover the
combinations we did not. The schema side is validated the way a careful producer would: numbers are
read as exact decimals (``parse_float=Decimal``, so ``multipleOf: 0.01`` is exact rather than binary
floating point) and ``pattern`` uses ECMA-262 semantics (``$`` = end of input, not "before a final
newline" as in Python's ``re``). Deliberate differences are listed in docs/events.md and are not
generated here: impossible calendar dates, timestamps within a day of the 2000/2100 range edges, and
number literals with more than 15 significant digits.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError, validators

import riskmon
from riskmon import contract as c
from riskmon import outputs as o

SCHEMA_DIR = Path(riskmon.__file__).parent / "schemas"
REASON_RE = re.compile(r"^(?P<field>[A-Za-z0-9_.\-]{1,64}): \S")
NUM = "\u0000num{}\u0000"  # placeholder for a raw JSON number literal spliced into the text


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Any:
    """``pattern`` with ECMA-262 ``$`` (end of input); Python's ``$`` also matches before a final newline."""
    if isinstance(instance, str) and not re.search(pattern.replace("$", r"\Z"), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def load_validator(name: str) -> Draft202012Validator:
    """The topic's schema with exact decimal numbers, checked against the 2020-12 meta-schema."""
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text(), parse_float=Decimal)
    Draft202012Validator.check_schema(schema)
    return EcmaValidator(schema)


VALIDATORS = {name: load_validator(name) for name in c.INPUT_TOPICS}


def _no_constants(name: str) -> Any:
    raise ValueError(f"JSON has no {name}")


def schema_accepts(topic: str, raw: bytes) -> bool:
    """Does a strict JSON parser + the topic's schema accept the message?"""
    if len(raw) > c.MAX_MESSAGE_BYTES:
        return False
    try:
        doc = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constants)
    except ValueError:
        return False
    with localcontext(prec=1000):  # exact multipleOf for 30-digit integers too (default precision is 28)
        return VALIDATORS[topic].is_valid(doc)


def render(doc: Any) -> bytes:
    """Serialise ``doc``; values of type :class:`Raw` are spliced in as raw JSON number literals."""
    literals: list[str] = []

    def default(v: Any) -> str:
        if isinstance(v, Raw):
            literals.append(v.text)
            return NUM.format(len(literals) - 1)
        raise TypeError(type(v))

    text = json.dumps(doc, default=default, ensure_ascii=False)
    for i, lit in enumerate(literals):
        text = text.replace(json.dumps(NUM.format(i)), lit)
    return text.encode("utf-8", "surrogatepass")


class Raw:
    """A JSON number literal exactly as a producer wrote it (``12.50``, ``1e2``, ``-0``...)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text})"


# ---------------------------------------------------------------- strategies of valid messages
ids = st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=64)
offsets = st.one_of(
    st.just("Z"),
    st.builds(lambda m: (timezone(timedelta(minutes=m)).tzname(None)[3:] or "+00:00"),
              st.integers(-23 * 60 - 59, 23 * 60 + 59)),
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 times safely inside 2000..2100 UTC, with any offset and 0-9 fraction digits."""
    utc = draw(st.datetimes(min_value=datetime(2000, 1, 3), max_value=datetime(2099, 12, 29)))
    off = draw(offsets)
    tz = UTC if off == "Z" else timezone(timedelta(hours=int(off[:3]), minutes=int(off[0] + off[4:])))
    local = utc.replace(tzinfo=UTC).astimezone(tz)
    frac = draw(st.sampled_from(["", ".5", ".123", ".123456", ".123456789"]))
    sep = draw(st.sampled_from(["T", "T", "t"]))
    return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + off


positive_money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**9), places=2)
nonneg_money = st.decimals(min_value=Decimal(0), max_value=Decimal(10**9), places=2)


@st.composite
def money(draw: st.DrawFn, values: st.SearchStrategy[Decimal]) -> Any:
    """One amount as a JSON number literal or a decimal string, written with 0, 1 or 2 decimals."""
    d = draw(values)
    min_places = 0 if d % 1 == 0 else (1 if (d * 10) % 1 == 0 else 2)
    places = draw(st.integers(min_places, 2))
    text = format(d.quantize(Decimal(1).scaleb(-places)), "f")
    return draw(st.sampled_from([Raw(text), text]))


def account_docs() -> st.SearchStrategy[dict[str, Any]]:
    opt = lambda s: st.one_of(st.none(), s)  # noqa: E731 - local shorthand
    return st.fixed_dictionaries(
        {"event_id": ids, "ts": timestamps(), "user_id": ids},
        optional={
            "credit_limit": opt(money(nonneg_money)),
            "income_band": opt(st.sampled_from(sorted(c.INCOME_BANDS))),
            "age_band": opt(st.sampled_from(sorted(c.AGE_BANDS))),
            "bureau_score": opt(st.integers(300, 900)),
            "city_tier": opt(st.integers(1, 4)),
        },
    )


def purchase_docs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "event_id": ids, "ts": timestamps(), "user_id": ids, "order_id": ids,
        "amount": money(positive_money), "merchant_id": ids,
        "category": st.sampled_from(sorted(c.CATEGORIES)), "channel": st.sampled_from(sorted(c.CHANNELS)),
        "installments": st.sampled_from(sorted(c.INSTALLMENTS)),
    })


def repayment_docs() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "event_id": ids, "ts": timestamps(), "user_id": ids, "amount": money(positive_money),
        "method": st.sampled_from(sorted(c.METHODS)),
    })


@st.composite
def metric_docs(draw: st.DrawFn) -> dict[str, Any]:
    metric = draw(st.sampled_from(sorted(c.METRICS)))
    lo = -(10**15) if metric == "cash_balance" else 0
    value = draw(st.one_of(
        st.integers(lo, 10**15),
        st.decimals(min_value=lo, max_value=10**15, places=2).map(lambda d: Raw(format(d, "f"))),
        st.floats(min_value=lo, max_value=1e15, allow_nan=False).map(lambda f: Raw(repr(f))),
    ))
    return {"event_id": draw(ids), "ts": draw(timestamps()), "enterprise_id": draw(ids),
            "industry": draw(st.sampled_from(sorted(c.INDUSTRIES))), "metric": metric, "value": value}


VALID = {
    c.TOPIC_ACCOUNTS: account_docs(),
    c.TOPIC_PURCHASES: purchase_docs(),
    c.TOPIC_REPAYMENTS: repayment_docs(),
    c.TOPIC_METRICS: metric_docs(),
}
FIELDS = {
    c.TOPIC_ACCOUNTS: c._ACCOUNT_FIELDS, c.TOPIC_PURCHASES: c._PURCHASE_FIELDS,
    c.TOPIC_REPAYMENTS: c._REPAYMENT_FIELDS, c.TOPIC_METRICS: c._METRIC_FIELDS,
}

# ---------------------------------------------------------------- hostile values
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda f: Raw(repr(f))),
    st.text(max_size=20),
)
json_values = st.recursive(json_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)), max_leaves=6)
bad_number_literals = st.sampled_from([
    "12.345", "0.001", "1e-7", "0", "-0", "-0.0", "-5", "-0.01", "1000000000.01", "1e9", "1e10", "1E2",
    "123456789012345678901234567890", "1e308", "2.5e-3", "99.990", "100.0", "700.0", "7E2", "6.0", "3e0",
])
bad_money_strings = st.sampled_from([
    "12.345", "0.001", " 12.50", "12.50 ", "+5", "-5", "-0", "0", "0.00", "00.5", "012", ".5", "5.", "1e2",
    "1E+2", "1_000", "NaN", "nan", "Infinity", "-Infinity", "inf", "0x10", "١٢", "１２", "12,50", "",
    "1000000000.01", "1000000000", "999999999.99", "9" * 40, "12.5\n",
])
bad_timestamps = st.sampled_from([
    "2026-03-01T08:00:00", "2026-03-01 08:00:00Z", "2026-03-01T08:00Z", "2026-03-01T08:00:00z",
    "2026-03-01T08:00:00+0800", "2026-03-01T08:00:00+08:00:30", "2026-03-01T08:00:00,5Z",
    "2026-03-01T24:00:00Z", "2026-03-01T08:00:60Z", "2026-03-01T08:00:00+24:00", "1970-01-01T00:00:00Z",
    "1999-06-01T00:00:00Z", "2101-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "2026-03-01T08:00:00.1234567890Z", "2026-03-01T08:00:00Z\n", "2026-03-01", "1772352000000",
    "٢٠٢٦-03-01T08:00:00Z", "2026-03-01T08:00:00+08", "", "now",
])
bad_ids = st.sampled_from(["", "x" * 65, "a b", "a\n", "ü", "a/b", "a\u0000", "\ud800", "é" * 10, "a,b"])


@st.composite
def mutated(draw: st.DrawFn, topic: str) -> tuple[dict[str, Any], list[str]]:
    """A valid message of ``topic`` with 1-3 random contract-relevant mutations (and their log)."""
    doc = dict(draw(VALID[topic]))
    allowed = sorted(FIELDS[topic])
    log = []
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(allowed))
        kind = draw(st.sampled_from(
            ["drop", "null", "any", "number", "money_str", "ts", "id", "unknown_field", "enum", "bool"]))
        log.append(f"{kind}:{field}")
        if kind == "drop":
            doc.pop(field, None)
        elif kind == "null":
            doc[field] = None
        elif kind == "any":
            doc[field] = draw(json_values)
        elif kind == "number":
            doc[field] = Raw(draw(bad_number_literals))
        elif kind == "money_str":
            doc[field] = draw(bad_money_strings)
        elif kind == "ts":
            doc[field] = draw(bad_timestamps)
        elif kind == "id":
            doc[field] = draw(bad_ids)
        elif kind == "unknown_field":
            doc[draw(st.sampled_from(["extra", "amount_cents", "Event_id", "user-id", "", "ts "]))] = 1
        elif kind == "enum":
            doc[field] = draw(st.sampled_from(["APP", "Card", "unknown", "other ", "51-", "x", "6", "1"]))
        else:
            doc[field] = draw(st.booleans())
    return doc, log


def assert_reason_well_formed(result: object, doc_keys: set[str] | None, topic: str) -> None:
    assert isinstance(result, c.Rejected), result
    m = REASON_RE.match(result.reason)
    assert m, f"reason not '<field>: <rule>': {result.reason!r}"
    assert "unexpected validation error" not in result.reason, result.reason
    known = set(FIELDS.get(topic, ())) | {"payload", "topic"} | (doc_keys or set())
    assert m["field"] in known, result.reason


TOPICS = st.sampled_from(c.INPUT_TOPICS)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- properties
@FAST
@given(st.data())
def test_valid_messages_decode_and_validate(data: st.DataObject) -> None:
    topic = data.draw(TOPICS)
    doc = data.draw(VALID[topic])
    raw = render(doc)
    result = c.decode(topic, raw)
    assert not isinstance(result, c.Rejected), (raw, result)
    assert schema_accepts(topic, raw), raw
    assert {f.name for f in fields(result)} >= {"event_id", "ts"}
    for name in ("amount", "credit_limit"):
        if doc.get(name) is not None:
            text = doc[name].text if isinstance(doc[name], Raw) else doc[name]
            assert getattr(result, name) == int(Decimal(text) * 100)  # exact fen, no float drift
    expected_ms = datetime.fromisoformat(doc["ts"]).timestamp() * 1000
    assert abs(result.ts - expected_ms) < 1, (doc["ts"], result.ts)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_decode_agrees_with_schema_on_mutated_messages(data: st.DataObject) -> None:
    topic = data.draw(TOPICS)
    doc, log = data.draw(mutated(topic))
    raw = render(doc)
    result = c.decode(topic, raw)
    accepted = not isinstance(result, c.Rejected)
    assert accepted == schema_accepts(topic, raw), (log, raw, result)
    if not accepted:
        assert_reason_well_formed(result, set(doc), topic)


@FAST
@given(TOPICS, st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, raw: bytes) -> None:
    result = c.decode(topic, raw)
    assert_reason_well_formed(result, None, topic)  # random bytes are never a valid message


@FAST
@given(TOPICS, st.text(max_size=200))
def test_arbitrary_text_including_lone_surrogates_never_raises(topic: str, raw: str) -> None:
    result = c.decode(topic, raw)
    if isinstance(result, c.Rejected):
        assert_reason_well_formed(result, None, topic)


@FAST
@given(TOPICS, json_values)
def test_arbitrary_json_values_never_raise(topic: str, value: Any) -> None:
    raw = render(value)
    result = c.decode(topic, raw)
    assert isinstance(result, c.Rejected)
    keys = set(orjson.loads(raw)) if raw.startswith(b"{") else set()
    assert_reason_well_formed(result, keys, topic)


@FAST
@given(st.data())
def test_arbitrary_field_values_never_raise(data: st.DataObject) -> None:
    topic = data.draw(TOPICS)
    doc = dict(data.draw(VALID[topic]))
    doc[data.draw(st.sampled_from(sorted(FIELDS[topic])))] = data.draw(json_values)
    result = c.decode(topic, render(doc))
    if isinstance(result, c.Rejected):
        assert_reason_well_formed(result, set(doc), topic)


@FAST
@given(st.data(), st.text(min_size=0, max_size=80))
def test_unknown_field_names_are_rejected_with_a_bounded_reason(data: st.DataObject, name: str) -> None:
    topic = data.draw(TOPICS)
    assume(name not in FIELDS[topic])
    doc = dict(data.draw(VALID[topic]))
    doc[name] = 1
    result = c.decode(topic, render(doc))
    assert isinstance(result, c.Rejected)
    assert result.reason.endswith("unknown field") or "unknown field" in result.reason, result.reason
    assert len(result.reason) < 120
    assert_reason_well_formed(result, set(doc), topic)


# ---------------------------------------------------------------- output records match their schemas
OUT_VALIDATORS = {name: load_validator(name) for name in (
    o.TOPIC_LIMIT_CHANGES, o.TOPIC_ALERTS, o.TOPIC_BUREAU, o.TOPIC_DEAD_LETTERS, o.TOPIC_DECISIONS,
    o.TOPIC_DPD, o.TOPIC_MODEL_METRICS, o.TOPIC_ENTERPRISE_HEALTH, o.TOPIC_REPAYMENTS_APPLIED)}
ts_ms = st.integers(c.parse_ts("2000-01-01T00:00:00Z"), c.parse_ts("2099-12-31T00:00:00Z"))
fen = st.integers(0, 10**11)
unit = st.floats(0, 1, allow_nan=False)


def _check_output(topic: str, record: dict[str, Any]) -> None:
    doc = json.loads(orjson.dumps(record), parse_float=Decimal)
    errors = [e.message for e in OUT_VALIDATORS[topic].iter_errors(doc)]
    assert not errors, (topic, record, errors)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_output_records_match_their_schemas(data: st.DataObject) -> None:
    d = data.draw
    _check_output(o.TOPIC_LIMIT_CHANGES, o.limit_change(
        ts=d(ts_ms), user_id=d(ids), action=d(st.sampled_from(["initial", "raise", "lower", "freeze", "unfreeze"])),
        old_limit=d(fen), new_limit=d(fen), reason_codes=d(st.lists(st.text(max_size=8), max_size=3)),
        score=d(st.one_of(st.none(), unit)), grade=d(st.one_of(st.none(), st.sampled_from("ABCDE"))),
        model_version=d(st.one_of(st.none(), st.text(max_size=8))), cause_id=d(ids)))
    _check_output(o.TOPIC_ALERTS, o.alert(
        ts=d(ts_ms), kind=d(st.sampled_from(["dpd", "anomaly", "ews"])), severity=d(st.sampled_from(o.SEVERITIES)),
        subject_type=d(st.sampled_from(["user", "enterprise"])), subject_id=d(ids), dedup_key=d(ids),
        summary=d(st.text(max_size=30)), details=d(st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3))))
    _check_output(o.TOPIC_BUREAU, o.bureau_report(
        ts=d(ts_ms), user_id=d(ids), outstanding=d(fen), dpd=d(st.integers(90, 400)),
        first_due_unpaid=d(ts_ms), episode_id=d(ids)))
    payload = d(st.one_of(st.none(), st.binary(max_size=5000)))
    _check_output(o.TOPIC_DEAD_LETTERS, o.dead_letter(
        topic=d(TOPICS), partition=d(st.integers(0, 63)), offset=d(st.integers(0, 2**40)), payload=payload,
        reason=c.decode("purchases", payload).reason if payload is not None else "payload: empty message"))
    _check_output(o.TOPIC_DECISIONS, o.decision(
        event_id=d(ids), ts=d(ts_ms), user_id=d(ids), order_id=d(ids), amount=d(fen),
        channel=d(st.sampled_from(sorted(c.CHANNELS))), category=d(st.sampled_from(sorted(c.CATEGORIES))),
        installments=d(st.sampled_from(sorted(c.INSTALLMENTS))), pd=d(unit), anomaly=d(unit), grade="B",
        apr_bps=d(st.integers(0, 3600)), model_version="m1", utilisation=d(st.floats(0, 5)),
        approved_within_limit=d(st.booleans())))
    dpd, prev = d(st.integers(0, 400)), d(st.integers(0, 400))
    _check_output(o.TOPIC_DPD, o.dpd_snapshot(ts=d(ts_ms), user_id=d(ids), dpd=dpd, prev_dpd=prev,
                                               outstanding=d(fen), overdue=d(fen)))
    _check_output(o.TOPIC_MODEL_METRICS, o.model_metric(
        ts=d(ts_ms), model="default", model_version="v1", n_labels=d(st.integers(0, 10**6)), auc=d(unit),
        logloss=d(st.floats(0, 10)), positives=d(st.integers(0, 1000)), worker="w1"))
    _check_output(o.TOPIC_ENTERPRISE_HEALTH, o.enterprise_health(
        ts=d(ts_ms), enterprise_id=d(ids), industry=d(st.sampled_from(sorted(c.INDUSTRIES))), grade="BB",
        health_score=d(unit), open_signals=d(st.lists(st.text(max_size=6), max_size=3)),
        watchlist=d(st.booleans()), recommendation="monitor"))
    _check_output(o.TOPIC_REPAYMENTS_APPLIED, o.repayment_applied(
        event_id=d(ids), ts=d(ts_ms), user_id=d(ids), amount=d(fen), method=d(st.sampled_from(sorted(c.METHODS))),
        outstanding_after=d(fen), on_time=d(st.booleans()), dpd_before=d(st.integers(0, 400))))


@pytest.mark.parametrize("name", sorted(p.stem for p in SCHEMA_DIR.glob("*.json")))
def test_every_schema_is_a_valid_2020_12_schema_and_closed(name: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
