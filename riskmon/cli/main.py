"""Entry point of the ``riskmon`` command.

Each command group lives in its own module next to this one and exposes ``register(subparsers)``; the
handler it sets (``func``) receives the parsed args and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "demo",
    "worker",
    "simulate",
    "replay",
    "services",
    "bench",
    "evaluate",
    "fit_scorecard",
    "db",
    "dashboards",
    "report",
    "hooks",
    "audit",
    "sink",
    "config_cmd",
    "accel",
    "state",
)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every command module."""
    parser = argparse.ArgumentParser(
        prog="riskmon",
        description="Real-time streaming credit-risk monitor. Configuration comes from RISKMON_* "
        "environment variables (see `riskmon config`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"riskmon.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
