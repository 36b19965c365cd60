"""`riskmon bench`: throughput, latency, scaling and memory on real Apache Kafka (docs/performance.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `bench` command."""
    p = sub.add_parser(
        "bench",
        help="Benchmark raw Kafka vs naive Faust vs the riskmon pipeline (1 and 2 workers), latency, Redis.",
        description="Starts Apache Kafka and a redis-server, simulates --events input messages once and runs, "
        "on that same data: (a) raw aiokafka consume + orjson decode; (b) a naive one-event-at-a-time Faust "
        "agent (decode + Redis GET + SET per event); (c) the full pipeline with 1 worker; (d) with 2 workers; "
        "(e) event -> decision latency at a paced offered rate (2 workers, the Kafka Java client producing; p50 / p99 "
        "also per 10 s of sending, as the book ages), preceded by (e0), the same harness with workers that do only "
        "the plumbing (riskmon.bench.floor_app): the machine's and the libraries' own latency floor; (f) AccountStore load/commit round trips; "
        "(g) memory: one worker owning --memory-users users; when (c) runs the compiled build (`riskmon accel "
        "status`), (c') drains the same events with a compiled and a pure-Python worker at the same time, for "
        "the compiled build's gain in CPU per message (pure_cpu/compiled_cpu). "
        "Prints a table (events/s, c/b, c/a, d/c, latency, CPU split, RSS, Redis memory per 1k users, "
        "targets) and writes the same as JSON. d/c is given twice: over each stage's own window, and over "
        "the same events (the d target: (d)'s window opens later, once both workers are in the group, where "
        "events cost more; (c) is then timed over that same tail). Everything it starts is stopped at the end.",
    )
    p.add_argument("--events", type=int, default=100_000, help="input messages per throughput stage (default 100000)")
    p.add_argument("--users", type=int, default=20_000, help="simulated users (default 20000)")
    p.add_argument("--enterprises", type=int, default=200, help="simulated enterprises (default 200)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.add_argument("--naive-mode", choices=("redis", "decode"), default="redis",
                   help="stage (b) per event: decode + Redis GET + SET (default) or decode only")
    p.add_argument("--skip-latency", action="store_true", help="skip stage (e) (it takes --latency-seconds)")
    p.add_argument("--rate", type=float, default=5000.0, help="offered rate of stage (e), events/s (default 5000)")
    p.add_argument("--latency-seconds", type=float, default=60.0, help="duration of stage (e) (default 60)")
    p.add_argument("--no-floor", action="store_true",
                   help="skip (e0), the latency floor: before (e), the same harness at the same rate and length with "
                        "workers that do only the plumbing (fetch, decode, one Redis read, publish, one Redis write; "
                        "no riskmon work), so the latency targets have a same-run denominator (takes as long as (e))")
    p.add_argument("--latency-window", type=float, default=0.01,
                   help="worker batch window (RISKMON_BATCH_WITHIN_S) during stage (e), seconds (default 0.01)")
    p.add_argument("--latency-workers", type=int, default=2,
                   help="workers in one consumer group during stage (e) (default 2: one live worker on a 2-core "
                        "machine sustains ~3.3-4k/s, so at 5k/s it measures a growing backlog); the offered rate "
                        "is split between them by partition, as in production scale-out")
    p.add_argument("--latency-producer", choices=("java", "librdkafka"), default="java",
                   help="stage (e)'s paced producer (default java: the Kafka Java client, one produce request per "
                        "tick; librdkafka sends one per partition per tick, which costs the shared broker ~0.2 core "
                        "more at 5k/s: docs/performance.md, session 12)")
    p.add_argument("--memory-users", type=int, default=100_000,
                   help="stage (g): one worker drains 4 events per user of this many users and its peak RSS is "
                        "the memory target's measure (default 100000; 0 skips it, ~3 min)")
    p.add_argument("--no-pure", action="store_true",
                   help="skip (c'), the compiled and pure-Python workers side by side (only when (c) is compiled; ~40 s)")
    p.add_argument("--redis-batch", type=int, default=500, help="users per AccountStore round trip in (f)")
    p.add_argument("--group-delay-ms", type=int, default=3000,
                   help="the bench broker's group.initial.rebalance.delay.ms (default 3000, Kafka's own default): "
                        "workers started together join one generation; 0 lets the first take every partition "
                        "and rebalance when the second joins (riskmon's test and replay brokers use 0)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="record py-spy profiles of worker-0 during (c) and (d) into DIR (collapsed stacks); py-spy "
                        "takes CPU on the same cores, so read d/c from a run without it; it cannot see inside compiled "
                        "modules, so run with RISKMON_ACCEL=0 for per-line profiles of riskmon's code")
    p.add_argument("--out", type=Path, default=Path("var/bench/bench.json"), help="JSON report path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the bench with a live progress display."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from riskmon.bench import BenchConfig, render, run_bench
    from riskmon.config import Settings

    console = Console()
    cfg = BenchConfig(events=args.events, users=args.users, enterprises=args.enterprises, partitions=args.partitions,
                      seed=args.seed, naive_mode=args.naive_mode, skip_latency=args.skip_latency,
                      latency_rate=args.rate, latency_seconds=args.latency_seconds,
                      latency_batch_within_s=args.latency_window,
                      latency_workers=args.latency_workers, latency_producer=args.latency_producer,
                      latency_floor=not args.no_floor,
                      memory_users=args.memory_users, pure_stage=not args.no_pure,
                      redis_batch=args.redis_batch, group_initial_delay_ms=args.group_delay_ms,
                      profile_dir=args.profile)
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        report = run_bench(cfg, Settings(), progress, say=lambda m: bar.console.print(f"[dim]{m}[/]"))
    console.print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    console.print(f"report written to {args.out}")
    return 0
