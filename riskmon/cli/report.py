"""`riskmon report`: one self-contained HTML page with every dashboard panel, rendered from ClickHouse."""

from __future__ import annotations

import argparse
from pathlib import Path

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` command."""
    p = sub.add_parser(
        "report",
        help="Write a self-contained HTML report (charts + headline numbers) from ClickHouse.",
        description="Runs the Grafana panels' SQL over the event-time range of the stored facts and writes "
        "one HTML file with inline SVG charts (no network needed to view it).",
    )
    p.add_argument("--out", type=Path, default=Path("report.html"), help="Output file (default: report.html).")
    p.add_argument("--dsn", help="ClickHouse DSN (default: RISKMON_CLICKHOUSE_DSN or chdb under var/).")
    p.add_argument("--sample", action="store_true",
                   help="Load the deterministic sample records first (demo / smoke test of an empty store).")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render the report."""
    from rich.console import Console

    from dashboards.report import write_report

    dsn = args.dsn or Settings().clickhouse
    console = Console(stderr=True)
    if args.sample:
        from sinks.clickhouse.client import connect
        from sinks.clickhouse.migrations import migrate
        from sinks.clickhouse.sample import load, sample_records

        client = connect(dsn)
        try:
            migrate(client)
            with console.status("loading sample records"):
                n = load(client, sample_records())
        finally:
            client.close()
        console.print(f"loaded {n} sample records")
    with console.status("querying ClickHouse and rendering"):
        out = write_report(dsn, args.out)
    print(out)
    return 0
