"""`riskmon bench` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `bench` command."""
    p = sub.add_parser("bench", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon bench: not implemented yet") or 1)
