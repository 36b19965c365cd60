"""``riskmon bench``: throughput, latency, scaling and memory of the pipeline on real Apache Kafka.

Why a package of its own: the numbers in docs/performance.md must be reproducible by one command and
comparable within one run (same machine load, same data), so every stage — raw client, naive Faust,
riskmon with 1 and 2 workers, paced latency (and its floor: the same harness with workers that do
only the plumbing), Redis round trips — runs against the same generated data
and the same broker, and reports side by side.

Public API::

    BenchConfig(events=100_000, users=20_000, partitions=4, ...)
    run_bench(config, settings, progress=None) -> dict     # the JSON report
    render(report) -> rich Table                            # what the CLI prints
"""

from riskmon.bench.report import render
from riskmon.bench.run import BenchConfig, run_bench

__all__ = ["BenchConfig", "render", "run_bench"]
