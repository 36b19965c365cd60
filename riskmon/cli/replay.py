"""`riskmon replay FILE --out DIR`: back-test the real pipeline on a JSONL file."""

from __future__ import annotations

import argparse
from pathlib import Path

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `replay` command."""
    p = sub.add_parser(
        "replay",
        help="Run the real pipeline (broker, workers, Redis, ClickHouse) on a JSONL file; write outputs.",
        description="Produce FILE (one {\"topic\",\"value\"|\"raw\"} object per line, as written by "
        "`riskmon simulate`) in file order, run real workers until every event is processed, and write "
        "alerts.jsonl, limit_changes.jsonl, bureau_reports.jsonl, dead_letters.jsonl, accounts.jsonl, "
        "enterprises.jsonl and summary.json to DIR. Starts the embedded broker and redis-server unless "
        "RISKMON_BROKER_URL / RISKMON_REDIS_URL are set, and stops what it started.",
    )
    p.add_argument("file", type=Path, help="input JSONL file")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--speed", type=float, default=0.0,
                   help="0 = as fast as possible (default); 60 = one simulated minute per second")
    p.add_argument("--workers", type=int, default=1, help="worker processes in the consumer group (default 1)")
    p.add_argument("--broker", default=None, help="tansu | apache | kafka://host:port (default: RISKMON_BROKER)")
    p.add_argument("--reset-state", action="store_true",
                   help="allow emptying the configured RISKMON_REDIS_URL before the replay")
    p.add_argument("--no-clickhouse", action="store_true", help="do not write ClickHouse facts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the replay with a live progress line and print the summary."""
    from rich.console import Console

    from riskmon.replay import replay

    console = Console(stderr=True)
    settings = Settings()
    from riskmon.replay import ReplayError

    if not args.file.exists():
        console.print(f"[red]no such file: {args.file}[/red]")
        return 2
    sink = _sink(settings) if not args.no_clickhouse else None
    with console.status("starting services") as status:
        def progress(phase: str, info: dict) -> None:
            status.update(f"{phase}: " + ", ".join(f"{k}={v}" for k, v in info.items()))

        try:
            res = replay(args.file, args.out, settings, speed=args.speed, workers=args.workers, broker=args.broker,
                         sink=sink, say=lambda m: console.print(m), progress=progress,
                         reset_state=args.reset_state)
        except ReplayError as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        finally:
            if sink is not None:
                sink.close()
    import json

    print(json.dumps(res.summary, indent=2))
    console.print(f"outputs in {res.out_dir}")
    return 0


def _sink(settings: Settings):  # noqa: ANN202 - optional dependency boundary
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import migrate
    from sinks.clickhouse.writer import FactSink

    client = connect(settings.clickhouse)
    migrate(client)
    return FactSink(client)
