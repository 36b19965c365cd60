"""Masking of customer identifiers in everything a hook sends outside riskmon.

Why: PagerDuty, Slack and third-party webhooks are outside the credit data boundary, but collectors
must still correlate "the same customer" across pages. The default ``hmac`` mode replaces an id with a
keyed HMAC prefix (``u_3fa9c2d81b07``): stable for the same id and key, so trigger and resolve, Slack
and PagerDuty all show the same token, yet not reversible by enumerating ids without the key. ``partial``
keeps the first and last two characters (``us***42``) for teams that look customers up by hand;
``none`` (or ``RISKMON_MASK_CUSTOMER_IDS=false``) sends ids as they are.

The subject id is also replaced where it appears inside strings (summary, dedup keys such as
``collector_page:u123:ep7``, details), so a masked alert never leaks the raw id through a side door.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

MASK_MODES = ("hmac", "partial", "none")
DEFAULT_ID_FIELDS = ("user_id", "enterprise_id", "subject_id", "customer_id")
_PREFIX = {"user": "u", "enterprise": "e"}
_FIELD_TYPE = {"user_id": "user", "enterprise_id": "enterprise", "customer_id": "user"}


class Masker:
    """Masks subject ids in alerts and dedup keys; deterministic for one (mode, key)."""

    def __init__(self, mode: str = "hmac", key: bytes = b"", id_fields: Iterable[str] = DEFAULT_ID_FIELDS) -> None:
        if mode not in MASK_MODES:
            raise ValueError(f"unknown masking mode {mode!r} (allowed: {', '.join(MASK_MODES)})")
        self.mode = mode
        # an empty key still hashes, but then masks can be reversed by enumerating ids (warned at load)
        self._key = key or b"riskmon-unkeyed-mask"
        self.id_fields = frozenset(id_fields)

    @property
    def enabled(self) -> bool:
        """Whether ids are masked at all."""
        return self.mode != "none"

    def mask_id(self, value: str, subject_type: str = "user") -> str:
        """The masked form of one id.

        >>> Masker("partial").mask_id("user_12345")
        'us***45'
        >>> Masker("hmac", b"k").mask_id("u1").startswith("u_")
        True
        """
        if not self.enabled or not value:
            return value
        if self.mode == "partial":
            return "***" if len(value) <= 4 else f"{value[:2]}***{value[-2:]}"
        digest = hmac.new(self._key, f"{subject_type}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{_PREFIX.get(subject_type, 'x')}_{digest[:12]}"

    def _replacer(self, ids: dict[str, str]) -> re.Pattern[str] | None:
        if not ids:
            return None
        alts = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        return re.compile(rf"(?<![A-Za-z0-9_])(?:{alts})(?![A-Za-z0-9_])")

    def mask_text(self, text: str, subject_id: str, subject_type: str) -> str:
        """Replace whole-token occurrences of ``subject_id`` in ``text`` (summaries, dedup keys)."""
        if not self.enabled or not subject_id or subject_id not in text:
            return text
        pattern = self._replacer({subject_id: subject_type})
        assert pattern is not None
        masked = self.mask_id(subject_id, subject_type)
        return pattern.sub(masked, text)

    def _walk(self, value: Any, subject_id: str, subject_type: str, field: str | None) -> Any:
        if isinstance(value, dict):
            return {k: self._walk(v, subject_id, subject_type, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v, subject_id, subject_type, field) for v in value]
        if isinstance(value, str):
            if field in self.id_fields:
                return self.mask_id(value, _FIELD_TYPE.get(field, subject_type))
            return self.mask_text(value, subject_id, subject_type)
        return value

    def mask_alert(self, alert: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``alert`` safe to send externally (the input is never modified)."""
        if not self.enabled:
            return alert
        subject_id = str(alert.get("subject_id") or "")
        subject_type = str(alert.get("subject_type") or "user")
        out: dict[str, Any] = {}
        for k, v in alert.items():
            if k == "subject_id":
                out[k] = self.mask_id(subject_id, subject_type)
            elif k in ("alert_id", "ts", "kind", "severity", "subject_type"):
                out[k] = v
            else:
                out[k] = self._walk(v, subject_id, subject_type, k)
        return out

    def mask_key(self, dedup_key: str, alert: dict[str, Any]) -> str:
        """The external form of a dedup key of ``alert`` (same for trigger and resolve)."""
        return self.mask_text(dedup_key, str(alert.get("subject_id") or ""), str(alert.get("subject_type") or "user"))
