"""`riskmon config`: print the effective settings and the documented defaults."""

from __future__ import annotations

import argparse

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `config` command."""
    p = sub.add_parser("config", help="Show settings (env var, value, meaning); --markdown for the README table.")
    p.add_argument("--markdown", action="store_true", help="Print the README configuration table.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every setting with its environment variable and meaning."""
    s = Settings()
    if args.markdown:
        print("| env var | default | meaning |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        env = f"RISKMON_{name.upper()}"
        if args.markdown:
            default = field.default if name != "var_dir" else "<repo>/var"
            print(f"| `{env}` | `{default}` | {field.description} |")
        else:
            print(f"{env:34} = {getattr(s, name)!s:40}  # {field.description}")
    return 0
