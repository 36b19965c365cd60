"""`riskmon dashboards`: export the Grafana dashboards as JSON files, or push them to a Grafana."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dashboards export` and `dashboards push`."""
    p = sub.add_parser(
        "dashboards",
        help="Grafana dashboards as code: export JSON files or push to a Grafana.",
        description="The riskmon Grafana dashboards (Risk ops overview, Collections and delinquency, "
        "Enterprise early warning, Model health) for the grafana-clickhouse-datasource plugin. Provisioning "
        "files for Grafana are in dashboards/provisioning/.",
    )
    dsub = p.add_subparsers(dest="dashboards_command", metavar="ACTION")
    e = dsub.add_parser("export", help="Write <uid>.json for every dashboard into DIR (validated against "
                        "dashboards/schema/dashboard.schema.json).")
    e.add_argument("dir", type=Path, help="Target directory, e.g. /var/lib/grafana/dashboards.")
    e.set_defaults(func=run_export)
    u = dsub.add_parser("push", help="Upsert the 'riskmon' folder and every dashboard into a Grafana "
                        "(idempotent: stable uids, overwrite).")
    u.add_argument("--url", required=True, help="Grafana base URL, e.g. http://localhost:3000.")
    u.add_argument("--token", default=os.environ.get("GRAFANA_TOKEN"),
                   help="Service-account token (default: $GRAFANA_TOKEN); or put user:pass in the URL.")
    u.add_argument("--folder", default="riskmon", help="Folder uid and title (default: riskmon).")
    u.set_defaults(func=run_push)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_export(args: argparse.Namespace) -> int:
    """Export the JSON models."""
    from dashboards.publish import export

    for path in export(args.dir):
        print(path)
    return 0


def run_push(args: argparse.Namespace) -> int:
    """Push the folder and dashboards."""
    from dashboards.publish import push

    for reply in push(args.url, args.token, folder_uid=args.folder, folder_title=args.folder):
        print(f"{reply.get('status', 'ok')}: {reply.get('url', reply.get('uid', ''))}")
    return 0
