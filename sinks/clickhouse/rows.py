"""Mapping output records (``riskmon.outputs``) and raw ``business-metrics`` messages to table rows.

Why a table of specs: every topic maps to exactly one fact table, and the sink, the tests and the
report's sample loader must agree on column order, id column and types. Money arrives as decimal
strings and is parsed exactly (through integer fen) into ``Decimal`` for ``Decimal(18, 2)`` columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from riskmon import outputs
from riskmon.contract import TOPIC_METRICS, BusinessMetric, decode
from riskmon.eventtime import fmt_ts, parse_ts
from riskmon.money import to_fen

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RowError(ValueError):
    """A record that cannot become a row (missing field, bad money, unknown topic)."""


def ts_of(ms: int) -> datetime:
    """Epoch ms -> aware UTC datetime, exactly (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)


_CENT = Decimal("0.01")
_MONEY_MAX = Decimal(10) ** 16  # Decimal(18, 2)


def _money(v: Any) -> Decimal:
    """A decimal string (the output wire format) -> exact Decimal with 2 places.

    Output amounts can be sums (outstanding balances), so the per-event input range of
    :func:`riskmon.money.to_fen` does not apply; the column's Decimal(18, 2) range does.
    """
    if not isinstance(v, str):
        return Decimal(to_fen(v)).scaleb(-2)
    try:
        d = Decimal(v.strip())
    except InvalidOperation:
        raise ValueError("not a decimal string") from None
    if not d.is_finite() or abs(d) >= _MONEY_MAX:
        raise ValueError("out of range for Decimal(18, 2)")
    q = d.quantize(_CENT)
    if q != d:
        raise ValueError("more than 2 decimals")
    return q


def _ts(v: Any) -> datetime:
    return ts_of(parse_ts(v))


def _json(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one topic's records become rows of one table."""

    topic: str
    table: str
    id_column: str
    columns: tuple[tuple[str, Callable[[Any], Any]], ...]

    @property
    def column_names(self) -> list[str]:
        """Insert column order."""
        return [c for c, _ in self.columns]

    def row(self, record: dict[str, Any]) -> list[Any]:
        """Convert one record, naming the field that breaks."""
        out = []
        for name, conv in self.columns:
            try:
                out.append(conv(record[name]))
            except KeyError:
                raise RowError(f"{self.topic}: {name}: required") from None
            except Exception as exc:
                raise RowError(f"{self.topic}: {name}: {exc}") from None
        return out


S, Int, F, B = str, int, float, bool
SPECS: dict[str, TableSpec] = {
    s.topic: s
    for s in (
        TableSpec(outputs.TOPIC_DECISIONS, "decisions", "event_id", (
            ("event_id", S), ("ts", _ts), ("user_id", S), ("order_id", S), ("amount", _money),
            ("channel", S), ("category", S), ("installments", Int), ("pd", F), ("anomaly", F), ("grade", S),
            ("apr_bps", Int), ("model_version", S), ("utilisation", F), ("within_limit", B))),
        TableSpec(outputs.TOPIC_REPAYMENTS_APPLIED, "repayments", "event_id", (
            ("event_id", S), ("ts", _ts), ("user_id", S), ("amount", _money), ("method", S),
            ("outstanding_after", _money), ("on_time", B), ("dpd_before", Int))),
        TableSpec(outputs.TOPIC_LIMIT_CHANGES, "limit_changes", "event_id", (
            ("event_id", S), ("ts", _ts), ("user_id", S), ("action", S), ("old_limit", _money),
            ("new_limit", _money), ("reason_codes", list), ("score", _opt_float), ("grade", lambda v: v),
            ("model_version", lambda v: v))),
        TableSpec(outputs.TOPIC_ALERTS, "alerts", "alert_id", (
            ("alert_id", S), ("ts", _ts), ("kind", S), ("severity", S), ("subject_type", S),
            ("subject_id", S), ("dedup_key", S), ("summary", S), ("details", _json))),
        TableSpec(outputs.TOPIC_BUREAU, "bureau_reports", "report_id", (
            ("report_id", S), ("ts", _ts), ("user_id", S), ("outstanding", _money), ("dpd", Int),
            ("first_due_unpaid", _ts), ("episode_id", S))),
        TableSpec(outputs.TOPIC_DPD, "dpd_snapshots", "event_id", (
            ("event_id", S), ("ts", _ts), ("user_id", S), ("dpd", Int), ("prev_dpd", Int), ("bucket", S),
            ("prev_bucket", S), ("outstanding", _money), ("overdue", _money))),
        TableSpec(TOPIC_METRICS, "enterprise_metrics", "event_id", (
            ("event_id", S), ("ts", _ts), ("enterprise_id", S), ("industry", S), ("metric", S),
            ("value", F))),
        TableSpec(outputs.TOPIC_ENTERPRISE_HEALTH, "enterprise_health", "event_id", (
            ("event_id", S), ("ts", _ts), ("enterprise_id", S), ("industry", S), ("grade", S),
            ("health_score", F), ("open_signals", list), ("watchlist", B), ("recommendation", S))),
        TableSpec(outputs.TOPIC_MODEL_METRICS, "model_metrics", "event_id", (
            ("event_id", S), ("ts", _ts), ("model", S), ("model_version", S), ("n_labels", Int), ("auc", F),
            ("logloss", F), ("positives", Int), ("worker", S))),
        TableSpec(outputs.TOPIC_DEAD_LETTERS, "dead_letters", "dead_letter_id", (
            ("dead_letter_id", S), ("ts", _ts), ("topic", S), ("partition", Int), ("offset", Int),
            ("payload", S), ("truncated", B), ("reason", S))),
    )
}
SINK_TOPICS: tuple[str, ...] = tuple(SPECS)
TABLES: tuple[str, ...] = tuple(s.table for s in SPECS.values())


def to_row(topic: str, record: dict[str, Any], *, fallback_ts_ms: int | None = None) -> tuple[TableSpec, list[Any]]:
    """The table spec and row for one record of ``topic``.

    ``business-metrics`` records are raw input messages: they pass the wire contract first (a message
    the workers dead-lettered must not become a fact). Dead letters have no event time; the caller
    passes the Kafka timestamp of the message as ``fallback_ts_ms``.
    """
    spec = SPECS.get(topic)
    if spec is None:
        raise RowError(f"topic: no ClickHouse table for {topic!r}")
    if not isinstance(record, dict):
        raise RowError(f"{topic}: record must be a JSON object")
    if topic == TOPIC_METRICS:
        ev = decode(TOPIC_METRICS, orjson.dumps(record))
        if not isinstance(ev, BusinessMetric):
            raise RowError(f"{topic}: {ev.reason}")
        return spec, [ev.event_id, ts_of(ev.ts), ev.enterprise_id, ev.industry, ev.metric, ev.value]
    if "ts" not in record and fallback_ts_ms is not None:
        record = {**record, "ts": fmt_ts(fallback_ts_ms)}
    return spec, spec.row(record)
