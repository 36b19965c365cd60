"""`riskmon state`: the layout of the account states in Redis, and the one-off migration to the current one."""

from __future__ import annotations

import argparse
import sys

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add `state layout` and `state migrate`."""
    p = sub.add_parser(
        "state",
        help="Account states in Redis: show their layout, migrate an older one.",
        description="Workers keep each user's account state in Redis under rm:u:<user>. A build that "
        "changes how it is stored records the layout in rm:layout, and workers refuse to start on "
        "another one (docs/state.md). The target is RISKMON_REDIS_URL unless --redis-url is given.",
    )
    p.add_argument("--redis-url", help="Redis to inspect or migrate (default: RISKMON_REDIS_URL).")
    ssub = p.add_subparsers(dest="state_command", metavar="ACTION")
    s = ssub.add_parser("layout", help="Print the recorded layout and how many layout-1 states remain; "
                        "exit 1 if a worker of this build would refuse to start.")
    s.set_defaults(func=run_layout)
    m = ssub.add_parser("migrate", help="Convert layout-1 states (hashes) to the current layout, in "
                        "atomic batches, keeping versions and TTLs; idempotent. Stop every worker first.")
    m.add_argument("--batch", type=int, default=500, help="keys per atomic script call (default 500)")
    m.set_defaults(func=run_migrate)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _client(args: argparse.Namespace):  # noqa: ANN202 - redis.Redis, imported lazily
    import redis

    url = args.redis_url or Settings().redis_url
    if not url:
        raise SystemExit("no Redis: pass --redis-url or set RISKMON_REDIS_URL")
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        client.close()
        raise SystemExit(f"cannot reach Redis at {url}: {exc}") from exc
    return client


def run_layout(args: argparse.Namespace) -> int:
    """Say which layout Redis records and whether layout-1 states are left."""
    from riskmon.state.layout import CURRENT_LAYOUT, count_old, stored_layout

    client = _client(args)
    try:
        layout, old = stored_layout(client), count_old(client)
    finally:
        client.close()
    print(f"recorded layout: {layout if layout is not None else 'none'}; this build reads: {CURRENT_LAYOUT}; "
          f"layout-1 account hashes: {old}")
    if layout == CURRENT_LAYOUT and old == 0:
        return 0
    if layout is None and old == 0:
        print("fresh: the first worker records the layout")
        return 0
    print("run `riskmon state migrate` with every worker stopped", file=sys.stderr)
    return 1


def run_migrate(args: argparse.Namespace) -> int:
    """Convert every layout-1 state, with a progress bar, and record the current layout."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from riskmon.state.layout import CURRENT_LAYOUT, count_old, migrate

    if args.batch < 1:
        raise SystemExit("--batch must be at least 1")
    client = _client(args)
    try:
        total = count_old(client)
        with Progress(TextColumn("migrating account states"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("migrate", total=total)
            done = migrate(client, batch=args.batch, progress=lambda n: bar.advance(task, n))
    finally:
        client.close()
    print(f"converted {done} account states to layout {CURRENT_LAYOUT}; rm:layout = {CURRENT_LAYOUT}")
    return 0
