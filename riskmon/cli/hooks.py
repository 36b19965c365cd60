"""`riskmon hooks`: inspect alert routing, send test alerts, read hook dead letters.

Why a CLI: wiring a PagerDuty key or a Slack URL is an operator task; they need to see which
destinations are enabled (and why not), and to fire one signed test alert and read the HTTP status,
without starting a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import yaml

from riskmon.config import Settings


def _config(settings: Settings) -> Any:
    from sinks.hooks.routing import load_hook_config

    policy = yaml.safe_load(settings.policy_path.read_text()) or {}
    return load_hook_config(settings, policy)


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    settings = Settings()
    cfg = _config(settings)
    if args.json:
        print(json.dumps({
            "destinations": [
                {"name": d.name, "type": d.type, "enabled": d.enabled, "disabled_reason": d.disabled_reason,
                 "url": d.safe_url, "url_source": d.url_source, "signed": bool(d.secret),
                 "rate_per_s": d.opt("rate_per_s"), "burst": d.opt("burst"), "max_attempts": d.opt("max_attempts"),
                 "timeout_s": d.opt("timeout_s")}
                for d in cfg.destinations.values()
            ],
            "routes": [{"name": r.name, "kinds": list(r.kinds), "min_severity": r.min_severity, "to": list(r.to),
                        "subject_types": list(r.subject_types) if r.subject_types else None, "stop": r.stop}
                       for r in cfg.routes],
            "masking": cfg.masker.mode,
        }, indent=2))
        return 0
    console = Console()
    t = Table(title=f"hook destinations ({settings.policy_path})")
    for col in ("name", "type", "enabled", "url", "limits"):
        t.add_column(col)
    for d in cfg.destinations.values():
        enabled = "[green]yes[/]" if d.enabled else f"[red]no[/]: {d.disabled_reason}"
        url = d.safe_url if d.url else d.url_source
        limits = (f"{d.opt('rate_per_s')}/s burst {d.opt('burst')}, {d.opt('max_attempts')} attempts, "
                  f"{d.opt('timeout_s')}s timeout{', signed' if d.secret else ''}")
        t.add_row(d.name, d.type, enabled, url, limits)
    console.print(t)
    r = Table(title="routes (every matching route adds its destinations)")
    for col in ("route", "kinds", "min severity", "subjects", "to", "stop"):
        r.add_column(col)
    for route in cfg.routes:
        to = ", ".join(n if cfg.destinations[n].enabled else f"[dim]{n} (disabled)[/]" for n in route.to)
        r.add_row(route.name, ", ".join(route.kinds), route.min_severity,
                  ", ".join(route.subject_types) if route.subject_types else "all", to, "yes" if route.stop else "")
    console.print(r)
    console.print(f"masking of customer ids: [bold]{cfg.masker.mode}[/]; `cured` alerts also resolve pages on "
                  "every pagerduty/alertmanager destination that delivered them.")
    return 0


def _test(args: argparse.Namespace) -> int:
    from sinks.hooks.probe import send_test

    cfg = _config(Settings())
    if args.dest not in cfg.destinations:
        print(f"unknown destination {args.dest!r}; known: {', '.join(cfg.destinations) or '(none)'}",
              file=sys.stderr)
        return 2
    dest = cfg.destinations[args.dest]
    if not dest.enabled:
        print(f"destination {args.dest!r} is disabled: {dest.disabled_reason}", file=sys.stderr)
        return 2
    print(f"sending a signed test {args.kind} ({args.severity}) to {dest.name} [{dest.type}] at {dest.safe_url}")
    results = asyncio.run(send_test(cfg, args.dest, kind=args.kind, severity=args.severity, resolve=args.resolve))
    ok = True
    for res in results:
        good = res.status is not None and 200 <= res.status < 300
        ok &= good
        status = res.status if res.status is not None else "no response"
        print(f"  {res.action:8s} HTTP {status}  {res.latency_ms:.1f} ms  dedup_key={res.dedup_key}"
              f"  {'OK' if good else 'FAILED'}  {res.response.strip()[:120]}")
    return 0 if ok else 1


def _dead(args: argparse.Namespace) -> int:
    import redis.asyncio as aioredis

    from sinks.hooks.dispatcher import read_dead_letters

    settings = Settings()
    if not settings.redis_url:
        print("RISKMON_REDIS_URL is not set: dead letters live in the worker's Redis (list hooks:dead)",
              file=sys.stderr)
        return 2

    async def read() -> list[dict[str, Any]]:
        client = aioredis.from_url(settings.redis_url)
        try:
            return await read_dead_letters(client, args.limit)
        finally:
            await client.aclose()

    for rec in asyncio.run(read()):
        print(json.dumps({k: v for k, v in rec.items() if k != "alert"} if not args.full else rec))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `riskmon hooks list|test|dead`."""
    p = sub.add_parser(
        "hooks", help="alert hooks: list routing, send a test alert, read dead letters",
        description="Alert hooks deliver alerts to webhooks, Slack, PagerDuty and Alertmanager as configured in "
        "the `hooks:` section of the policy file. URLs and secrets come from RISKMON_HOOK_<NAME>_URL, "
        "_SECRET, _ROUTING_KEY, _BEARER_TOKEN and RISKMON_HOOK_SECRET[_FILE]. See docs/hooks.md.",
    )
    hs = p.add_subparsers(dest="hooks_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    pl = hs.add_parser("list", help="show destinations (enabled or why not) and routes",
                       description="Show every destination of the policy's `hooks:` section, whether it is "
                       "enabled (URL and required secrets present), its limits, and the routes.")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(func=_list)

    pt = hs.add_parser("test", help="send a signed test alert to one destination and print status/latency",
                       description="Send one clearly labelled test alert (unique dedup key, masked test subject) "
                       "to DEST with the production payload format and signature, bypassing queues and "
                       "dedup state. Exit code 0 when every request got a 2xx.")
    pt.add_argument("dest", metavar="DEST", help="destination name (see `riskmon hooks list`)")
    pt.add_argument("--kind", default="collector_page", help="alert kind of the test alert (default collector_page)")
    pt.add_argument("--severity", default="high", choices=["info", "warning", "high", "critical"],
                    help="severity of the test alert (default high)")
    pt.add_argument("--resolve", action="store_true",
                    help="for pagerduty/alertmanager: resolve the test page right after triggering it")
    pt.set_defaults(func=_test)

    pd = hs.add_parser("dead", help="show the newest hook dead letters from Redis (list hooks:dead)",
                       description="Print the newest dead-lettered deliveries (one JSON per line) from the Redis "
                       "at RISKMON_REDIS_URL: destination, action, dedup key, error, attempts.")
    pd.add_argument("--limit", type=int, default=20, help="how many records (default 20)")
    pd.add_argument("--full", action="store_true", help="include the full (unmasked, internal) alert")
    pd.set_defaults(func=_dead)
