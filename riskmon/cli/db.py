"""`riskmon db`: apply and inspect the ClickHouse schema migrations."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add `db migrate` and `db status`."""
    p = sub.add_parser(
        "db",
        help="ClickHouse schema: apply migrations, show applied/pending.",
        description="Manage the ClickHouse schema (fact tables and views) behind the dashboards and the "
        "report. The target is RISKMON_CLICKHOUSE_DSN (default: in-process chdb under RISKMON_VAR_DIR).",
    )
    p.add_argument("--dsn", help="ClickHouse DSN (chdb:///path or http(s)://user:pass@host:8123/db); "
                   "default: the configured one.")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    m = dsub.add_parser("migrate", help="Apply pending migrations (idempotent; safe to run at every start).")
    m.set_defaults(func=run_migrate)
    s = dsub.add_parser("status", help="List migrations with applied time or 'pending'.")
    s.set_defaults(func=run_status)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _dsn(args: argparse.Namespace) -> str:
    return args.dsn or Settings().clickhouse


def run_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations and say which ones ran."""
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import MigrationError, migrate

    client = connect(_dsn(args))
    try:
        done = migrate(client)
    except MigrationError as exc:
        Console(stderr=True).print(f"[red]migration failed:[/red] {exc}")
        return 1
    finally:
        client.close()
    if not done:
        print("schema is up to date")
    for mig in done:
        print(f"applied {mig.version:04d}_{mig.name}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print a table of migrations; exit 1 if any is pending or was edited after being applied."""
    from sinks.clickhouse.client import connect
    from sinks.clickhouse.migrations import status

    client = connect(_dsn(args))
    try:
        states = status(client)
    finally:
        client.close()
    table = Table(title="ClickHouse schema migrations")
    for col in ("version", "name", "state", "applied at"):
        table.add_column(col)
    for st in states:
        state = "applied" if st.applied else "pending"
        if not st.checksum_ok:
            state = "applied (file changed!)"
        table.add_row(f"{st.migration.version:04d}", st.migration.name, state,
                      st.applied_at.isoformat() if st.applied_at else "-")
    Console().print(table)
    return 0 if all(s.applied and s.checksum_ok for s in states) else 1
