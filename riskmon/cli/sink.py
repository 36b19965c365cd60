"""`riskmon sink` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sink` command."""
    p = sub.add_parser("sink", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon sink: not implemented yet") or 1)
