"""JSON Schemas of what riskmon sends to Slack, PagerDuty and Alertmanager.

Why in the package: they restate the receivers' documented contracts (Slack Block Kit limits,
PagerDuty Events API v2, Alertmanager API v2 ``postableAlerts``) so tests and receiver authors can
validate payloads with ``jsonschema`` without the vendor services.
"""

from __future__ import annotations

from typing import Any

_RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
_TEXT_OBJ = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"enum": ["plain_text", "mrkdwn"]}, "text": {"type": "string", "minLength": 1}},
}

SLACK_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["text", "blocks"],
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 3000},
        "blocks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["header", "section", "context", "divider"]}},
                "allOf": [
                    {"if": {"properties": {"type": {"const": "header"}}},
                     "then": {"required": ["text"], "properties": {"text": {
                         **_TEXT_OBJ, "properties": {"type": {"const": "plain_text"},
                                                     "text": {"type": "string", "maxLength": 150}}}}}},
                    {"if": {"properties": {"type": {"const": "section"}}},
                     "then": {"properties": {
                         "text": {**_TEXT_OBJ, "properties": {"type": {"enum": ["plain_text", "mrkdwn"]},
                                                              "text": {"type": "string", "maxLength": 3000}}},
                         "fields": {"type": "array", "maxItems": 10, "items": {
                             **_TEXT_OBJ, "properties": {"type": {"enum": ["plain_text", "mrkdwn"]},
                                                         "text": {"type": "string", "maxLength": 2000}}}},
                     }}},
                    {"if": {"properties": {"type": {"const": "context"}}},
                     "then": {"required": ["elements"],
                              "properties": {"elements": {"type": "array", "minItems": 1, "maxItems": 10,
                                                          "items": _TEXT_OBJ}}}},
                ],
            },
        },
    },
}

PAGERDUTY_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["routing_key", "event_action", "dedup_key"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "client": {"type": "string"},
        "client_url": {"type": "string"},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "pattern": _RFC3339},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
    },
    "allOf": [{"if": {"properties": {"event_action": {"const": "trigger"}}}, "then": {"required": ["payload"]}}],
}

ALERTMANAGER_ALERTS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {
                "type": "object",
                "required": ["alertname"],
                "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                "additionalProperties": {"type": "string"},
            },
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "startsAt": {"type": "string", "pattern": _RFC3339},
            "endsAt": {"type": "string", "pattern": _RFC3339},
            "generatorURL": {"type": "string"},
        },
    },
}
