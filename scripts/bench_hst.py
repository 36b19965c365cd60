"""Micro-benchmarks of the HalfSpaceTrees walk and of the checkpoints that carry it.

Why a script: the numbers in ``online_models/flat_hst.py`` must be reproducible, and the "before" side
is code that no longer exists on this branch. ``walk`` times River's two calls, the old one-walk
(``online_models/hst_walk.py`` taken from git, ``--old-rev``) and ``FlatHST`` in one process, round by
round, on purchase inputs recorded from a simulated book. ``checkpoints`` times whatever code is on the
path (this checkout, unless ``PYTHONPATH`` names another), so run it once per checkout::

    .venv/bin/python scripts/bench_hst.py walk
    .venv/bin/python scripts/bench_hst.py checkpoints
    PYTHONPATH=/path/to/old/checkout .venv/bin/python scripts/bench_hst.py checkpoints
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import timeit
import tracemalloc
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OLD_WALK_REV = "bc909dd"  # the last commit with online_models/hst_walk.py (replaced by FlatHST)
if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(ROOT))  # this checkout's code, not whatever an editable install points at


def purchase_inputs() -> list[dict[str, float]]:
    """The anomaly detector's inputs for every purchase of a small simulated book (~13k)."""
    import online_models.anomaly as anomaly_module
    from riskmon.config import Settings
    from riskmon.offline import labelled_engine, read_lines, run_offline
    from simulator import SimConfig, write_jsonl

    seen: list[dict[str, float]] = []
    original = anomaly_module.anomaly_inputs

    def record(features: dict[str, float]) -> dict[str, float]:
        x = original(features)
        seen.append(x)
        return x

    with tempfile.TemporaryDirectory() as tmp:
        inp, truth = Path(tmp) / "in.jsonl", Path(tmp) / "truth.json"
        write_jsonl(SimConfig(days=90, users=800, enterprises=5, seed=7), inp, truth)
        anomaly_module.anomaly_inputs = record
        try:
            run_offline(read_lines(inp), labelled_engine(Settings(var_dir=Path(tmp) / "var")))
        finally:
            anomaly_module.anomaly_inputs = original
    return seen


def old_walk(rev: str) -> Callable[[Any, dict[str, float]], float] | None:
    """``score_then_learn`` of ``online_models/hst_walk.py`` at git ``rev`` (None if it is not there)."""
    try:
        src = subprocess.run(["git", "show", f"{rev}:online_models/hst_walk.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    module = types.ModuleType("old_hst_walk")
    exec(compile(src, f"{rev}:online_models/hst_walk.py", "exec"), module.__dict__)  # noqa: S102 - our repo
    return module.score_then_learn


def bench_walk(rev: str, rounds: int, warmup: int) -> None:
    from river.anomaly import HalfSpaceTrees

    from online_models.flat_hst import FlatHST

    xs = purchase_inputs()
    warm, timed = xs[:warmup], xs[warmup:]
    shape = {"n_trees": 15, "height": 8, "window_size": 250, "seed": 42}
    river = HalfSpaceTrees(**shape)
    flat = FlatHST(**shape)

    def river_call(x: dict[str, float]) -> float:
        score = float(river.score_one(x))
        river.learn_one(x)
        return score

    calls: dict[str, Callable[[dict[str, float]], float]] = {"river score_one + learn_one": river_call}
    walk = old_walk(rev)
    if walk is not None:
        walked = HalfSpaceTrees(**shape)
        calls[f"one-walk hst_walk ({rev})"] = lambda x: walk(walked, x)
    calls["FlatHST.score_then_learn"] = flat.score_then_learn
    for call in calls.values():
        for x in warm:
            call(x)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):  # round by round, so a busy spell of the machine hits every variant
        for name, call in calls.items():
            def run(call: Callable[[dict[str, float]], float] = call) -> None:
                for x in timed:
                    call(x)
            times[name].append(timeit.timeit(run, number=1) / len(timed) * 1e6)
    print(f"{len(timed)} purchases after {len(warm)} of warm-up, 15 trees x height 8, window 250, "
          f"min (median) of {rounds} rounds, µs per purchase:")
    for name, ts in times.items():
        print(f"  {name:40s} {min(ts):6.2f} ({statistics.median(ts):.2f})")


def _timed(fn: Callable[[], object], rounds: int) -> float:
    """Min over rounds of one call's seconds."""
    return min(timeit.repeat(fn, number=1, repeat=rounds))


def bench_purchase_checkpoint(rounds: int) -> None:
    import online_models.anomaly as anomaly_module
    from online_models.anomaly import PurchaseAnomaly

    xs = purchase_inputs()
    det = PurchaseAnomaly()
    original = anomaly_module.anomaly_inputs
    anomaly_module.anomaly_inputs = lambda x: x  # the recorded inputs are already squashed
    try:
        for x in xs:
            det.score_and_learn(x)
    finally:
        anomaly_module.anomaly_inputs = original
    blob = det.to_bytes()
    enc = _timed(det.to_bytes, rounds)
    dec = _timed(lambda: PurchaseAnomaly.from_bytes(blob), rounds)
    print(f"PurchaseAnomaly after {len(xs)} purchases: checkpoint {len(blob):,} bytes, "
          f"to_bytes {enc * 1e6:,.0f} µs, from_bytes {dec * 1e6:,.0f} µs")


def bench_ews_state(rounds: int, days: int, enterprises: int) -> None:
    from riskmon.ews.offline import run_offline
    from riskmon.ews.service import decode_state, encode_state
    from simulator.config import start_ms
    from simulator.enterprises import generate

    events, _ = generate(11, enterprises, start_ms("2026-01-05"), days)
    _, _, states = run_offline(events)
    blobs = [encode_state(st) for st in states.values()]
    enc = _timed(lambda: [encode_state(st) for st in states.values()], rounds) / len(states)
    dec = _timed(lambda: [decode_state(b) for b in blobs], rounds) / len(blobs)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [decode_state(b) for b in blobs]
    held = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    tracemalloc.stop()
    sizes = [len(b) for b in blobs]
    forests = [len(pickle.dumps(st.anomaly.forest, protocol=pickle.HIGHEST_PROTOCOL)) for st in states.values()]
    print(f"EWS state after {days} days ({len(states)} enterprises): pickle median {statistics.median(sizes):,.0f} "
          f"bytes (mean {statistics.mean(sizes):,.0f}; the anomaly forest {statistics.median(forests):,.0f}), "
          f"encode {enc * 1e6:,.0f} µs, decode {dec * 1e6:,.0f} µs, "
          f"{held / 1024:,.1f} KB in memory ({held / statistics.mean(sizes):.2f}x the pickle)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("walk", "checkpoints"))
    parser.add_argument("--old-rev", default=OLD_WALK_REV, help="git revision holding online_models/hst_walk.py")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--enterprises", type=int, default=20)
    args = parser.parse_args(argv)
    import online_models

    print(f"code: {Path(online_models.__file__).parent.parent}", file=sys.stderr)
    if args.what == "walk":
        bench_walk(args.old_rev, args.rounds, args.warmup)
    else:
        bench_purchase_checkpoint(args.rounds)
        bench_ews_state(args.rounds, args.days, args.enterprises)


if __name__ == "__main__":
    main()
