"""One simulated run: customers + enterprises, merged in event-time order, with faults injected.

The run is built in memory as compact entries (sort key, topic, key, payload bytes) so writing a file
or producing to Kafka is a tight loop over pre-serialised payloads. Ground truth is assembled from the
customers' schedules (valid events only) and the emitted lines (counts, duplicates, bad lines).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from riskmon.config import Settings
from riskmon.contract import INPUT_TOPICS, TOPIC_ACCOUNTS, TOPIC_METRICS
from riskmon.eventtime import MS_PER_HOUR, fmt_ts
from riskmon.policy import load_policy
from simulator import enterprises
from simulator.config import SEGMENTS, SimConfig
from simulator.consumers import Context, Customer
from simulator.faults import make_bad

# Line flags
VALID, DUPLICATE, BAD, LATE = "valid", "duplicate", "bad", "late"

# A line of the run: (emit ts, subject index, sequence, topic, key, payload, flag, is_raw, bad info)
Line = tuple[int, int, int, str, str, bytes, str, bool, tuple[str, str] | None]

ENTERPRISE_INDEX_BASE = 1 << 40
INJECTED_INDEX_BASE = 1 << 50
CUSTOMERS_PER_TASK = 50  # small tasks even out the load; a task costs only a shared-counter claim


def ledger_defaults() -> tuple[int, int]:
    """(default credit limit fen, default DPD) from the policy file, so truth matches the pipeline."""
    policy = load_policy(Settings().policy_path)
    return policy.default_limit, policy.default_dpd


def assign_segments(cfg: SimConfig) -> list[str]:
    """Exact segment counts by largest remainder, shuffled deterministically over customers."""
    total = sum(cfg.segment_mix.get(s, 0.0) for s in SEGMENTS)
    quotas = [(s, cfg.users * cfg.segment_mix.get(s, 0.0) / total) for s in SEGMENTS]
    counts = {s: int(q) for s, q in quotas}
    short = cfg.users - sum(counts.values())
    for s, _ in sorted(quotas, key=lambda sq: (-(sq[1] - int(sq[1])), SEGMENTS.index(sq[0])))[:short]:
        counts[s] += 1
    segments = [s for s in SEGMENTS for _ in range(counts[s])]
    random.Random(f"{cfg.seed}:segments").shuffle(segments)
    return segments


@dataclass
class Simulation:
    """A built run: its lines in emission order and its ground truth."""

    config: SimConfig | None  # None for hand-written scenarios without background traffic
    lines: list[Line]
    truth: dict[str, Any] = field(default_factory=dict)

    def iter_dicts(self) -> Iterator[dict[str, Any]]:
        """The JSONL line objects (``value`` decoded, ``raw`` kept as the exact payload string)."""
        for line in self.lines:
            if line[7]:
                yield {"topic": line[3], "key": line[4], "raw": line[5].decode("utf-8")}
            else:
                yield {"topic": line[3], "key": line[4], "value": orjson.loads(line[5])}


class _Tasks:
    """A run's work as numbered tasks: 0 = the enterprises, 1.. = chunks of customers.

    Why tasks claimed from a shared counter: the parent and its forked workers all take the next task
    until none is left, so the cores stay busy to the end whatever the load, and each worker sends
    its results once (a per-task round trip cost more than small tasks save). Any split gives the same
    run: customers have their own RNGs and results are assembled by task number.
    """

    def __init__(self, cfg: SimConfig, segments: list[str], default_limit_fen: int, default_dpd: int) -> None:
        self.cfg = cfg
        self.segments = segments
        # built once before any fork, so workers share it copy-on-write
        self.ctx = Context(cfg.seed, cfg.start_ms, cfg.end_ms, default_limit_fen, default_dpd,
                           cfg.installments_truth)
        chunks = max(1, -(-cfg.users // CUSTOMERS_PER_TASK))
        self.bounds = [cfg.users * k // chunks for k in range(chunks + 1)]
        self.count = chunks + 1

    def run(self, k: int) -> tuple[list[Line], Any]:
        """Do task ``k``: (sorted valid lines, enterprise truth list or user truth dict)."""
        if k == 0:
            return _enterprises(self.cfg)
        return _customers(self.cfg, self.ctx, self.segments, self.bounds[k - 1], self.bounds[k])

    def run_claimed(self, claim: Callable[[], int | None]) -> dict[int, tuple[list[Line], Any]]:
        """Run tasks as long as ``claim`` hands out task numbers."""
        done = {}
        while (k := claim()) is not None:
            done[k] = self.run(k)
        return done


def _customers(cfg: SimConfig, ctx: Context, segments: list[str], lo: int, hi: int,
               ) -> tuple[list[Line], dict[str, Any]]:
    """Simulate customers ``lo..hi-1`` (each has its own RNG, so any split gives the same result).

    The events come back as valid :data:`Line` tuples sorted by (ts, subject, sequence), so the parent
    only merges sorted runs and fault injection re-uses the tuples of events it leaves alone.
    """
    entries: list[tuple[int, int, int, str, str, bytes]] = []
    users: dict[str, Any] = {}
    width = max(5, len(str(cfg.users)))
    for i in range(lo, hi):
        uid = f"{cfg.user_prefix}{i:0{width}d}"
        cust = Customer(ctx, i, uid, segments[i])
        entries.extend(cust.run())
        users[uid] = cust.truth()
    entries.sort()  # (ts, customer index, sequence) is unique: payloads are never compared
    return [(*e, VALID, False, None) for e in entries], users


def _enterprises(cfg: SimConfig) -> tuple[list[Line], list[dict]]:
    """The enterprises' business metrics as valid :data:`Line` tuples in (ts, enterprise id) order."""
    events, truth = enterprises.generate_payloads(cfg.seed, cfg.enterprises, cfg.start_ms, cfg.days)
    return [(ts, ENTERPRISE_INDEX_BASE, j, TOPIC_METRICS, ent, payload, VALID, False, None)
            for j, (ts, ent, payload) in enumerate(events)], truth


def default_workers(cfg: SimConfig) -> int:
    """Processes the CLI uses (incl. itself): one per CPU (max 4) for big runs, else 1."""
    return min(os.cpu_count() or 1, 4) if cfg.users >= 1000 else 1


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a run is built.

    Why: a run allocates a few hundred thousand small containers (payload tuples, truth dicts and
    lists) that all stay alive until the end; every generation-0 overflow made the collector rescan
    them, which cost about a third of the generation time. Nothing here builds reference cycles, so
    pausing it frees no less memory. Forked workers inherit the pause.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _counter_claim(counter: Any, count: int) -> Callable[[], int | None]:
    """A claim function over a shared ``multiprocessing.Value``: the next task number, or None."""
    def claim() -> int | None:
        with counter.get_lock():
            k = counter.value
            if k >= count:
                return None
            counter.value = k + 1
        return k
    return claim


def _worker(tasks: _Tasks, claim: Callable[[], int | None], conn: Any) -> None:
    """Forked worker: run claimed tasks, then send ``(True, results)`` or ``(False, traceback)``."""
    try:
        conn.send((True, tasks.run_claimed(claim)))
    except BaseException:  # noqa: BLE001 - any failure must reach the parent, which raises it
        conn.send((False, traceback.format_exc()))
    finally:
        conn.close()


def _run_parallel(tasks: _Tasks, processes: int) -> dict[int, tuple[list[Line], Any]]:
    """Run all tasks on this process plus ``processes - 1`` forked workers."""
    mp = multiprocessing.get_context("fork")
    # The parent takes the enterprises (task 0) itself: per second of work they are four times as many
    # lines as customers, and lines made here need not be pickled back. Workers claim from task 1.
    claim = _counter_claim(mp.Value("i", 1), tasks.count)
    workers = []
    try:
        for _ in range(processes - 1):
            recv, send = mp.Pipe(duplex=False)
            proc = mp.Process(target=_worker, args=(tasks, claim, send), daemon=True)
            proc.start()
            send.close()
            workers.append((proc, recv))
        results = {0: tasks.run(0)}
        results.update(tasks.run_claimed(claim))
        for proc, recv in workers:
            try:
                ok, payload = recv.recv()
            except EOFError:
                raise RuntimeError(f"simulator worker {proc.pid} died (exit code {proc.exitcode})") from None
            if not ok:
                raise RuntimeError(f"simulator worker failed:\n{payload}")
            results.update(payload)
    finally:
        for proc, recv in workers:
            recv.close()
            if proc.is_alive():
                proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return results


def simulate(cfg: SimConfig, default_limit_fen: int | None = None, default_dpd: int | None = None,
             workers: int = 1) -> Simulation:
    """Build the whole run in memory (deterministic in ``cfg``, whatever ``workers`` is).

    ``workers > 1`` uses this process plus ``workers - 1`` forked ones (see :class:`_Tasks`). Only do
    that from a process without other threads (the CLI), since forking a multithreaded process can
    deadlock the child.
    """
    if default_limit_fen is None or default_dpd is None:
        pol_limit, pol_dpd = ledger_defaults()
        default_limit_fen = pol_limit if default_limit_fen is None else default_limit_fen
        default_dpd = pol_dpd if default_dpd is None else default_dpd
    segments = assign_segments(cfg)
    with _no_cyclic_gc():
        tasks = _Tasks(cfg, segments, default_limit_fen, default_dpd)
        n = max(1, min(workers, tasks.count))
        if n > 1 and "fork" in multiprocessing.get_all_start_methods():
            results = _run_parallel(tasks, n)
        else:
            results = {k: tasks.run(k) for k in range(tasks.count)}
        valid: list[Line] = []
        users: dict[str, Any] = {}
        for k in range(1, tasks.count):
            part, part_users = results[k]
            valid += part
            users.update(part_users)
        ent_lines, ent_truth = results[0]
        valid += ent_lines
        valid.sort()  # merges the sorted runs; (ts, subject, sequence) is unique
        lines = _inject(cfg, valid)
        truth = _truth(cfg, lines, users, ent_truth, default_limit_fen, default_dpd)
    return Simulation(cfg, lines, truth)


def _inject(cfg: SimConfig, valid: list[Line]) -> list[Line]:
    """Late emission, duplicates and bad messages at the configured rates, then emission order.

    ``valid`` holds VALID lines in event-time order; the RNG is drawn in that order, so the faults do
    not depend on how the run was split over processes. Why two lists: the ~97% of lines emitted at
    their own time stay one sorted run (their tuples re-used as they are), the moved and injected
    lines are sorted on their own, and one merge of two runs gives the emission order.
    """
    rng = random.Random(f"{cfg.seed}:faults")
    kept: list[Line] = []
    keep = kept.append
    moved: list[Line] = []
    move = moved.append
    n_injected = 0
    late_rate, dup_rate, bad_rate = cfg.late_rate, cfg.dup_rate, cfg.bad_rate
    rand, randrange = rng.random, rng.randrange
    for line in valid:
        if late_rate and line[3] != TOPIC_ACCOUNTS and rand() < late_rate:
            ts, a, b, topic, key, payload = line[:6]
            emit = ts + randrange(5 * 60_000, 3 * MS_PER_HOUR)
            move((emit, a, b, topic, key, payload, LATE, False, None))
        else:
            emit = line[0]
            keep(line)
        if dup_rate and rand() < dup_rate:
            n_injected += 1
            move((emit + randrange(1000, 15 * 60_000), INJECTED_INDEX_BASE, n_injected, line[3], line[4],
                  line[5], DUPLICATE, False, None))
        if bad_rate and rand() < bad_rate:
            n_injected += 1
            topic = line[3]
            bad = make_bad(rng, topic, orjson.loads(line[5]), f"x:{n_injected}")
            move((line[0] + randrange(0, 10 * 60_000), INJECTED_INDEX_BASE, n_injected, topic, line[4],
                  bad.payload(), BAD, bad.raw is not None, (bad.kind, bad.field)))
    moved.sort()
    kept += moved
    kept.sort()  # two sorted runs; (emit ts, subject, sequence) is unique, so this is emission order
    return kept


def _truth(cfg: SimConfig, lines: list[Line], users: dict[str, Any], ent_truth: list[dict],
           default_limit_fen: int, default_dpd: int) -> dict[str, Any]:
    per_topic = {t: {"lines": 0, "valid": 0, "duplicates": 0, "bad": 0, "late": 0} for t in INPUT_TOPICS}
    for (topic, flag), count in Counter(map(itemgetter(3, 6), lines)).items():  # counted in C
        counts = per_topic[topic]
        counts["lines"] += count
        if flag == VALID:
            counts["valid"] += count
        elif flag == LATE:
            counts["valid"] += count
            counts["late"] += count
        elif flag == DUPLICATE:
            counts["duplicates"] += count
        else:
            counts["bad"] += count
    bad = [{"line": n, "topic": line[3], "kind": line[8][0], "field": line[8][1]}  # type: ignore[index]
           for n, line in enumerate(lines) if line[6] == BAD]
    segments = dict.fromkeys(SEGMENTS, 0)
    for u in users.values():
        segments[u["segment"]] += 1
    return {
        "version": 1,
        "config": {
            "days": cfg.days, "users": cfg.users, "enterprises": cfg.enterprises, "seed": cfg.seed,
            "start": cfg.start, "bad_rate": cfg.bad_rate, "dup_rate": cfg.dup_rate, "late_rate": cfg.late_rate,
            "segment_mix": cfg.segment_mix,
        },
        "start_ms": cfg.start_ms,
        "end_ms": cfg.end_ms,
        "start": fmt_ts(cfg.start_ms),
        "end": fmt_ts(cfg.end_ms),
        "rules": {
            "default_limit_fen": default_limit_fen,
            "default_dpd": default_dpd,
            "default_ts": f"first instant < end_ms at which an installment due at D is unpaid at "
                          f"D + {default_dpd} days (paid_ts null or >= that instant)",
            "installment_columns": ["purchase_event_id", "k", "due_ts", "amount_fen", "paid_ts"],
            "times": "epoch milliseconds UTC",
            "line": "0-based line number in the JSONL file / send order to Kafka",
        },
        "counts": {
            "events_total": len(lines),
            "events_valid": sum(c["valid"] for c in per_topic.values()),
            "duplicates": sum(c["duplicates"] for c in per_topic.values()),
            "bad": len(bad),
            "late": sum(c["late"] for c in per_topic.values()),
            "per_topic": per_topic,
            "segments": segments,
        },
        "users": users,
        "enterprises": ent_truth,
        "bad": bad,
    }


def generate(cfg: SimConfig) -> Iterator[dict[str, Any]]:
    """The run's JSONL line objects in emission order (see :meth:`Simulation.iter_dicts`)."""
    return simulate(cfg).iter_dicts()
