"""`riskmon hooks` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `hooks` command."""
    p = sub.add_parser("hooks", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon hooks: not implemented yet") or 1)
