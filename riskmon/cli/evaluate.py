"""`riskmon evaluate` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    p = sub.add_parser("evaluate", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon evaluate: not implemented yet") or 1)
