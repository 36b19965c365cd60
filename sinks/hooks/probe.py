"""One-shot test deliveries for `riskmon hooks test`: no queue, no Redis, no dedup.

Why separate from the dispatcher: an operator wiring a new PagerDuty key or Slack URL wants to see the
receiver's HTTP status and latency right now, with exactly the payload and signature production uses,
without touching delivery state (a test must never mark a real dedup key as sent).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from riskmon.outputs import alert as make_alert
from sinks.hooks.formats import ACTION_RESOLVE, ACTION_TRIGGER, Job, attempt_headers, jobs_for, prepare
from sinks.hooks.routing import RESOLVING_TYPES, HookConfig


@dataclass(frozen=True)
class ProbeResult:
    """What one test request got back."""

    action: str
    status: int | None
    latency_ms: float
    response: str  # first 200 characters of the response body (or the error)
    dedup_key: str  # the external (masked) dedup key that was sent


def make_test_alert(kind: str = "collector_page", severity: str = "high") -> dict[str, Any]:
    """A clearly labelled test alert with a unique dedup key (a test never collides with real pages)."""
    now_ms = int(time.time() * 1000)
    subject = "riskmon-test-user"
    return make_alert(
        ts=now_ms, kind=kind, severity=severity, subject_type="user", subject_id=subject,
        dedup_key=f"riskmon-test:{kind}:{subject}:{uuid.uuid4().hex[:12]}",
        summary=f"TEST from `riskmon hooks test`: {kind} for {subject} (ignore)",
        details={"test": True, "dpd": 15, "overdue": "123.45"},
    )


async def send_test(
    config: HookConfig, dest_name: str, *, kind: str = "collector_page", severity: str = "high",
    resolve: bool = False, session: aiohttp.ClientSession | None = None,
) -> list[ProbeResult]:
    """Send a signed test alert to ``dest_name`` (and, with ``resolve``, resolve it again)."""
    dest = config.destinations[dest_name]
    if not dest.enabled:
        raise ValueError(f"destination {dest_name!r} is disabled: {dest.disabled_reason}")
    alert = make_test_alert(kind, severity)
    jobs = jobs_for(alert, dest)
    if resolve and dest.type in RESOLVING_TYPES:
        jobs.append(Job(dest.name, ACTION_RESOLVE, alert["dedup_key"], alert))
    own = session is None
    session = session or aiohttp.ClientSession()
    results: list[ProbeResult] = []
    meta: dict[str, Any] | None = None
    try:
        for job in jobs:
            prepared = prepare(dest, job, config.masker, meta, time.time())
            if job.action == ACTION_TRIGGER:
                meta = prepared.meta
            headers = attempt_headers(dest, prepared, 1, False, time.time())
            t0 = time.perf_counter()
            try:
                async with session.post(prepared.url, data=prepared.body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=float(dest.opt("timeout_s")))) as resp:
                    text = (await resp.text(errors="replace"))[:200]
                    status: int | None = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text = None, f"{type(exc).__name__}: {exc}"[:200]
            results.append(ProbeResult(job.action, status, (time.perf_counter() - t0) * 1000, text,
                                       prepared.external_key))
    finally:
        if own:
            await session.close()
    return results
