"""The consumer-credit engine over the bench's input as its book ages, in-process (no Kafka, no Redis).

Why a script: stage (e) of ``riskmon bench`` opens 20k accounts and pages through ~54 simulated days in
60 s, and later events cost more (docs/performance.md, session 12). This prints, per chunk of the
stream, the engine's CPU per user event, ``to_bytes`` per written state, states written per event and
their mean size; and at the end a digest (sha256) of every output and every written state, which must
not change when an engine refactor claims to change nothing::

    .venv/bin/python scripts/engine_aging.py                   # 300k events, compiled if built
    RISKMON_ACCEL=0 .venv/bin/python scripts/engine_aging.py   # pure Python
    .venv/bin/python scripts/engine_aging.py --events 100000 --chunk 25000

The loop is a worker's, without the broker: batches of ``--batch`` user events in emission order, the
event-time watermark, due timers from a heap, the worker's GC settings.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import statistics
import time

import orjson

from riskmon.account import AccountState
from riskmon.bench import dataset
from riskmon.config import Settings
from riskmon.contract import TOPIC_METRICS, Rejected, decode
from riskmon.engine import Engine
from riskmon.eventtime import Watermark
from riskmon.policy import load_policy
from streams.gc_pauses import freeze_long_lived_objects


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000, help="input messages (default 300000, as (e) at 5k/s x 60 s)")
    ap.add_argument("--users", type=int, default=20_000, help="simulated users (default 20000, as the bench)")
    ap.add_argument("--chunk", type=int, default=50_000, help="input messages per printed row (default 50000)")
    ap.add_argument("--batch", type=int, default=80, help="user events per engine batch (default 80, a live batch)")
    args = ap.parse_args()

    lines = dataset.build_lines(args.events, args.users, 200, 7)
    freeze_long_lived_objects()
    settings = Settings()
    engine = Engine.for_settings(settings, load_policy(settings.policy_path))
    states: dict[str, AccountState] = {}
    wm = Watermark(engine.lateness_ms)
    timers: dict[str, int] = {}
    heap: list[tuple[int, str]] = []
    digest = hashlib.sha256()
    n_out = 0
    print(f"{'messages':>17}  {'engine us/ev':>12}  {'to_bytes us/state':>17}  {'states/ev':>9}  {'mean state B':>12}")
    for c0 in range(0, len(lines), args.chunk):
        evs = [ev for line in lines[c0:c0 + args.chunk] if line.topic != TOPIC_METRICS
               for ev in [decode(line.topic, line.value)] if not isinstance(ev, Rejected)]
        t_engine = t_ser = 0.0
        sizes: list[int] = []
        for b0 in range(0, len(evs), args.batch):
            batch = evs[b0:b0 + args.batch]
            for ev in batch:
                states.setdefault(ev.user_id, AccountState(ev.user_id))
                wm.observe(ev.ts)
            due = []
            while heap and heap[0][0] <= wm.value:
                at, uid = heapq.heappop(heap)
                if timers.get(uid) == at:
                    due.append(uid)
                    del timers[uid]
            t = time.perf_counter()
            res = engine.process(batch, states, wm.value, due)
            t_engine += time.perf_counter() - t
            for o in res.outputs:
                digest.update(orjson.dumps(o, default=str, option=orjson.OPT_SORT_KEYS))
            n_out += len(res.outputs)
            touched = sorted({e.user_id for e in batch}.union(due))
            t = time.perf_counter()
            blobs = [states[u].to_bytes() for u in touched]
            t_ser += time.perf_counter() - t
            for blob in blobs:
                digest.update(blob)
                sizes.append(len(blob))
            for uid in touched:
                nxt = engine.next_timer(states[uid])
                if nxt is None:
                    timers.pop(uid, None)
                elif timers.get(uid) != nxt:
                    timers[uid] = nxt
                    heapq.heappush(heap, (nxt, uid))
        if evs:
            print(f"{c0:>8}-{c0 + args.chunk:<8}  {t_engine / len(evs) * 1e6:12.1f}  "
                  f"{t_ser / max(1, len(sizes)) * 1e6:17.1f}  {len(sizes) / len(evs):9.2f}  "
                  f"{statistics.mean(sizes) if sizes else 0:12.0f}", flush=True)
    print(f"outputs {n_out}, digest of outputs and written states {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
