"""HMAC request signatures for outgoing hook requests, and their verification for receivers.

Why: a collector's paging system must be able to tell a real riskmon alert from a forged one, and a
captured request must not be replayable later. Every request carries ``X-Riskmon-Timestamp`` (unix
seconds at the moment of sending, re-signed on every retry) and ``X-Riskmon-Signature: v1=<hex>``
where ``hex = HMAC-SHA256(secret, "<timestamp>.<body>")``. A receiver recomputes the HMAC over the raw
body bytes and rejects stale or future timestamps (``tolerance_s``), which bounds the replay window.

During a secret rotation the receiver can pass several secrets; the header can also carry several
comma-separated ``v1=`` entries.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_VERSION = "v1"
HEADER_TIMESTAMP = "X-Riskmon-Timestamp"
HEADER_SIGNATURE = "X-Riskmon-Signature"
HEADER_DEDUP_KEY = "X-Riskmon-Dedup-Key"
HEADER_DELIVERY_ID = "X-Riskmon-Delivery-Id"
HEADER_ATTEMPT = "X-Riskmon-Attempt"
HEADER_REDELIVERY = "X-Riskmon-Redelivery"
DEFAULT_TOLERANCE_S = 300

Secret = str | bytes


def _key(secret: Secret) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _digest(secret: Secret, timestamp: int | str, body: bytes) -> str:
    msg = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(_key(secret), msg, hashlib.sha256).hexdigest()


def sign(secret: Secret, timestamp: int, body: bytes) -> str:
    """The ``X-Riskmon-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds).

    >>> sign("s3cret", 1772352000, b'{"a":1}')[:3]
    'v1='
    """
    if not _key(secret):
        raise ValueError("empty signing secret")
    return f"{SIGNATURE_VERSION}={_digest(secret, int(timestamp), body)}"


def verify_signature(
    secret: Secret | Iterable[Secret],
    timestamp: str | int | None,
    body: bytes,
    signature: str | None,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when ``signature`` is a valid v1 HMAC of ``body`` at ``timestamp`` within the tolerance.

    ``now`` is the receiver's clock in unix seconds (passed in so receivers and tests control it).
    Rejects: a missing/non-integer timestamp, a timestamp more than ``tolerance_s`` away from ``now``
    in either direction (replayed or pre-dated requests), a malformed header, an empty secret, and any
    HMAC mismatch (compared in constant time).

    >>> sig = sign("k", 100, b"x")
    >>> verify_signature("k", "100", b"x", sig, now=120), verify_signature("k", "100", b"y", sig, now=120)
    (True, False)
    >>> verify_signature("k", "100", b"x", sig, now=1000)
    False
    """
    if timestamp is None or signature is None:
        return False
    ts_text = str(timestamp).strip()
    if not ts_text.isdigit() or len(ts_text) > 12:
        return False
    ts = int(ts_text)
    if abs(now - ts) > tolerance_s:
        return False
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    candidates: list[str] = []
    for part in signature.split(","):
        version, sep, value = part.strip().partition("=")
        if sep and version == SIGNATURE_VERSION and value:
            candidates.append(value.lower())
    if not candidates:
        return False
    ok = False
    for s in secrets:
        if not _key(s):
            continue
        expected = _digest(s, ts_text, body)
        for cand in candidates:
            # no early exit: keep the comparison work independent of which candidate matched
            ok |= hmac.compare_digest(expected, cand)
    return ok
