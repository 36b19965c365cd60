"""`riskmon evaluate`: score decisions, the default model and early warning against ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    p = sub.add_parser(
        "evaluate",
        help="Score the model (prequential AUC vs a hindsight batch model), limits and EWS against truth.",
        description="Evaluate against the simulator's ground truth. Without --input, simulates first "
        "(--days/--users/--enterprises/--seed). With --replay DIR, decision checks use the real "
        "pipeline's outputs from `riskmon replay`; the model metrics always come from the broker-free "
        "engine, which also logs each decision's features for the hindsight batch model. Exits 1 when a "
        "target is missed.",
    )
    p.add_argument("--input", type=Path, help="simulator JSONL (default: simulate into var/evaluate/)")
    p.add_argument("--truth", type=Path, help="ground-truth JSON of --input")
    p.add_argument("--replay", type=Path, help="output directory of `riskmon replay` on the same input")
    p.add_argument("--days", type=int, default=300, help="days to simulate when no --input (default 300)")
    p.add_argument("--users", type=int, default=2000, help="users to simulate (default 2000)")
    p.add_argument("--enterprises", type=int, default=100, help="enterprises to simulate (default 100)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print a table of results and targets."""
    from rich.console import Console
    from rich.table import Table

    from riskmon.evaluate import evaluate

    console = Console()
    settings = Settings()
    if args.input is None:
        from simulator import SimConfig, write_jsonl

        out = settings.var_dir / "evaluate"
        out.mkdir(parents=True, exist_ok=True)
        args.input, args.truth = out / "input.jsonl", out / "truth.json"
        with console.status(f"simulating {args.days} days, {args.users} users"):
            write_jsonl(SimConfig(days=args.days, users=args.users, enterprises=args.enterprises, seed=args.seed),
                        args.input, args.truth)
    if args.truth is None:
        console.print("[red]--truth is required with --input[/red]")
        return 2
    with console.status("evaluating") as status:
        res = evaluate(args.input, args.truth, args.replay, settings, say=lambda m: status.update(m))
    for section in ("model", "decisions", "ews"):
        table = Table(title=section)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in res[section].items():
            if k == "by_month":
                continue
            if isinstance(v, dict | list):
                v = json.dumps(v)[:80]
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        console.print(table)
    months = res["model"].get("by_month") or []
    if months:
        table = Table(title="default model by month of decision (prequential) vs hindsight batch model")
        for col in ("month", "labels", "positives", "decision_auc", "batch_gbm_auc"):
            table.add_column(col, justify="right")
        for m in months:
            table.add_row(*(str(m[c]) for c in ("month", "labels", "positives", "decision_auc", "batch_gbm_auc")))
        console.print(table)
    targets = Table(title="targets")
    targets.add_column("target")
    targets.add_column("met")
    for k, v in res["targets_met"].items():
        targets.add_row(k, "[green]yes[/green]" if v else "[red]no[/red]")
    console.print(targets)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0 if res["all_targets_met"] else 1
