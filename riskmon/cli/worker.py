"""`riskmon worker` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `worker` command."""
    p = sub.add_parser("worker", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("riskmon worker: not implemented yet") or 1)
