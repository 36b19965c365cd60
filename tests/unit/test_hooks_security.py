"""Hook signatures and masking: forged, tampered and replayed requests are rejected; ids never leak."""

from __future__ import annotations

import hashlib
import hmac

import orjson
from hypothesis import given
from hypothesis import strategies as st

from riskmon.outputs import alert as make_alert
from sinks.hooks.masking import Masker
from sinks.hooks.signing import sign, verify_signature

BODY = b'{"kind":"collector_page","subject_id":"u_3fa9c2d81b07"}'
T = 1_772_352_000


def test_signature_matches_documented_construction() -> None:
    expected = hmac.new(b"k3y", f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("k3y", T, BODY) == f"v1={expected}"
    assert verify_signature("k3y", str(T), BODY, f"v1={expected}", now=T)


def test_forged_signature_rejected() -> None:
    assert not verify_signature("k3y", str(T), BODY, sign("other-secret", T, BODY), now=T)
    assert not verify_signature("k3y", str(T), BODY, "v1=" + "0" * 64, now=T)
    assert not verify_signature("k3y", str(T), BODY, "v1=", now=T)
    assert not verify_signature("k3y", str(T), BODY, "", now=T)
    assert not verify_signature("k3y", str(T), BODY, None, now=T)
    assert not verify_signature("k3y", str(T), BODY, "v0=" + sign("k3y", T, BODY)[3:], now=T)
    assert not verify_signature("", str(T), BODY, sign("k3y", T, BODY), now=T)


def test_tampered_body_or_timestamp_rejected() -> None:
    sig = sign("k3y", T, BODY)
    assert not verify_signature("k3y", str(T), BODY.replace(b"collector", b"cured____"), sig, now=T)
    assert not verify_signature("k3y", str(T + 1), BODY, sig, now=T)  # timestamp is inside the MAC


def test_stale_and_future_timestamps_rejected() -> None:
    sig = sign("k3y", T, BODY)
    assert verify_signature("k3y", str(T), BODY, sig, now=T + 300)
    assert not verify_signature("k3y", str(T), BODY, sig, now=T + 301)  # replayed later
    assert not verify_signature("k3y", str(T), BODY, sig, now=T - 301)  # pre-dated
    assert verify_signature("k3y", str(T), BODY, sig, now=T + 3000, tolerance_s=3600)
    for bad in (None, "", "abc", "-5", "1e9", " ", "99999999999999"):
        assert not verify_signature("k3y", bad, BODY, sig, now=T)


def test_rotation_accepts_any_listed_secret_and_signature() -> None:
    old, new = sign("old", T, BODY), sign("new", T, BODY)
    assert verify_signature(["new", "old"], str(T), BODY, old, now=T)
    assert verify_signature("new", str(T), BODY, f"{old},{new}", now=T)
    assert not verify_signature(["x", "y"], str(T), BODY, f"{old},{new}", now=T)


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=2**33), st.text(min_size=1, max_size=40))
def test_roundtrip_and_single_bit_flip(body: bytes, ts: int, secret: str) -> None:
    sig = sign(secret, ts, body)
    assert verify_signature(secret, str(ts), body, sig, now=ts)
    flipped = bytes([body[0] ^ 1]) + body[1:] if body else b"x"
    assert not verify_signature(secret, str(ts), flipped, sig, now=ts)


def _alert(user: str = "user_1001") -> dict:
    return make_alert(ts=T * 1000, kind="collector_page", severity="high", subject_type="user", subject_id=user,
                      dedup_key=f"collector_page:{user}:ep1", summary=f"{user} is 15 days past due",
                      details={"user_id": user, "note": f"call {user} today", "resolves": [f"x:{user}"],
                               "other": "user_10012 is unrelated"})


def test_hmac_masking_removes_raw_id_everywhere_and_is_stable() -> None:
    m = Masker("hmac", b"mask-key")
    a = _alert()
    masked = m.mask_alert(a)
    blob = orjson.dumps(masked)
    tok = m.mask_id("user_1001", "user")
    assert tok.startswith("u_") and len(tok) == 14
    assert b"user_1001\"" not in blob and b"user_1001:" not in blob and b"user_1001 " not in blob
    assert masked["subject_id"] == tok and masked["details"]["user_id"] == tok
    assert masked["summary"] == f"{tok} is 15 days past due"
    assert masked["details"]["resolves"] == [f"x:{tok}"]
    assert masked["details"]["other"] == "user_10012 is unrelated"  # only whole tokens are replaced
    assert m.mask_key(a["dedup_key"], a) == f"collector_page:{tok}:ep1" == masked["dedup_key"]
    assert a["subject_id"] == "user_1001", "the input alert must not be modified"
    # stable across instances with the same key, different with another key
    assert Masker("hmac", b"mask-key").mask_id("user_1001") == tok
    assert Masker("hmac", b"other").mask_id("user_1001") != tok
    assert m.mask_id("ent_7", "enterprise").startswith("e_")


def test_partial_and_none_modes() -> None:
    a = _alert()
    p = Masker("partial").mask_alert(a)
    assert p["subject_id"] == "us***01" and "user_1001" not in orjson.dumps(p).decode().replace("user_10012", "")
    assert Masker("none").mask_alert(a) == a
