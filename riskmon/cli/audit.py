"""`riskmon audit`: verify the hash-chained decision log, anchor it, export anchors, show a subject's trail.

Why a command: integrity checks must be runnable by an auditor or a cron job without Python; the exit
code (0 intact, 1 tampering found, 2 cannot run) makes `riskmon audit verify` usable as an alert.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from riskmon.config import Settings

EXIT_OK, EXIT_TAMPERED, EXIT_ERROR = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    """Add `audit verify|anchor|export-anchors|trail`."""
    p = sub.add_parser(
        "audit",
        help="verify / anchor / export the tamper-evident decision log (docs/audit.md)",
        description="The audit log chains every customer-affecting decision (limit change, alert, bureau "
        "report) with SHA-256 in ClickHouse tables audit_log and audit_anchors. See docs/audit.md.",
    )
    p.set_defaults(func=lambda args: p.print_help() or EXIT_ERROR)
    cmds = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")

    def dsn_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dsn", help="ClickHouse DSN (default: RISKMON_CLICKHOUSE_DSN or chdb://<var_dir>/clickhouse)")

    v = cmds.add_parser(
        "verify",
        help="recompute every chain and anchor; exit 1 on tampering",
        description="Recompute every hash chain and the anchors from the stored rows. Prints the chains and "
        "records checked and the first problem (edited|deleted|inserted|reordered|truncated). Exit codes: "
        "0 intact, 1 tampering found, 2 cannot run (bad DSN, engine locked by another process).",
    )
    dsn_arg(v)
    v.add_argument("--anchors", type=Path, metavar="FILE",
                   help="also check against anchors exported earlier (JSON lines from `audit export-anchors`), "
                   "e.g. kept in a write-once store: catches a rewrite of both tables")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--max-problems", type=int, default=20, help="problems to list (default 20)")
    v.set_defaults(func=_verify)

    a = cmds.add_parser("anchor", help="write an anchor for every chain that moved since its last anchor",
                        description="Anchor now (the sink also anchors every N records / event-time period).")
    dsn_arg(a)
    a.set_defaults(func=_anchor)

    e = cmds.add_parser("export-anchors", help="write all anchors as JSON lines (for a write-once store)",
                        description="Export the anchors table as JSON lines; keep the file outside ClickHouse "
                        "(object lock, WORM bucket, signed e-mail) and pass it to `audit verify --anchors`.")
    dsn_arg(e)
    e.add_argument("--out", type=Path, help="output file (default: stdout)")
    e.set_defaults(func=_export)

    t = cmds.add_parser("trail", help="show the audited decisions about one user or enterprise",
                        description="Print the audit records of one subject (user_id / enterprise_id) in "
                        "event-time order, as JSON lines.")
    dsn_arg(t)
    t.add_argument("subject", help="user_id or enterprise_id")
    t.add_argument("--limit", type=int, default=1000, help="at most this many records (default 1000)")
    t.set_defaults(func=_trail)


def _open(args: argparse.Namespace):  # noqa: ANN202 - returns (client, AuditLog)
    from riskmon.audit import AuditLog
    from sinks.clickhouse.client import connect

    client = connect(args.dsn or Settings().clickhouse)
    return client, AuditLog.from_policy(client)


def _verify(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from riskmon.audit import LOG_TABLE, Anchor

    err = Console(stderr=True)
    try:
        client, log = _open(args)
    except Exception as exc:  # noqa: BLE001 - report any connection problem as "cannot run"
        err.print(f"[red]cannot open ClickHouse:[/red] {exc}")
        return EXIT_ERROR
    try:
        external = None
        if args.anchors:
            external = [Anchor.from_json(line) for line in args.anchors.read_bytes().splitlines() if line.strip()]
        log.ensure_schema()
        total = int(client.query(f"SELECT count() FROM {LOG_TABLE}").result_rows[0][0])
        with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=args.json or not err.is_terminal) as bar:
            task = bar.add_task("records", total=total)
            report = log.verify(external, progress=lambda n: bar.advance(task, n))
    finally:
        client.close()
    if args.json:
        d = report.to_dict()
        d["problems"] = d["problems"][: args.max_problems]
        sys.stdout.write(orjson.dumps(d, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out = Console()
        status = "[green]OK[/green]" if report.ok else "[red]TAMPERING DETECTED[/red]"
        out.print(f"audit log {status}: {report.chains_checked} chains, {report.records_checked} records, "
                  f"{report.anchors_checked} anchors checked")
        if not report.ok:
            fp = report.first_problem
            out.print(f"first problem: chain {fp.chain} seq {fp.seq}: [bold]{fp.kind}[/bold] - {fp.detail}")
            out.print(f"{report.problems_total} problem(s) in total")
            for p in report.problems[1: args.max_problems]:
                out.print(f"  {p.chain} seq {p.seq}: {p.kind} - {p.detail}")
    return EXIT_OK if report.ok else EXIT_TAMPERED


def _anchor(args: argparse.Namespace) -> int:
    client, log = _open(args)
    try:
        n = log.anchor()
    finally:
        client.close()
    print(f"wrote {n} anchor(s)")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    client, log = _open(args)
    try:
        anchors = log.anchors()
    finally:
        client.close()
    data = b"".join(a.to_json() + b"\n" for a in anchors)
    if args.out:
        args.out.write_bytes(data)
        print(f"exported {len(anchors)} anchor(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
    return EXIT_OK


def _trail(args: argparse.Namespace) -> int:
    client, log = _open(args)
    try:
        rows = log.trail(args.subject, limit=args.limit)
    finally:
        client.close()
    for r in rows:
        sys.stdout.write(orjson.dumps(r).decode() + "\n")
    return EXIT_OK
