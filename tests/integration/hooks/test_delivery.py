"""Hook delivery against real local HTTP receivers and a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import jsonschema
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from hook_receivers import SECRET, Receiver, free_port, start_receiver

from riskmon.config import Settings
from riskmon.outputs import alert as make_alert
from sinks.hooks import HookDispatcher, read_dead_letters
from sinks.hooks.schemas import ALERTMANAGER_ALERTS, PAGERDUTY_EVENT, SLACK_MESSAGE

pytestmark = pytest.mark.integration

TS = 1_772_352_000_000  # 2026-03-01T08:00:00Z
FAST = {"backoff_base_s": 0.02, "backoff_max_s": 0.2, "max_attempts": 200, "rate_per_s": 10_000, "burst": 10_000,
        "timeout_s": 5}


def settings(**kw: Any) -> Settings:
    return Settings(hook_secret=SECRET, **kw)


def policy(dests: dict[str, dict[str, Any]], routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A hooks policy with fast retry defaults; by default every alert goes to every destination."""
    return {"hooks": {
        "defaults": dict(FAST),
        "masking": {"mode": "hmac"},
        "destinations": dests,
        "routes": routes if routes is not None else [{"kinds": "*", "to": list(dests)}],
    }}


def page(i: int, user: str = "user_1001", kind: str = "collector_page", severity: str = "high") -> dict[str, Any]:
    key = f"{kind}:{user}:ep{i}"
    return make_alert(ts=TS + i * 1000, kind=kind, severity=severity, subject_type="user", subject_id=user,
                      dedup_key=key, summary=f"{user} is 15 days past due (episode {i})",
                      details={"dpd": 15, "overdue": "1234.50", "user_id": user})


def cured(user: str, resolves: list[str], i: int = 999) -> dict[str, Any]:
    return make_alert(ts=TS + i * 1000, kind="cured", severity="info", subject_type="user", subject_id=user,
                      dedup_key=f"cured:{user}:{i}", summary=f"{user} repaid in full",
                      details={"resolves": resolves})


async def run_dispatcher(
    clean_redis_url: str, pol: dict[str, Any], alerts: list[dict[str, Any]], *, env: dict[str, str] | None = None,
    drain_s: float = 60, **kw: Any,
) -> HookDispatcher:
    client = aioredis.from_url(clean_redis_url)
    d = HookDispatcher(settings(), pol, client, env=env or {}, **kw)
    await d.start()
    try:
        for a in alerts:
            await d.submit(a)
        await d.drain(drain_s)
    finally:
        await d.stop()
        await client.aclose()
    return d


def test_webhook_is_signed_masked_and_carries_dedup_key(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver()
        try:
            d = await run_dispatcher(clean_redis_url, policy({"wh": {"type": "webhook", "url": rx.url + "/hook"}}),
                                     [page(1), page(2)])
        finally:
            await rx.stop()
        assert d.stats["wh"]["delivered"] == 2
        assert len(rx.requests) == 2
        for r in rx.requests:
            assert r.signature_ok, "receiver must accept riskmon's signature"
            assert r.path == "/hook"
            raw = r.body + orjson.dumps(r.headers)
            assert b"user_1001" not in raw, "raw customer id leaked to an external hook"
            body = r.json
            assert body["subject_id"].startswith("u_") and len(body["subject_id"]) == 14
            assert body["details"]["user_id"] == body["subject_id"]
            assert body["summary"].startswith(body["subject_id"])
            assert r.headers["X-Riskmon-Dedup-Key"] == body["dedup_key"]
            assert body["dedup_key"].startswith("collector_page:u_")
            assert r.headers["Content-Type"] == "application/json"
        assert len(set(rx.dedup_keys())) == 2

    asyncio.run(scenario())


def test_unmasked_when_masking_disabled(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver()
        client = aioredis.from_url(clean_redis_url)
        d = HookDispatcher(settings(mask_customer_ids=False),
                           policy({"wh": {"type": "webhook", "url": rx.url}}), client, env={})
        await d.start()
        await d.submit(page(1))
        await d.drain(30)
        await d.stop()
        await client.aclose()
        await rx.stop()
        assert rx.requests[0].json["subject_id"] == "user_1001"

    asyncio.run(scenario())


def test_slack_payload_schema(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver()
        try:
            await run_dispatcher(clean_redis_url, policy({"sl": {"type": "slack", "url": rx.url + "/services/T/B/x"}}),
                                 [page(1, severity="critical"), cured("user_1001", ["collector_page:user_1001:ep1"])])
        finally:
            await rx.stop()
        assert len(rx.requests) == 2
        for r in rx.requests:
            jsonschema.validate(r.json, SLACK_MESSAGE)
            assert b"user_1001" not in r.body
        assert "CRITICAL" in rx.requests[0].json["text"]
        assert ":white_check_mark:" in rx.requests[1].json["text"]

    asyncio.run(scenario())


def test_pagerduty_trigger_then_resolve_only_what_was_paged(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver(respond=lambda r: web.json_response({"status": "success"}, status=202))
        env = {"RISKMON_HOOK_ONCALL_ROUTING_KEY": "R0UT1NGKEY0000000000000000000000"}
        pol = policy({"oncall": {"type": "pagerduty", "url": rx.url + "/v2/enqueue"}},
                     routes=[{"kinds": ["collector_page", "delinquency_*"], "to": ["oncall"]}])
        alerts = [page(1), page(2, kind="delinquency_m1"), page(3, kind="overdue_sms", severity="warning"),
                  cured("user_1001", ["collector_page:user_1001:ep1", "never_paged:user_1001"])]
        try:
            d = await run_dispatcher(clean_redis_url, pol, alerts, env=env)
        finally:
            await rx.stop()
        events = [r.json for r in rx.requests]
        for e in events:
            jsonschema.validate(e, PAGERDUTY_EVENT)
            assert e["routing_key"] == env["RISKMON_HOOK_ONCALL_ROUTING_KEY"]
        assert [e["event_action"] for e in events] == ["trigger", "trigger", "resolve"]
        assert events[0]["payload"]["severity"] == "error"  # high -> error
        assert events[0]["payload"]["timestamp"] == "2026-03-01T08:00:01Z"
        assert events[2]["dedup_key"] == events[0]["dedup_key"], "resolve must close the page it opened"
        assert "user_1001" not in events[0]["dedup_key"]
        assert d.stats["oncall"]["resolve_skipped"] == 1  # never_paged:... was not delivered here

    asyncio.run(scenario())


def test_alertmanager_firing_then_resolved_with_same_labels(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver()
        pol = policy({"am": {"type": "alertmanager", "url": rx.url}},
                     routes=[{"kinds": "*", "min_severity": "high", "to": ["am"]}])
        alerts = [page(1), cured("user_1001", ["collector_page:user_1001:ep1"], i=5)]
        try:
            await run_dispatcher(clean_redis_url, pol, alerts)
        finally:
            await rx.stop()
        assert [r.path for r in rx.requests] == ["/api/v2/alerts", "/api/v2/alerts"]
        firing, resolved = rx.requests[0].json, rx.requests[1].json
        jsonschema.validate(firing, ALERTMANAGER_ALERTS)
        jsonschema.validate(resolved, ALERTMANAGER_ALERTS)
        assert firing[0]["labels"]["alertname"] == "collector_page"
        assert firing[0]["labels"]["subject"].startswith("u_")
        assert resolved[0]["labels"] == firing[0]["labels"], "Alertmanager identifies alerts by label set"
        assert resolved[0]["endsAt"] == "2026-03-01T08:00:05Z"
        assert firing[0]["startsAt"] == "2026-03-01T08:00:01Z"

    asyncio.run(scenario())


async def _down_then_up(clean_redis_url: str, down_s: float, n: int) -> tuple[Receiver, HookDispatcher]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = aioredis.from_url(clean_redis_url)
    d = HookDispatcher(settings(), policy({"wh": {"type": "webhook", "url": url, "max_attempts": 10_000}}),
                       client, env={})
    await d.start()
    for i in range(n):
        await d.submit(page(i, user=f"user_{i % 7}"))
    await asyncio.sleep(down_s)  # the receiver is down (connection refused) for this long
    rx = await start_receiver(port=port)
    try:
        await d.drain(down_s + 120)
    finally:
        await d.stop()
        await client.aclose()
        await rx.stop()
    return rx, d


@pytest.mark.parametrize("down_s", [3.0, pytest.param(30.0, marks=pytest.mark.slow)])
def test_receiver_down_then_recovers_gets_every_alert_exactly_once(clean_redis_url: str, down_s: float) -> None:
    n = 25
    rx, d = asyncio.run(_down_then_up(clean_redis_url, down_s, n))
    counts = Counter(rx.dedup_keys())
    assert len(counts) == n and set(counts.values()) == {1}
    assert all(r.signature_ok for r in rx.requests), "retries are re-signed with a fresh timestamp"
    assert d.stats["wh"]["delivered"] == n
    assert d.stats["wh"]["retried"] >= 1
    assert d.stats["wh"]["dead_lettered"] == 0


def test_rate_limit_bounds_request_count(clean_redis_url: str) -> None:
    rate, burst, n = 25.0, 3, 30

    async def scenario() -> Receiver:
        rx = await start_receiver()
        pol = policy({"wh": {"type": "webhook", "url": rx.url, "rate_per_s": rate, "burst": burst}})
        try:
            await run_dispatcher(clean_redis_url, pol, [page(i) for i in range(n)])
        finally:
            await rx.stop()
        return rx

    rx = asyncio.run(scenario())
    assert len(rx.requests) == n
    # Sequential delivery: arrival(0) < acquire(1) and acquire(n-1) < arrival(n-1); the bucket allows at
    # most burst + rate * t tokens in any span t, so n - 1 <= burst + rate * span. Noise only widens span.
    span = rx.requests[-1].at - rx.requests[0].at
    assert n - 1 <= burst + rate * span + 1e-6, f"{n} requests in {span:.3f}s exceed {rate}/s burst {burst}"


def test_slow_destination_does_not_stall_submit_or_others(clean_redis_url: str) -> None:
    n = 40

    async def scenario() -> None:
        gate = asyncio.Event()

        async def blocked(_: Any) -> web.Response:
            await gate.wait()
            return web.Response(text="late")

        slow = await start_receiver(respond=blocked)
        failing = await start_receiver(respond=lambda r: web.Response(status=503))
        fast = await start_receiver()
        client = aioredis.from_url(clean_redis_url)
        dead_seen: list[dict[str, Any]] = []
        pol = policy({
            "slow": {"type": "webhook", "url": slow.url, "queue_size": 5, "timeout_s": 60},
            "failing": {"type": "webhook", "url": failing.url, "max_attempts": 3},
            "fast": {"type": "webhook", "url": fast.url},
        })
        d = HookDispatcher(settings(), pol, client, env={}, on_dead_letter=dead_seen.append)
        await d.start()
        await d.submit(page(0))
        while not slow.requests:  # `slow` now holds its first request until the gate opens
            await asyncio.sleep(0.01)
        # submit must complete while `slow` is stuck: it never awaits a receiver
        await asyncio.wait_for(asyncio.gather(*(d.submit(page(i)) for i in range(1, n))), 30)
        while len(fast.requests) < n:  # the healthy destination is served while `slow` is stuck
            await asyncio.sleep(0.01)
        assert not gate.is_set() and len(slow.requests) == 1
        gate.set()
        await d.drain(60)
        await d.stop()
        dead = await read_dead_letters(client, limit=1000)
        await client.aclose()
        for rx in (slow, failing, fast):
            await rx.stop()

        assert d.stats["fast"]["delivered"] == n
        # slow: 1 in flight + 5 queued accepted, the rest overflowed to dead letters
        assert d.stats["slow"]["queue_full"] == n - 6
        assert d.stats["slow"]["delivered"] == 6
        assert d.stats["failing"]["dead_lettered"] == n
        assert len(failing.requests) == 3 * n
        assert Counter(r["dest"] for r in dead) == {"slow": n - 6, "failing": n}
        assert {r["error"] for r in dead if r["dest"] == "failing"} == {"HTTP 503"}
        assert {r["error"] for r in dead if r["dest"] == "slow"} == {"queue full"}
        assert len(dead_seen) == len(dead)

    asyncio.run(scenario())


def test_dedup_across_dispatcher_restart(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver(respond=lambda r: web.json_response({"status": "success"}, status=202))
        env = {"RISKMON_HOOK_PD_ROUTING_KEY": "k" * 32}
        pol = policy({"wh": {"type": "webhook", "url": rx.url + "/wh"},
                      "pd": {"type": "pagerduty", "url": rx.url + "/pd"}})
        first = [page(i) for i in range(10)]
        d1 = await run_dispatcher(clean_redis_url, pol, first, env=env)
        assert d1.stats["wh"]["delivered"] == 10 and d1.stats["pd"]["delivered"] == 10
        # a new worker process replays the same alerts (e.g. uncommitted offsets) plus two new ones
        d2 = await run_dispatcher(clean_redis_url, pol, first + [page(10), page(11)], env=env)
        await rx.stop()
        assert d2.stats["wh"] == {**d2.stats["wh"], "delivered": 2, "deduplicated": 10}
        assert d2.stats["pd"]["delivered"] == 2 and d2.stats["pd"]["deduplicated"] == 10
        assert Counter(r.path for r in rx.requests) == {"/wh": 12, "/pd": 12}
        assert set(Counter(rx.dedup_keys()).values()) == {2}  # once per destination

    asyncio.run(scenario())


def test_crash_between_send_and_mark_is_resent_flagged(clean_redis_url: str) -> None:
    async def scenario() -> None:
        rx = await start_receiver()
        client = aioredis.from_url(clean_redis_url)
        now_ms = int(time.time() * 1000)
        # a dead worker claimed two deliveries: one lease already expired, one expiring in 1.5 s
        await client.set("hooks:sent:wh:notify:collector_page:user_1001:ep1", f"pending|deadworker|{now_ms - 1}")
        await client.set("hooks:sent:wh:notify:collector_page:user_1001:ep2", f"pending|deadworker|{now_ms + 1500}")
        d = await run_dispatcher(clean_redis_url, policy({"wh": {"type": "webhook", "url": rx.url}}),
                                 [page(1), page(2), page(3)])
        await rx.stop()
        flagged = {r.json["dedup_key"].rsplit(":", 1)[1]: r.headers.get("X-Riskmon-Redelivery") for r in rx.requests}
        assert flagged == {"ep1": "1", "ep2": "1", "ep3": None}
        assert d.stats["wh"]["deferred"] >= 1 and d.stats["wh"]["redelivered"] == 2
        state = await client.get("hooks:sent:wh:notify:collector_page:user_1001:ep2")
        assert state.startswith(b"done|")
        await client.aclose()

    asyncio.run(scenario())


def test_permanent_error_dead_letters_once_and_releases_claim(clean_redis_url: str) -> None:
    async def scenario() -> None:
        status = {"code": 400}
        rx = await start_receiver(respond=lambda r: web.Response(status=status["code"]))
        pol = policy({"wh": {"type": "webhook", "url": rx.url}})
        d1 = await run_dispatcher(clean_redis_url, pol, [page(1)])
        assert d1.stats["wh"]["dead_lettered"] == 1 and len(rx.requests) == 1  # 400 is not retried
        client = aioredis.from_url(clean_redis_url)
        dead = await read_dead_letters(client)
        assert dead[0]["error"] == "HTTP 400" and dead[0]["alert"]["subject_id"] == "user_1001"
        # the claim was released, so replaying the dead letter after the fix delivers it
        status["code"] = 200
        d2 = await run_dispatcher(clean_redis_url, pol, [dead[0]["alert"]])
        assert d2.stats["wh"]["delivered"] == 1 and len(rx.requests) == 2
        await client.aclose()
        await rx.stop()

    asyncio.run(scenario())


def test_retry_after_429_then_success(clean_redis_url: str) -> None:
    async def scenario() -> None:
        calls = {"n": 0}

        def respond(_: Any) -> web.Response:
            calls["n"] += 1
            if calls["n"] <= 2:
                return web.Response(status=429, headers={"Retry-After": "0"})
            return web.Response(status=200)

        rx = await start_receiver(respond=respond)
        d = await run_dispatcher(clean_redis_url, policy({"wh": {"type": "webhook", "url": rx.url}}), [page(1)])
        await rx.stop()
        assert d.stats["wh"]["retried"] == 2 and d.stats["wh"]["delivered"] == 1
        assert [r.headers["X-Riskmon-Attempt"] for r in rx.requests] == ["1", "2", "3"]
        assert len({r.headers["X-Riskmon-Delivery-Id"] for r in rx.requests}) == 1

    asyncio.run(scenario())


def test_stop_mid_delivery_dead_letters_and_next_worker_resends_flagged(clean_redis_url: str) -> None:
    async def scenario() -> None:
        gate = asyncio.Event()

        async def hang(_: Any) -> web.Response:
            await gate.wait()
            return web.Response(status=200)

        stuck = await start_receiver(respond=hang)
        client = aioredis.from_url(clean_redis_url)
        d1 = HookDispatcher(settings(), policy({"wh": {"type": "webhook", "url": stuck.url, "timeout_s": 60}}),
                            client, env={})
        await d1.start()
        for i in range(3):
            await d1.submit(page(i))
        while not stuck.requests:
            await asyncio.sleep(0.01)
        await d1.stop(drain_timeout_s=0.05)  # the first request is in flight, two are queued
        dead = await read_dead_letters(client)
        assert sorted(r["error"] for r in dead) == ["shutdown", "shutdown", "shutdown during delivery"]
        gate.set()
        await stuck.stop()

        rx = await start_receiver()
        # the operator replays the dead letters into a new worker: the interrupted one is flagged
        d2 = await run_dispatcher(clean_redis_url, policy({"wh": {"type": "webhook", "url": rx.url}}),
                                  [r["alert"] for r in reversed(dead)])
        await rx.stop()
        await client.aclose()
        assert d2.stats["wh"]["delivered"] == 3 and d2.stats["wh"]["redelivered"] == 1
        flags = {r.json["dedup_key"].rsplit(":", 1)[1]: r.headers.get("X-Riskmon-Redelivery") for r in rx.requests}
        assert flags == {"ep0": "1", "ep1": None, "ep2": None}

    asyncio.run(scenario())
