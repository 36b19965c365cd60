"""`riskmon demo` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    p = sub.add_parser("demo", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon demo: not implemented yet") or 1)
