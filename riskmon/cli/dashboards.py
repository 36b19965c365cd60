"""`riskmon dashboards` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `dashboards` command."""
    p = sub.add_parser("dashboards", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon dashboards: not implemented yet") or 1)
