"""`riskmon sink`: the ClickHouse sink consumer (output topics + business-metrics -> fact tables)."""

from __future__ import annotations

import argparse
import signal
import threading


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sink` command."""
    p = sub.add_parser(
        "sink",
        help="Consume output topics and business-metrics into ClickHouse (buffered, idempotent).",
        description="Standalone consumer (group <app_id>-clickhouse-sink) of limit-changes, alerts, "
        "bureau-reports, dead-letters, decisions, dpd-snapshots, model-metrics, enterprise-health, "
        "repayments-applied and business-metrics. Applies ClickHouse migrations at start, writes in batches "
        "and commits offsets only after ClickHouse has the rows. Needs RISKMON_BROKER_URL (a running "
        "broker) and RISKMON_CLICKHOUSE_DSN (default: chdb under var/; one process per chdb dir). Ctrl-C "
        "flushes and stops.",
    )
    p.add_argument("--max-rows", type=int, default=5000, help="Flush after this many buffered rows.")
    p.add_argument("--max-interval", type=float, default=1.0, help="Flush at least this often (seconds).")
    p.add_argument("--max-buffer-rows", type=int, default=100_000,
                   help="Bound on buffered rows (backpressure beyond it).")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM, showing live counters."""
    from rich.console import Console
    from rich.live import Live

    from riskmon.config import Settings
    from sinks.clickhouse.consumer import SinkStats, run_sink

    settings = Settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stats = SinkStats()
    console = Console(stderr=True)

    def line(s: SinkStats) -> str:
        skipped = sum(s.skipped.values())
        return (f"sink -> {settings.clickhouse}: consumed {s.consumed}, written {s.written}, "
                f"commits {s.commits}, skipped {skipped}, flush failures {s.flush_failures}")

    with Live(line(stats), console=console, refresh_per_second=2, transient=False) as live:
        run_sink(settings, stop_event=stop, max_rows=args.max_rows, max_interval_s=args.max_interval,
                 max_buffer_rows=args.max_buffer_rows, stats=stats, on_progress=lambda s: live.update(line(s)))
    if stats.skipped:
        console.print(dict(stats.skipped))
    return 0
