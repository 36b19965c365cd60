"""`riskmon simulate`: realistic input traffic with ground truth, to a JSONL file or to Kafka.

Why a command: replays, demos and benchmarks all start from the same deterministic traffic; the truth
file next to it is what the pipeline's outputs are checked against.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

EPILOG = """\
examples:
  riskmon simulate --days 120 --users 2000 --enterprises 100 --seed 7 --start 2026-03-01 \\
      --out var/sim/input.jsonl --truth var/sim/truth.json
  riskmon simulate --users 200 --days 30 --bad-rate 0 --dup-rate 0 --late-rate 0 --out clean.jsonl
  riskmon simulate --bootstrap localhost:9092 --truth var/sim/truth.json

JSONL lines are {"topic", "key", "value": {...}} or {"topic", "key", "raw": "<payload>"} for payloads
that are not JSON objects; lines are in event-time order except injected late events. The same
arguments always give byte-identical files. Segments: prime, near_prime, subprime, cure_after_late,
bust_out.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `simulate` command."""
    p = sub.add_parser(
        "simulate",
        help="generate realistic input traffic with ground truth (JSONL file or Kafka)",
        description="Simulate consumers (latent segments: prime, near-prime, subprime, cure-after-late, "
        "bust-out) and enterprises over a window of event time, inject bad input, duplicates and late "
        "events, and write the messages to a JSONL file or produce them to Kafka, plus a ground-truth "
        "JSON file (per-user outstanding, credit balance, default instant, bust-out start; per-line bad "
        "input; counts).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--days", type=int, default=120, help="length of the window in days (default 120)")
    p.add_argument("--users", type=int, default=2000, help="number of consumers (default 2000)")
    p.add_argument("--enterprises", type=int, default=100, help="number of enterprises (default 100)")
    p.add_argument("--seed", type=int, default=7, help="random seed; same seed = same bytes (default 7)")
    p.add_argument("--start", default="2026-03-01", help="first day of the window, 00:00Z (default 2026-03-01)")
    p.add_argument("--bad-rate", type=float, default=0.01,
                   help="extra contract-breaking messages per valid event (default 0.01)")
    p.add_argument("--dup-rate", type=float, default=0.01,
                   help="share of valid events re-sent as exact duplicates (default 0.01)")
    p.add_argument("--late-rate", type=float, default=0.01,
                   help="share of valid events emitted 5 min - 3 h after their event-time slot (default 0.01)")
    p.add_argument("--segments", default=None, metavar="MIX",
                   help="segment proportions, e.g. prime=0.45,near_prime=0.3,subprime=0.15,"
                   "cure_after_late=0.06,bust_out=0.04 (the default)")
    p.add_argument("--no-installment-truth", action="store_true",
                   help="leave the per-installment list out of the truth file (smaller file)")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", type=Path, metavar="FILE.jsonl", help="write messages to this JSONL file")
    dest.add_argument("--bootstrap", metavar="HOST:PORT",
                      help="produce messages to this Kafka broker (creates missing input topics with "
                      "RISKMON_PARTITIONS partitions)")
    p.add_argument("--truth", type=Path, metavar="TRUTH.json",
                   help="ground-truth file (default: next to --out as <name>.truth.json; with --bootstrap "
                   "none unless given)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes simulating customers (default: CPUs up to 4 for >= 1000 users, else 1); "
                   "the output is the same for any value")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the run, write or produce it, print counts and throughput."""
    from simulator import SimConfig, SimConfigError, parse_segment_mix
    from simulator.config import DEFAULT_SEGMENT_MIX
    from simulator.stream import default_workers
    from simulator.writers import produce_simulation, timed_simulate, write_simulation

    console = Console(stderr=True)
    try:
        mix = parse_segment_mix(args.segments) if args.segments else dict(DEFAULT_SEGMENT_MIX)
        cfg = SimConfig(days=args.days, users=args.users, enterprises=args.enterprises, seed=args.seed,
                        start=args.start, bad_rate=args.bad_rate, dup_rate=args.dup_rate,
                        late_rate=args.late_rate, segment_mix=mix,
                        installments_truth=not args.no_installment_truth)
    except SimConfigError as exc:
        console.print(f"[red]riskmon simulate: {exc}[/red]")
        return 2
    workers = args.workers if args.workers is not None else default_workers(cfg)
    truth = args.truth
    if truth is None and args.out is not None:
        truth = args.out.with_name(args.out.name.removesuffix(".jsonl") + ".truth.json")

    # Simulate before any live display: rich's refresh thread must not exist while workers are forked.
    if not args.quiet:
        console.print(f"simulating {cfg.users} customers and {cfg.enterprises} enterprises over {cfg.days} days "
                      f"({workers} worker process{'es' if workers > 1 else ''}) ...")
    sim, gen_wall, gen_cpu = timed_simulate(cfg, workers)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=args.quiet) as bar:
        task = bar.add_task("writing" if args.out else "producing", total=len(sim.lines))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if args.out is not None:
            stats = write_simulation(sim, args.out, truth, progress)
        else:
            try:
                stats = produce_simulation(sim, args.bootstrap, truth, progress)
            except Exception as exc:  # noqa: BLE001 - report broker problems as a CLI error, not a trace
                console.print(f"[red]riskmon simulate: producing to {args.bootstrap} failed: {exc}[/red]")
                return 1
    stats.generate_seconds, stats.cpu_seconds = gen_wall, stats.cpu_seconds + gen_cpu
    where = args.out if args.out is not None else f"kafka {args.bootstrap}"
    print(f"{stats.lines} messages -> {where} ({stats.bytes / 1e6:.1f} MB); valid {stats.valid}, "
          f"duplicates {stats.duplicates}, bad {stats.bad}, late {stats.late}")
    print("per topic: " + ", ".join(f"{t} {n}" for t, n in stats.per_topic.items()))
    if truth is not None:
        print(f"ground truth -> {truth}")
    print(f"throughput: {stats.events_per_s:,.0f} events/s end to end (generate {stats.generate_seconds:.2f} s, "
          f"{'write' if args.out else 'produce'} {stats.write_seconds:.2f} s = "
          f"{stats.lines / max(stats.write_seconds, 1e-9):,.0f} events/s); CPU {stats.cpu_seconds:.2f} s "
          f"incl. workers = {stats.lines / max(stats.cpu_seconds, 1e-9):,.0f} events per CPU-second",
          file=sys.stdout)
    return 0
