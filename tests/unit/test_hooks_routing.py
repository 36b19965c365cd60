"""Hook policy resolution, routing rules, payload formats and the token bucket (no services)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from riskmon.config import Settings
from riskmon.outputs import alert as make_alert
from sinks.hooks.dispatcher import classify, lease_ms_for, parse_retry_after
from sinks.hooks.formats import attempt_headers, jobs_for, prepare
from sinks.hooks.ratelimit import TokenBucket
from sinks.hooks.routing import HookConfigError, env_name, load_hook_config
from sinks.hooks.schemas import ALERTMANAGER_ALERTS, PAGERDUTY_EVENT, SLACK_MESSAGE
from sinks.hooks.signing import verify_signature

TS = 1_772_352_000_000
DEFAULT_POLICY = yaml.safe_load((Path(__file__).resolve().parents[2] / "riskmon/policies/default.yaml").read_text())
FULL_ENV = {
    "RISKMON_HOOK_COLLECTIONS_ONCALL_ROUTING_KEY": "r" * 32,
    "RISKMON_HOOK_RISK_SLACK_URL": "https://hooks.slack.com/services/T0/B0/SECRETTOKEN",
    "RISKMON_HOOK_ALERTMANAGER_URL": "http://am:9093",
    "RISKMON_HOOK_EVENTS_WEBHOOK_URL": "https://receiver.example/riskmon",
    "RISKMON_HOOK_MASK_KEY": "mask",
}


def settings(**kw: Any) -> Settings:
    return Settings(hook_secret="sig-secret", **kw)


def alert(kind: str, severity: str, subject_type: str = "user", **details: Any) -> dict[str, Any]:
    return make_alert(ts=TS, kind=kind, severity=severity, subject_type=subject_type, subject_id="user_42",
                      dedup_key=f"{kind}:user_42:1", summary=f"{kind} for user_42", details=details)


def test_default_policy_routes() -> None:
    cfg = load_hook_config(settings(), DEFAULT_POLICY, FULL_ENV)
    assert cfg.warnings == ()
    assert cfg.route(alert("collector_page", "high")) == ["collections-oncall", "risk-slack", "alertmanager",
                                                         "events-webhook"]
    assert cfg.route(alert("delinquency_m2", "critical"))[0] == "collections-oncall"
    assert cfg.route(alert("overdue_sms", "warning")) == ["events-webhook"]
    assert cfg.route(alert("fraud_suspected", "critical")) == ["risk-slack", "alertmanager", "events-webhook"]
    # cured goes to every resolving destination even though no route names it there
    assert cfg.route(alert("cured", "info")) == ["events-webhook", "collections-oncall", "alertmanager"]


def test_unset_urls_disable_with_warning_not_error() -> None:
    cfg = load_hook_config(Settings(hook_secret=None), DEFAULT_POLICY, {})
    assert not any(d.enabled for d in cfg.destinations.values())
    assert len(cfg.warnings) == 4 and all("disabled" in w for w in cfg.warnings)
    assert cfg.route(alert("collector_page", "critical")) == []
    # webhook needs a signing secret; pagerduty a routing key
    env = {"RISKMON_HOOK_EVENTS_WEBHOOK_URL": "http://x"}
    assert "signing secret" in load_hook_config(Settings(hook_secret=None), DEFAULT_POLICY, env).destinations[
        "events-webhook"].disabled_reason


def test_secrets_from_env_and_file_never_inline(tmp_path: Path) -> None:
    key_file = tmp_path / "pd.key"
    key_file.write_text("f" * 32 + "\n")
    pol = {"hooks": {"destinations": {"pd": {"type": "pagerduty", "url": "http://pd", "routing_key_file": str(key_file)},
                                      "wh": {"type": "webhook", "url": "http://wh", "secret_env": "MY_WH_SECRET"}}}}
    cfg = load_hook_config(Settings(hook_secret=None), pol, {"MY_WH_SECRET": "whs"})
    assert cfg.destinations["pd"].routing_key == "f" * 32 and cfg.destinations["pd"].enabled
    assert cfg.destinations["wh"].secret == b"whs"
    assert "whs" not in repr(cfg.destinations["wh"]) and "f" * 32 not in repr(cfg.destinations["pd"])
    with pytest.raises(HookConfigError, match="inline secret"):
        load_hook_config(settings(), {"hooks": {"destinations": {"x": {"type": "pagerduty", "routing_key": "abc"}}}}, {})
    hook_secret_file = tmp_path / "hook.secret"
    hook_secret_file.write_text("from-file")
    cfg2 = load_hook_config(Settings(hook_secret=None, hook_secret_file=hook_secret_file),
                            {"hooks": {"destinations": {"wh": {"type": "webhook", "url": "http://wh"}}}}, {})
    assert cfg2.destinations["wh"].secret == b"from-file"


def test_env_url_overrides_policy_url_and_safe_url_hides_tokens() -> None:
    pol = {"hooks": {"destinations": {"sl": {"type": "slack", "url": "http://policy"}}}}
    cfg = load_hook_config(settings(), pol, {env_name("sl", "URL"): "https://user:pw@hooks.slack.com/services/T/B/TOK"})
    d = cfg.destinations["sl"]
    assert d.url.endswith("/TOK") and d.url_source == "env RISKMON_HOOK_SL_URL"
    assert d.safe_url == "https://hooks.slack.com/…"


@pytest.mark.parametrize("bad, match", [
    ({"destinations": {"x": {"type": "sms"}}}, "type"),
    ({"destinations": {"x": {"type": "slack", "colour": "red"}}}, "unknown option"),
    ({"destinations": {}, "routes": [{"to": ["ghost"]}]}, "unknown destination"),
    ({"destinations": {"x": {"type": "slack"}}, "routes": [{"to": "x", "min_severity": "urgent"}]}, "min_severity"),
    ({"masking": {"mode": "rot13"}}, "masking"),
])
def test_malformed_policy_is_an_error(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(HookConfigError, match=match):
        load_hook_config(settings(), {"hooks": bad}, {})


def test_globs_severity_subject_types_and_stop() -> None:
    pol = {"hooks": {"destinations": {n: {"type": "webhook", "url": "http://x"} for n in ("a", "b", "c")},
                     "routes": [{"kinds": ["ews_*", "watchlist_added"], "subject_types": ["enterprise"], "to": "a",
                                 "stop": True},
                                {"kinds": "*", "min_severity": "warning", "to": ["b", "a"]},
                                {"kinds": "*", "to": "c"}]}}
    cfg = load_hook_config(settings(), pol, {})
    assert cfg.route(alert("ews_cash_drop", "info", subject_type="enterprise")) == ["a"]
    assert cfg.route(alert("ews_cash_drop", "warning", subject_type="user")) == ["b", "a", "c"]
    assert cfg.route(alert("repayment_reminder", "info")) == ["c"]


def _cfg() -> Any:
    return load_hook_config(settings(), DEFAULT_POLICY, FULL_ENV)


def test_pagerduty_event_formats_and_resolve_jobs() -> None:
    cfg = _cfg()
    pd = cfg.destinations["collections-oncall"]
    page = alert("collector_page", "critical", dpd=15)
    [job] = jobs_for(page, pd)
    body = orjson.loads(prepare(pd, job, cfg.masker).body)
    jsonschema.validate(body, PAGERDUTY_EVENT)
    assert body["event_action"] == "trigger" and body["payload"]["severity"] == "critical"
    assert body["payload"]["custom_details"]["dpd"] == 15 and "user_42" not in orjson.dumps(body).decode()
    cure = make_alert(ts=TS + 5000, kind="cured", severity="info", subject_type="user", subject_id="user_42",
                      dedup_key="cured:user_42:1", summary="cured",
                      details={"resolves": ["collector_page:user_42:1", "delinquency_m1:user_42:1"]})
    jobs = jobs_for(cure, pd)
    assert [(j.action, j.dedup_key) for j in jobs] == [("resolve", "collector_page:user_42:1"),
                                                       ("resolve", "delinquency_m1:user_42:1")]
    resolve = orjson.loads(prepare(pd, jobs[0], cfg.masker).body)
    jsonschema.validate(resolve, PAGERDUTY_EVENT)
    assert resolve == {"routing_key": "r" * 32, "event_action": "resolve", "dedup_key": body["dedup_key"]}
    # webhook/slack get the cured alert itself
    assert [j.action for j in jobs_for(cure, cfg.destinations["events-webhook"])] == ["notify"]


@pytest.mark.parametrize("sev, pd_sev", [("critical", "critical"), ("high", "error"), ("warning", "warning"),
                                         ("info", "info")])
def test_pagerduty_severity_mapping(sev: str, pd_sev: str) -> None:
    cfg = _cfg()
    pd = cfg.destinations["collections-oncall"]
    [job] = jobs_for(alert("collector_page", sev), pd)
    assert orjson.loads(prepare(pd, job, cfg.masker).body)["payload"]["severity"] == pd_sev


def test_alertmanager_and_slack_formats() -> None:
    cfg = _cfg()
    am = cfg.destinations["alertmanager"]
    [job] = jobs_for(alert("fraud_suspected", "critical", score=0.97), am)
    prep = prepare(am, job, cfg.masker, now_s=TS / 1000)
    assert prep.url == "http://am:9093/api/v2/alerts"
    body = orjson.loads(prep.body)
    jsonschema.validate(body, ALERTMANAGER_ALERTS)
    assert body[0]["startsAt"] == "2026-03-01T08:00:00Z" and body[0]["endsAt"] == "2026-03-02T08:00:00Z"
    assert prep.meta is not None and prep.meta["labels"] == body[0]["labels"]
    sl = cfg.destinations["risk-slack"]
    long = alert("high_risk_purchase", "high", **{f"k{i}": "<b>" + "x" * 5000 for i in range(12)})
    [job] = jobs_for(long, sl)
    msg = orjson.loads(prepare(sl, job, cfg.masker).body)
    jsonschema.validate(msg, SLACK_MESSAGE)  # limits respected even for huge details
    assert "<b>" not in orjson.dumps(msg).decode()  # mrkdwn control characters escaped


def test_attempt_headers_are_signed_fresh() -> None:
    cfg = _cfg()
    wh = cfg.destinations["events-webhook"]
    [job] = jobs_for(alert("collector_page", "high"), wh)
    prep = prepare(wh, job, cfg.masker)
    h1 = attempt_headers(wh, prep, 1, False, 1_000_000)
    h2 = attempt_headers(wh, prep, 2, True, 1_000_900)
    assert verify_signature("sig-secret", h1["X-Riskmon-Timestamp"], prep.body, h1["X-Riskmon-Signature"], now=1_000_000)
    assert not verify_signature("sig-secret", h1["X-Riskmon-Timestamp"], prep.body, h1["X-Riskmon-Signature"],
                                now=1_000_900)  # an old attempt's signature is stale ...
    assert verify_signature("sig-secret", h2["X-Riskmon-Timestamp"], prep.body, h2["X-Riskmon-Signature"],
                            now=1_000_900)  # ... so each retry is re-signed
    assert h2["X-Riskmon-Redelivery"] == "1" and "X-Riskmon-Redelivery" not in h1
    assert h1["X-Riskmon-Dedup-Key"] == orjson.loads(prep.body)["dedup_key"]


def test_token_bucket_never_exceeds_burst_plus_rate_times_elapsed() -> None:
    clock = {"t": 0.0}

    async def fake_sleep(s: float) -> None:
        clock["t"] += s

    async def run() -> list[float]:
        bucket = TokenBucket(4.0, 3, clock=lambda: clock["t"], sleep=fake_sleep)
        times = []
        for _ in range(23):
            await bucket.acquire()
            times.append(clock["t"])
        return times

    times = asyncio.run(run())
    assert times[:3] == [0.0, 0.0, 0.0]  # the burst
    for i, t0 in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 3 + 4.0 * (times[j] - t0) + 1e-9
    assert times[-1] == pytest.approx(5.0)  # 20 tokens beyond the burst at 4/s


def test_status_classification_retry_after_and_lease() -> None:
    assert classify(202) == (True, False)
    assert classify(429) == (False, False) and classify(503) == (False, False)
    assert classify(400) == (False, True) and classify(404) == (False, True)
    assert parse_retry_after("7", 0) == 7.0 and parse_retry_after(None, 0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == pytest.approx(10.0)
    d = _cfg().destinations["events-webhook"]
    assert lease_ms_for(d) > (d.opt("timeout_s") + d.opt("backoff_max_s")) * 1000
