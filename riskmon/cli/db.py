"""`riskmon db` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `db` command."""
    p = sub.add_parser("db", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon db: not implemented yet") or 1)
