"""`riskmon demo`: the whole pipeline on the embedded default, from simulated traffic to a report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    p = sub.add_parser(
        "demo",
        help="Simulate traffic, run it through broker + worker + Redis + ClickHouse, write dashboards and a report.",
        description="Runs the whole pipeline on the embedded default (Tansu broker, a local redis-server, "
        "the in-process ClickHouse engine): simulates consumers and enterprises with ground truth, replays "
        "them through a real worker with a live progress display, writes outputs, Grafana dashboards JSON "
        "and report.html under var/demo/, and checks the valid-event and dead-letter counts against the "
        "ground truth (exit 1 when they differ). Starts what it needs and stops it all at the end.",
    )
    p.add_argument("--users", type=int, default=1000, help="consumers to simulate (default 1000)")
    p.add_argument("--enterprises", type=int, default=60, help="enterprises to simulate (default 60)")
    p.add_argument("--days", type=int, default=90, help="days of event time (default 90)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--broker", default=None, help="tansu (default) | apache | kafka://host:port")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate, replay with a live display, write dashboards and the report, check against truth."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from dashboards.publish import export
    from dashboards.report import write_report
    from riskmon.eventtime import fmt_ts
    from riskmon.replay import replay
    from simulator import SimConfig, write_jsonl
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import migrate
    from sinks.clickhouse.writer import FactSink

    console = Console()
    settings = Settings()
    base = settings.var_dir / "demo"
    base.mkdir(parents=True, exist_ok=True)
    src, truth_path = base / "input.jsonl", base / "truth.json"
    t0 = time.monotonic()
    with console.status(f"simulating {args.users} users, {args.enterprises} enterprises, {args.days} days"):
        write_jsonl(SimConfig(days=args.days, users=args.users, enterprises=args.enterprises, seed=args.seed),
                    src, truth_path)
    truth = json.loads(truth_path.read_text())["counts"]
    console.print(f"simulated {truth['events_total']} messages ({truth['events_valid']} valid, "
                  f"{truth['duplicates']} duplicates, {truth['bad']} bad) in {time.monotonic() - t0:.1f}s")

    dsn = settings.clickhouse
    if dsn.startswith("chdb://"):
        Path(dsn[len("chdb://"):]).mkdir(parents=True, exist_ok=True)
    client = connect(dsn)
    migrate(client)
    sink = FactSink(client)
    state = {"phase": "starting", "t": time.monotonic(), "n": 0, "rate": 0.0}

    def view(info: dict) -> Table:
        table = Table(title="riskmon demo", show_header=False)
        table.add_row("phase", state["phase"])
        if info.get("event_time_ms"):
            table.add_row("simulated time", fmt_ts(info["event_time_ms"]))
        for label, key in (("events in", "events_in"), ("events applied", "events_valid"),
                           ("duplicates ignored", "duplicates"), ("dead letters", "dead_letters_out"),
                           ("alerts", "alerts"), ("consumer lag", "lag")):
            if key in info:
                table.add_row(label, str(info[key]))
        table.add_row("events/s", f"{state['rate']:.0f}")
        return table

    with Live(view({}), console=console, refresh_per_second=4) as live:
        def progress(phase: str, info: dict) -> None:
            state["phase"] = phase
            n = info.get("events_valid", info.get("events_in", 0))
            now = time.monotonic()
            if now - state["t"] >= 1.0:
                state["rate"] = (n - state["n"]) / (now - state["t"])
                state["t"], state["n"] = now, n
            live.update(view(info))

        try:
            res = replay(src, base / "out", settings, workers=args.workers, broker=args.broker, sink=sink,
                         say=lambda m: live.console.print(m), progress=progress)
        finally:
            sink.close()
            client.close()
    summary = res.summary
    dash_dir = settings.var_dir / "dashboards"
    export(dash_dir)
    report = write_report(dsn, base / "report.html")
    empty = _empty_panels(dsn)
    table = Table(title="summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    for k in ("events_in", "events_valid", "duplicates", "dead_letters", "bureau_reports", "accounts",
              "enterprises", "wall_seconds"):
        table.add_row(k, str(summary.get(k)))
    for k, v in summary["alerts_by_kind"].items():
        table.add_row(f"alerts: {k}", str(v))
    for k, v in summary["limit_changes_by_action"].items():
        table.add_row(f"limit changes: {k}", str(v))
    console.print(table)
    ok = summary["events_valid"] == truth["events_valid"] and summary["dead_letters"] == truth["bad"]
    console.print(f"ground truth: valid {truth['events_valid']}, bad {truth['bad']} -> "
                  + ("[green]match[/green]" if ok else "[red]MISMATCH[/red]"))
    console.print("every dashboard panel query returns data" if not empty
                  else f"[yellow]panels without data: {empty}[/yellow]")
    console.print(f"outputs: {res.out_dir}\ndashboards: {dash_dir}\nreport: {report}")
    return 0 if ok else 1


def _empty_panels(dsn: str) -> list[str]:
    """Run every Grafana panel's SQL over the whole event-time range of the data; list those with no rows."""
    from datetime import UTC, timedelta

    from dashboards.catalog import DASHBOARDS
    from dashboards.macros import ALL, TimeRange, dashboard_all_values, expand
    from dashboards.model import dashboard_json
    from sinks.clickhouse.client import connect

    client = connect(dsn)
    try:
        lo, hi = client.query("SELECT min(ts), max(ts) FROM decisions FINAL").result_rows[0]
        tr = TimeRange(lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC) + timedelta(days=1))
        empty = []
        for dash in DASHBOARDS:
            model = dashboard_json(dash)
            for panel in model["panels"]:
                for target in panel.get("targets", []):
                    sql = expand(target["rawSql"], tr, {"channel": ALL, "segment": ALL, "industry": ALL},
                                 dashboard_all_values(model))
                    if not client.query(sql).result_rows:
                        empty.append(f"{model['title']} / {panel['title']}")
        return empty
    finally:
        client.close()
