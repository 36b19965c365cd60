"""`riskmon replay` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `replay` command."""
    p = sub.add_parser("replay", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon replay: not implemented yet") or 1)
