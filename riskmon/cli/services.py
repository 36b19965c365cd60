"""`riskmon services up|down|status`: long-lived local broker + Redis for interactive work.

Why: `riskmon demo` and the tests start and stop their own services, but when you run workers,
the simulator and the sink by hand you want one broker and one Redis that stay up between commands.
`up` starts them detached (own session, they survive the shell command), records pids and URLs in
``<var_dir>/services.json`` and prints ``export`` lines for your shell::

    eval "$(riskmon services up --broker apache)"
    riskmon worker &  riskmon simulate ...
    riskmon services down

`down` stops exactly the processes recorded in services.json (checking each pid's start time, so a
recycled pid is never killed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from riskmon.config import Settings

ERR = Console(stderr=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `services` command group."""
    p = sub.add_parser(
        "services",
        help="start/stop a long-lived local broker and Redis (up|down|status)",
        description="Manage a local broker (Tansu or Apache Kafka KRaft) and redis-server that stay up "
        "between commands. State lives in $RISKMON_VAR_DIR/services.json.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    up = actions.add_parser(
        "up",
        help="start the broker and redis-server in the background and print export lines",
        description="Start the broker and redis-server detached, write services.json and print "
        "`export RISKMON_BROKER_URL=... RISKMON_REDIS_URL=...` lines on stdout, so "
        '`eval "$(riskmon services up)"` configures the current shell. Already up: prints the lines again.',
    )
    up.add_argument("--broker", choices=("tansu", "apache"), default=None,
                    help="which broker to start (default: $RISKMON_BROKER if tansu/apache, else tansu). "
                    "tansu starts in milliseconds and keeps data in memory; apache is real Kafka 4.x "
                    "(jars fetched by Maven on first use, ~5-10 s start, data under var/kafka)")
    up.add_argument("--no-redis", action="store_true", help="start only the broker")
    up.add_argument("--persist-redis", action="store_true",
                    help="turn on Redis append-only persistence in var/redis (default: memory only)")
    up.set_defaults(func=cmd_up)

    down = actions.add_parser("down", help="stop the services recorded in services.json",
                              description="Stop exactly the processes `riskmon services up` started "
                              "(SIGTERM, then SIGKILL after a timeout) and remove services.json.")
    down.add_argument("--timeout", type=float, default=20.0,
                      help="seconds to wait for a graceful stop before SIGKILL (default 20)")
    down.set_defaults(func=cmd_down)

    status = actions.add_parser("status", help="health-check the recorded services",
                                description="Check that each recorded process runs and answers "
                                "(Redis PING; broker metadata and identity). Exit 1 if any is unhealthy.")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)

    p.set_defaults(func=lambda args: p.print_help() or 2)


def state_file(settings: Settings) -> Path:
    """Where `up` records what it started."""
    return settings.var_dir / "services.json"


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The recorded services, or None."""
    path = state_file(settings)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        ERR.print(f"[yellow]ignoring unreadable {path}[/]")
        return None


def exports(state: dict[str, Any]) -> list[str]:
    """The shell lines that point riskmon commands at the recorded services."""
    lines = [f"export RISKMON_BROKER_URL={state['broker']['url']}"]
    if state.get("redis"):
        lines.append(f"export RISKMON_REDIS_URL={state['redis']['url']}")
    return lines


def _entries(state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, state[name]) for name in ("redis", "broker") if state.get(name)]


def _all_alive(state: dict[str, Any]) -> bool:
    from riskmon.services.procs import pid_alive

    return all(pid_alive(e["pid"], e.get("start_ticks")) for _, e in _entries(state))


def cmd_up(args: argparse.Namespace) -> int:
    """Start detached services unless the recorded ones still run."""
    from riskmon.services import ServiceError, Stack

    # Stale RISKMON_BROKER_URL / RISKMON_REDIS_URL from an earlier `up` must not stop us starting.
    settings = Settings().model_copy(update={"broker_url": None, "redis_url": None})
    state = read_state(settings)
    if state is not None:
        if _all_alive(state):
            ERR.print(f"services already up ({state_file(settings)}); `riskmon services down` stops them")
            print("\n".join(exports(state)))
            return 0
        ERR.print("[yellow]services.json records processes that are gone; stopping leftovers, starting anew[/]")
        _stop_recorded(state, timeout=5.0)
        state_file(settings).unlink(missing_ok=True)
    broker = args.broker or (settings.broker if settings.broker in ("tansu", "apache") else "tansu")
    stack = Stack(settings, broker=broker, redis=not args.no_redis, persist_redis=args.persist_redis,
                  detach=True, log=lambda m: ERR.print(f"[dim]{m}[/]"))
    try:
        with ERR.status(f"starting {broker} broker{'' if args.no_redis else ' and redis-server'}..."):
            stack.start()
    except ServiceError as exc:
        stack.stop()
        ERR.print(f"[red]services up failed:[/] {exc}")
        return 1
    except BaseException:
        stack.stop()
        raise
    by_name = {p.name: p for p in stack.started}
    broker_proc = next(p for n, p in by_name.items() if not n.startswith("redis"))
    state = {
        "var_dir": str(settings.var_dir),
        "broker": {"kind": broker, "url": stack.broker_url, "bootstrap": stack.bootstrap,
                   "pid": broker_proc.pid, "start_ticks": broker_proc.start_ticks,
                   "log": str(broker_proc.log_path)},
        "redis": None,
        "clickhouse_dsn": stack.clickhouse_dsn,
    }
    redis_proc = next((p for n, p in by_name.items() if n.startswith("redis")), None)
    if redis_proc is not None:
        state["redis"] = {"url": stack.redis_url, "pid": redis_proc.pid,
                          "start_ticks": redis_proc.start_ticks, "log": str(redis_proc.log_path)}
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2) + "\n")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in stack.timings.items())
    ERR.print(f"[green]up[/] ({timing}); state in {path}; stop with `riskmon services down`")
    print("\n".join(exports(state)))
    return 0


def _stop_recorded(state: dict[str, Any], *, timeout: float) -> list[str]:
    from riskmon.services.procs import stop_group

    stopped = []
    for name, entry in _entries(state):
        if stop_group(entry["pid"], start_ticks=entry.get("start_ticks"), timeout=timeout):
            stopped.append(f"{name} (pid {entry['pid']})")
    return stopped


def cmd_down(args: argparse.Namespace) -> int:
    """Stop what services.json records."""
    settings = Settings()
    state = read_state(settings)
    if state is None:
        ERR.print(f"nothing recorded in {state_file(settings)}; nothing to stop")
        return 0
    with ERR.status("stopping services..."):
        stopped = _stop_recorded(state, timeout=args.timeout)
    state_file(settings).unlink(missing_ok=True)
    ERR.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    ERR.print("unset RISKMON_BROKER_URL RISKMON_REDIS_URL in shells that exported them")
    return 0


def service_status(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Health of each recorded service: process alive and answering."""
    from riskmon.services import identify_broker
    from riskmon.services.procs import pid_alive
    from riskmon.services.redis import ping

    rows = []
    for name, entry in _entries(state):
        alive = pid_alive(entry["pid"], entry.get("start_ticks"))
        detail, healthy = "process gone", False
        if alive:
            try:
                if name == "redis":
                    healthy = ping(entry["url"])
                    detail = "PING ok"
                else:
                    ident = identify_broker(entry["bootstrap"], timeout_ms=5000)
                    healthy = ident.kind == entry["kind"]
                    detail = (f"{ident.kind} cluster {ident.cluster_id}, "
                              f"protocol {'.'.join(map(str, ident.api_version))}")
            except Exception as exc:
                detail = f"not answering: {exc}"
        rows.append({"service": name, "url": entry["url"], "pid": entry["pid"], "alive": alive,
                     "healthy": healthy, "detail": detail, "log": entry.get("log")})
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    """Print the health of the recorded services; exit 1 unless all are healthy."""
    settings = Settings()
    state = read_state(settings)
    if state is None:
        if args.json:
            print(json.dumps({"up": False, "services": []}))
        else:
            ERR.print(f"no services recorded in {state_file(settings)} (start them with `riskmon services up`)")
        return 1
    rows = service_status(state)
    ok = all(r["healthy"] for r in rows)
    if args.json:
        print(json.dumps({"up": ok, "services": rows}, indent=2))
        return 0 if ok else 1
    table = Table(title=f"riskmon services ({state_file(settings)})")
    for col in ("service", "url", "pid", "health", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["service"], r["url"], str(r["pid"]),
                      "[green]healthy[/]" if r["healthy"] else "[red]DOWN[/]", r["detail"])
    Console().print(table)
    return 0 if ok else 1
