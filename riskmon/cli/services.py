"""`riskmon services` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `services` command."""
    p = sub.add_parser("services", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon services: not implemented yet") or 1)
