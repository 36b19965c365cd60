"""`riskmon report` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` command."""
    p = sub.add_parser("report", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon report: not implemented yet") or 1)
