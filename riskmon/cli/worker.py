"""`riskmon worker`: run one Faust worker (start several to form one consumer group)."""

from __future__ import annotations

import argparse

from riskmon.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `worker` command."""
    p = sub.add_parser(
        "worker",
        help="Run a Faust worker: consumes accounts/purchases/repayments/business-metrics/alerts.",
        description="Run one riskmon worker in the foreground. Workers with the same RISKMON_APP_ID form "
        "one consumer group: start more to scale out. Needs RISKMON_BROKER_URL and RISKMON_REDIS_URL "
        "(`riskmon services up` prints them).",
    )
    p.add_argument("-l", "--loglevel", default=None, help="crit|error|warn|info|debug (default: RISKMON_LOG_LEVEL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the worker."""
    from streams.worker import run_worker

    run_worker(Settings(), args.loglevel)
    return 0
