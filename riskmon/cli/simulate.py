"""`riskmon simulate` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `simulate` command."""
    p = sub.add_parser("simulate", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon simulate: not implemented yet") or 1)
