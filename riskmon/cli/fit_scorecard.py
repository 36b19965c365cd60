"""`riskmon fit-scorecard`: fit the scorecard prior on a previous book's resolved labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `fit-scorecard` command."""
    p = sub.add_parser(
        "fit-scorecard",
        help="Fit the scorecard prior (logistic points table) on the labels of a previous book.",
        description="Replays a history through the broker-free engine (the code the workers run), takes "
        "every resolved label (paid by due + grace = 0, 30 days past due = 1) with the features frozen at "
        "its decision, and fits a regularised logistic regression over the model features. Writes a "
        "scorecard JSON to use with RISKMON_SCORECARD_FILE, or to ship as riskmon/policies/scorecard.json. "
        "Without --input it simulates a 360-day book with seed 8, so an evaluation on the default seed 7 "
        "scores customers the scorecard has never seen. Labels resolve 60 days after a purchase: give it "
        "at least 120 days of history.",
    )
    p.add_argument("--input", type=Path, help="history as simulator JSONL (default: simulate one)")
    p.add_argument("--days", type=int, default=360, help="days to simulate when no --input (default 360)")
    p.add_argument("--users", type=int, default=2000, help="users to simulate when no --input (default 2000)")
    p.add_argument("--seed", type=int, default=8, help="simulator seed when no --input (default 8)")
    p.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the fit (default 0.1)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write the scorecard (default var/scorecard.json; the shipped one is "
                   "riskmon/policies/scorecard.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Replay, fit, write, and print the points table."""
    from rich.console import Console
    from rich.table import Table

    from online_models.scorecard_fit import fit_scorecard
    from riskmon.offline import labelled_engine, read_lines, run_offline

    console = Console()
    settings = Settings()
    out = args.out or settings.var_dir / "scorecard.json"
    source = str(args.input)
    if args.input is None:
        from simulator import SimConfig, write_jsonl

        work = settings.var_dir / "fit-scorecard"
        work.mkdir(parents=True, exist_ok=True)
        args.input = work / "history.jsonl"
        source = f"simulator seed {args.seed}, {args.days} days, {args.users} users"
        with console.status(f"simulating {source}"):
            write_jsonl(SimConfig(days=args.days, users=args.users, seed=args.seed), args.input, work / "truth.json")
    elif not args.input.exists():
        console.print(f"[red]--input {args.input} does not exist[/red]")
        return 2
    engine = labelled_engine(settings)
    with console.status("replaying the history through the engine (broker-free)"):
        run_offline(read_lines(args.input), engine)
    try:
        with console.status(f"fitting on {len(engine.label_log)} labels"):
            sc = fit_scorecard(engine.label_log, c=args.c, source=source)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(sc.to_json())
    table = Table(title=f"scorecard: {sc.fitted['labels']} labels, {sc.fitted['defaults']} defaults, "
                  f"in-sample AUC {sc.fitted['auc_in_sample']}")
    table.add_column("feature")
    table.add_column("weight", justify="right")
    table.add_row("(intercept)", f"{sc.intercept:+.3f}")
    for k, w in sorted(sc.weights.items(), key=lambda kv: -abs(kv[1])):
        table.add_row(k, f"{w:+.3f}")
    console.print(table)
    console.print(f"written to {out}; use it with RISKMON_SCORECARD_FILE={out}")
    return 0
