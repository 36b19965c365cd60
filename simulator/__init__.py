"""Traffic simulator with ground truth.

Replays realistic consumer-credit traffic (customers with latent segments, purchases, repayments that
follow the exact installment ledger rule, bust-outs, cures, defaults) plus enterprise business
metrics, with injected bad input, duplicates and late events; writes JSONL or produces to Kafka, and
writes a ground-truth file the pipeline's outputs are checked against. See ``riskmon simulate --help``.

Public API::

    generate(config) -> Iterator[dict]          # JSONL line objects in emission order
    simulate(config, workers=1) -> Simulation   # .lines, .truth, .iter_dicts()
    write_jsonl(config, path, truth_path=None, progress=None, workers=1) -> Stats
    produce_to_kafka(config, bootstrap, truth_path=None, progress=None, partitions=None, workers=1) -> Stats
    read_jsonl(path) -> Iterator[(topic, key, payload bytes)];  payload_of(line) -> bytes
    scenarios.Scenario                          # hand-written scenarios for tests

The truth file's ``rules`` section states the definitions (default instant, installment columns, units).
"""

from simulator.config import DEFAULT_SEGMENT_MIX, SEGMENTS, SimConfig, SimConfigError, parse_segment_mix
from simulator.stream import Simulation, generate, simulate
from simulator.writers import Stats, payload_of, produce_to_kafka, read_jsonl, write_jsonl

__all__ = [
    "DEFAULT_SEGMENT_MIX",
    "SEGMENTS",
    "SimConfig",
    "SimConfigError",
    "Simulation",
    "Stats",
    "generate",
    "parse_segment_mix",
    "payload_of",
    "produce_to_kafka",
    "read_jsonl",
    "simulate",
    "write_jsonl",
]
