"""`riskmon audit` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `audit` command."""
    p = sub.add_parser("audit", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon audit: not implemented yet") or 1)
