"""Payload formats of the four destination types, built from one (masked) alert.

Why here and not in the dispatcher: the formats are pure functions of an alert, a destination and a
clock value, so they are unit-tested against the receivers' schemas without any network. The
dispatcher only adds the per-attempt signature headers (:func:`attempt_headers`).

- ``webhook``: POST the alert JSON as is (masked).
- ``slack``: incoming-webhook message with ``text`` (notification fallback) and ``blocks``.
- ``pagerduty``: Events API v2 ``trigger`` / ``resolve`` with ``dedup_key``.
- ``alertmanager``: Alertmanager API v2 ``POST /api/v2/alerts`` with a one-element list; a resolve
  re-sends the labels stored with the trigger plus ``endsAt``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from riskmon.eventtime import TimeError, fmt_ts, parse_ts
from riskmon.outputs import stable_id
from sinks.hooks.masking import Masker
from sinks.hooks.routing import CURED_KIND, RESOLVING_TYPES, Destination
from sinks.hooks.signing import (
    HEADER_ATTEMPT,
    HEADER_DEDUP_KEY,
    HEADER_DELIVERY_ID,
    HEADER_REDELIVERY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    sign,
)

USER_AGENT = "riskmon-hooks/1"
ACTION_NOTIFY = "notify"  # webhook / slack: one message per alert
ACTION_TRIGGER = "trigger"  # pagerduty / alertmanager: open a page
ACTION_RESOLVE = "resolve"  # pagerduty / alertmanager: close a page delivered earlier
PD_SEVERITY = {"critical": "critical", "high": "error", "warning": "warning", "info": "info"}
PD_DEDUP_MAX = 255
SLACK_EMOJI = {"critical": ":rotating_light:", "high": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


@dataclass(frozen=True)
class Job:
    """One delivery: ``action`` of ``dedup_key`` (raw, internal) to ``dest``, caused by ``alert``."""

    dest: str
    action: str
    dedup_key: str
    alert: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """A ready request body; ``meta`` is remembered with a successful trigger (Alertmanager labels)."""

    url: str
    body: bytes
    headers: dict[str, str]
    external_key: str
    delivery_id: str
    meta: dict[str, Any] | None = None


def jobs_for(alert: dict[str, Any], dest: Destination) -> list[Job]:
    """The deliveries one alert causes at one destination.

    A ``cured`` alert at a PagerDuty / Alertmanager destination becomes one ``resolve`` per key in
    ``details.resolves``; everything else is one ``notify`` (webhook, Slack) or ``trigger``.
    """
    if dest.type in RESOLVING_TYPES:
        if alert.get("kind") == CURED_KIND:
            resolves = (alert.get("details") or {}).get("resolves") or []
            return [Job(dest.name, ACTION_RESOLVE, str(k), alert) for k in resolves if k]
        return [Job(dest.name, ACTION_TRIGGER, str(alert["dedup_key"]), alert)]
    return [Job(dest.name, ACTION_NOTIFY, str(alert["dedup_key"]), alert)]


def _iso(alert: dict[str, Any]) -> str:
    try:
        return fmt_ts(parse_ts(alert.get("ts")))
    except TimeError:
        return _now_iso(0)


def _now_iso(now_s: float) -> str:
    return datetime.fromtimestamp(now_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(a: str, b: str) -> str:
    """The later of two RFC 3339 timestamps (compared as instants, not as strings)."""
    try:
        return a if parse_ts(a) >= parse_ts(b) else b
    except TimeError:
        return a


def _pd_key(key: str) -> str:
    if len(key) <= PD_DEDUP_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_body(masked: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook body: the masked alert itself."""
    return masked


def slack_body(masked: dict[str, Any], external_key: str) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` fallback + Block Kit ``blocks``)."""
    sev = str(masked.get("severity", "info"))
    kind = str(masked.get("kind", ""))
    subject = f"{masked.get('subject_type', '')} {masked.get('subject_id', '')}".strip()
    summary = _slack_escape(str(masked.get("summary", "")))
    icon = ":white_check_mark:" if kind == CURED_KIND else SLACK_EMOJI.get(sev, "")
    text = _clip(f"{icon} [{sev.upper()}] {kind} {subject}: {summary}", 3000)
    details = masked.get("details") or {}
    fields = [
        {"type": "mrkdwn", "text": f"*Kind*\n{_slack_escape(kind)}"},
        {"type": "mrkdwn", "text": f"*Severity*\n{sev}"},
        {"type": "mrkdwn", "text": f"*Subject*\n{_slack_escape(subject)}"},
        {"type": "mrkdwn", "text": f"*Time*\n{masked.get('ts', '')}"},
    ]
    for k, v in list(details.items())[:6]:  # Slack allows at most 10 fields
        val = v if isinstance(v, str) else orjson.dumps(v).decode()
        fields.append({"type": "mrkdwn", "text": _clip(f"*{_slack_escape(str(k))}*\n{_slack_escape(val)}", 2000)})
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{sev.upper()}: {kind}", 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(summary or kind, 3000)}, "fields": fields},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": _clip(f"dedup `{_slack_escape(external_key)}` · alert `{masked.get('alert_id', '')}`", 3000)}
                ],
            },
        ],
    }


def pagerduty_body(dest: Destination, job: Job, masked: dict[str, Any], external_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event (``trigger`` with payload, or ``resolve``)."""
    body: dict[str, Any] = {
        "routing_key": dest.routing_key or "",
        "event_action": job.action,
        "dedup_key": _pd_key(external_key),
    }
    if job.action == ACTION_RESOLVE:
        return body
    body["payload"] = {
        "summary": _clip(str(masked.get("summary") or masked.get("kind")), 1024),
        "source": str(dest.opt("source")),
        "severity": PD_SEVERITY.get(str(masked.get("severity")), "info"),
        "timestamp": _iso(masked),
        "component": str(masked.get("subject_type", "")),
        "group": "collections",
        "class": str(masked.get("kind", "")),
        "custom_details": {
            "alert_id": masked.get("alert_id"),
            "kind": masked.get("kind"),
            "subject_type": masked.get("subject_type"),
            "subject_id": masked.get("subject_id"),
            **(masked.get("details") or {}),
        },
    }
    if dest.opt("generator_url"):
        body["client"] = "riskmon"
        body["client_url"] = str(dest.opt("generator_url"))
    return body


def alertmanager_alert(
    dest: Destination, job: Job, masked: dict[str, Any], external_key: str, trigger_meta: dict[str, Any] | None,
    now_s: float,
) -> dict[str, Any]:
    """One Alertmanager v2 ``postableAlert``. Label set = alert identity, so resolve reuses it."""
    if job.action == ACTION_RESOLVE:
        meta = trigger_meta or {}
        starts = str(meta.get("startsAt") or _iso(masked))
        ends = _later(_iso(masked), starts)  # Alertmanager rejects endsAt before startsAt
        alert = {"labels": dict(meta.get("labels") or {}), "annotations": dict(meta.get("annotations") or {}),
                 "startsAt": starts, "endsAt": ends}
    else:
        labels = {
            "alertname": str(masked.get("kind", "")),
            "severity": str(masked.get("severity", "")),
            "subject_type": str(masked.get("subject_type", "")),
            "subject": str(masked.get("subject_id", "")),
            "dedup_key": external_key,
            "source": str(dest.opt("source")),
        }
        annotations = {
            "summary": str(masked.get("summary", "")),
            "alert_id": str(masked.get("alert_id", "")),
            "details": _clip(orjson.dumps(masked.get("details") or {}).decode(), 4000),
        }
        alert = {"labels": labels, "annotations": annotations, "startsAt": _iso(masked)}
        ttl = float(dest.opt("firing_ttl_s") or 0)
        if ttl > 0:
            alert["endsAt"] = _later(_now_iso(now_s + ttl), alert["startsAt"])
    if dest.opt("generator_url"):
        alert["generatorURL"] = str(dest.opt("generator_url"))
    return alert


def alertmanager_url(url: str) -> str:
    """Accept a base URL (``http://am:9093``) or the full ``.../api/v2/alerts`` endpoint."""
    url = url.rstrip("/")
    return url if url.endswith("/api/v2/alerts") else url + "/api/v2/alerts"


def prepare(
    dest: Destination, job: Job, masker: Masker, trigger_meta: dict[str, Any] | None = None, now_s: float = 0.0
) -> Prepared:
    """Build the request body and static headers of ``job`` (masking applied here, once)."""
    assert dest.url, dest.name
    masked = masker.mask_alert(job.alert)
    external_key = masker.mask_key(job.dedup_key, job.alert)
    meta: dict[str, Any] | None = None
    url = dest.url
    if dest.type == "webhook":
        payload: Any = webhook_body(masked)
    elif dest.type == "slack":
        payload = slack_body(masked, external_key)
    elif dest.type == "pagerduty":
        payload = pagerduty_body(dest, job, masked, external_key)
    else:
        am = alertmanager_alert(dest, job, masked, external_key, trigger_meta, now_s)
        payload = [am]
        url = alertmanager_url(dest.url)
        if job.action == ACTION_TRIGGER:
            meta = {"labels": am["labels"], "annotations": am["annotations"], "startsAt": am["startsAt"]}
    delivery_id = stable_id("hook", dest.name, job.action, external_key)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER_DEDUP_KEY: external_key,
        HEADER_DELIVERY_ID: delivery_id,
    }
    if dest.bearer_token:
        headers["Authorization"] = f"Bearer {dest.bearer_token}"
    return Prepared(url=url, body=orjson.dumps(payload), headers=headers, external_key=external_key,
                    delivery_id=delivery_id, meta=meta)


def attempt_headers(dest: Destination, prepared: Prepared, attempt: int, redelivery: bool, now_s: float) -> dict[str, str]:
    """Headers of one attempt: signed with a fresh timestamp so retries after an outage are not stale."""
    headers = dict(prepared.headers)
    headers[HEADER_ATTEMPT] = str(attempt)
    if redelivery:
        headers[HEADER_REDELIVERY] = "1"
    if dest.secret:
        ts = int(now_s)
        headers[HEADER_TIMESTAMP] = str(ts)
        headers[HEADER_SIGNATURE] = sign(dest.secret, ts, prepared.body)
    return headers
