"""Output records: what the domain core emits and the agents publish.

Each record is a plain JSON-ready dict built by one function here, so the topic payloads, the replay
files and the ClickHouse fact rows share one definition. Money fields are decimal strings (``"12.50"``);
``ts`` is RFC 3339 UTC.

Output topics (all keyed by subject id):

- ``limit-changes``  :func:`limit_change`
- ``alerts``         :func:`alert`
- ``bureau-reports`` :func:`bureau_report`
- ``dead-letters``   :func:`dead_letter`
- ``decisions``      :func:`decision` (one per scored purchase; feeds ClickHouse)
- ``dpd-snapshots``  :func:`dpd_snapshot` (one per DPD change of an account; feeds roll rates)
- ``model-metrics``  :func:`model_metric` (prequential metrics after label batches)
- ``enterprise-health`` :func:`enterprise_health` (health/grade changes of an enterprise)
- ``repayments-applied`` :func:`repayment_applied` (one per applied repayment)
"""

from __future__ import annotations

import hashlib
from typing import Any

from riskmon.eventtime import fmt_ts
from riskmon.money import fmt

TOPIC_LIMIT_CHANGES = "limit-changes"
TOPIC_ALERTS = "alerts"
TOPIC_BUREAU = "bureau-reports"
TOPIC_DEAD_LETTERS = "dead-letters"
TOPIC_DECISIONS = "decisions"
TOPIC_DPD = "dpd-snapshots"
TOPIC_MODEL_METRICS = "model-metrics"
TOPIC_ENTERPRISE_HEALTH = "enterprise-health"
TOPIC_REPAYMENTS_APPLIED = "repayments-applied"
OUTPUT_TOPICS = (
    TOPIC_LIMIT_CHANGES,
    TOPIC_ALERTS,
    TOPIC_BUREAU,
    TOPIC_DEAD_LETTERS,
    TOPIC_DECISIONS,
    TOPIC_DPD,
    TOPIC_MODEL_METRICS,
    TOPIC_ENTERPRISE_HEALTH,
    TOPIC_REPAYMENTS_APPLIED,
)

SEVERITIES = ("info", "warning", "high", "critical")
DEAD_LETTER_PAYLOAD_MAX = 4096


def stable_id(*parts: object) -> str:
    """Deterministic id from the parts that make a record unique (replays give the same ids)."""
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=12).hexdigest()


def limit_change(
    *, ts: int, user_id: str, action: str, old_limit: int, new_limit: int, reason_codes: list[str],
    score: float | None, grade: str | None, model_version: str | None, cause_id: str,
) -> dict[str, Any]:
    """A credit-limit change (action: initial|raise|lower|freeze|unfreeze)."""
    return {
        "event_id": stable_id("limit", user_id, action, cause_id),
        "ts": fmt_ts(ts),
        "user_id": user_id,
        "action": action,
        "old_limit": fmt(old_limit),
        "new_limit": fmt(new_limit),
        "reason_codes": reason_codes,
        "score": None if score is None else round(score, 6),
        "grade": grade,
        "model_version": model_version,
    }


def alert(
    *, ts: int, kind: str, severity: str, subject_type: str, subject_id: str, dedup_key: str,
    summary: str, details: dict[str, Any],
) -> dict[str, Any]:
    """An alert; ``dedup_key`` identifies the condition so hooks deliver it once per destination."""
    assert severity in SEVERITIES, severity
    return {
        "alert_id": stable_id("alert", dedup_key),
        "ts": fmt_ts(ts),
        "kind": kind,
        "severity": severity,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "dedup_key": dedup_key,
        "summary": summary,
        "details": details,
    }


def bureau_report(
    *, ts: int, user_id: str, outstanding: int, dpd: int, first_due_unpaid: int, episode_id: str
) -> dict[str, Any]:
    """A serious-default report for the credit bureau (DPD 90)."""
    return {
        "report_id": stable_id("bureau", user_id, episode_id),
        "user_id": user_id,
        "ts": fmt_ts(ts),
        "outstanding": fmt(outstanding),
        "dpd": dpd,
        "first_due_unpaid": fmt_ts(first_due_unpaid),
        "episode_id": episode_id,
    }


def dead_letter(*, topic: str, partition: int, offset: int, payload: bytes | None, reason: str,
                ts: int | None = None) -> dict[str, Any]:
    """A rejected input message with where it came from and why (payload truncated to 4 KiB).

    ``ts`` is the message's Kafka timestamp (ms) when known: a bad message has no trusted event time, and
    the producer's timestamp is the best place to put it on a dashboard's time axis.
    """
    raw = (payload or b"")[:DEAD_LETTER_PAYLOAD_MAX]
    extra = {"ts": fmt_ts(ts)} if ts is not None and ts > 0 else {}
    return {
        **extra,
        "dead_letter_id": stable_id("dl", topic, partition, offset),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "payload": raw.decode("utf-8", "replace"),
        "truncated": len(payload or b"") > DEAD_LETTER_PAYLOAD_MAX,
        "reason": reason,
    }


def decision(
    *, event_id: str, ts: int, user_id: str, order_id: str, amount: int, channel: str, category: str,
    installments: int, pd: float, anomaly: float, grade: str, apr_bps: int, model_version: str,
    utilisation: float, approved_within_limit: bool,
) -> dict[str, Any]:
    """A scored purchase: the decision record behind every score-driven output."""
    return {
        "event_id": event_id,
        "ts": fmt_ts(ts),
        "user_id": user_id,
        "order_id": order_id,
        "amount": fmt(amount),
        "channel": channel,
        "category": category,
        "installments": installments,
        "pd": round(pd, 6),
        "anomaly": round(anomaly, 6),
        "grade": grade,
        "apr_bps": apr_bps,
        "model_version": model_version,
        "utilisation": round(utilisation, 6),
        "within_limit": approved_within_limit,
    }


def dpd_snapshot(*, ts: int, user_id: str, dpd: int, prev_dpd: int, outstanding: int, overdue: int) -> dict[str, Any]:
    """An account's DPD bucket changed (feeds bucket distribution and roll rates)."""
    return {
        "event_id": stable_id("dpd", user_id, ts, dpd),
        "ts": fmt_ts(ts),
        "user_id": user_id,
        "dpd": dpd,
        "prev_dpd": prev_dpd,
        "bucket": dpd_bucket(dpd),
        "prev_bucket": dpd_bucket(prev_dpd),
        "outstanding": fmt(outstanding),
        "overdue": fmt(overdue),
    }


def dpd_bucket(dpd: int) -> str:
    """The roll-rate bucket of a DPD: current, 1-29, 30-59, 60-89, 90+."""
    if dpd <= 0:
        return "current"
    if dpd < 30:
        return "1-29"
    if dpd < 60:
        return "30-59"
    if dpd < 90:
        return "60-89"
    return "90+"


def model_metric(*, ts: int, model: str, model_version: str, n_labels: int, auc: float, logloss: float,
                 positives: int, worker: str) -> dict[str, Any]:
    """Prequential metrics of the default model on delayed labels."""
    return {
        "event_id": stable_id("mm", model, worker, n_labels),
        "ts": fmt_ts(ts),
        "model": model,
        "model_version": model_version,
        "n_labels": n_labels,
        "auc": round(auc, 6),
        "logloss": round(logloss, 6),
        "positives": positives,
        "worker": worker,
    }


def repayment_applied(*, event_id: str, ts: int, user_id: str, amount: int, method: str,
                      outstanding_after: int, on_time: bool, dpd_before: int) -> dict[str, Any]:
    """A repayment applied to the ledger."""
    return {
        "event_id": event_id,
        "ts": fmt_ts(ts),
        "user_id": user_id,
        "amount": fmt(amount),
        "method": method,
        "outstanding_after": fmt(outstanding_after),
        "on_time": on_time,
        "dpd_before": dpd_before,
    }


def enterprise_health(*, ts: int, enterprise_id: str, industry: str, grade: str, health_score: float,
                      open_signals: list[str], watchlist: bool, recommendation: str) -> dict[str, Any]:
    """An enterprise's current health (also the row of ``enterprises.jsonl``)."""
    return {
        "event_id": stable_id("eh", enterprise_id, ts),
        "ts": fmt_ts(ts),
        "enterprise_id": enterprise_id,
        "industry": industry,
        "grade": grade,
        "health_score": round(health_score, 4),
        "open_signals": sorted(open_signals),
        "watchlist": watchlist,
        "recommendation": recommendation,
    }
