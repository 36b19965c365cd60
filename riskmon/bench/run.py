"""Orchestration of one bench run: services, data, the stages, the report dict.

Stage order and isolation: (a) and (b) read one copy of the input; (c), (d) and the latency stages each
get their own topic prefix (so no stage sees another's outputs or alerts) and an emptied Redis (so
each starts with no state, like a fresh deployment). Producing is done before a stage starts and is
never part of its time.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from riskmon import accel
from riskmon.bench import dataset, drain, latency, profile, raw_consume, redis_reads
from riskmon.bench.targets import evaluate_targets
from riskmon.config import Settings
from riskmon.contract import INPUT_TOPICS
from riskmon.services import procs
from riskmon.services.stack import Stack
from riskmon.state.layout import ACCOUNT_PATTERN
from streams import latency_trace
from streams.topics import all_topic_names

# (stage, done, total): absolute progress of a stage; total 0 = unknown.
Progress = Callable[[str, int, int], None]


@dataclass
class BenchConfig:
    """What to run and how big (CLI flags map 1:1)."""

    events: int = 100_000
    users: int = 20_000
    enterprises: int = 200
    partitions: int = 4
    seed: int = 7
    naive_mode: str = "redis"  # "redis": decode + GET + SET per event; "decode": decode only
    skip_latency: bool = False
    latency_rate: float = 5000.0
    latency_seconds: float = 60.0
    latency_warmup_s: float = 5.0
    latency_batch_within_s: float = 0.01
    # workers in one group during (e). Two: one live worker here sustains ~3.3-4k/s (250-300 µs of CPU
    # per message in small live batches), so with one (e) measured a growing backlog, not latency
    latency_workers: int = 2
    latency_producer: str = "java"  # (e)'s paced producer: "java" (kafka-clients) or "librdkafka"
    # (e0) before (e): the same harness, rate and length, with workers that do only the plumbing
    # (riskmon.bench.floor_app): the machine's own latency and Redis-read floor, from the same run
    latency_floor: bool = True
    pure_stage: bool = True  # (c') compiled and pure-Python workers side by side, when (c) runs compiled
    memory_users: int = 100_000  # stage (g): one worker owning this many users (0: skip)
    memory_events_per_user: int = 4
    redis_batch: int = 500
    redis_rounds: int = 100
    profile_dir: Path | None = None
    stage_timeout_s: float = 1800.0
    # Kafka's default (3 s) rather than the 0 of riskmon's test broker: (d)'s two workers, started
    # together, then share the first generation. With 0 the first to join took every partition and
    # consumed alone until the second's join rebalanced the group, which then re-read the moved users'
    # states from Redis: (d)'s window opened ~24k messages in, on a heavier tail (docs/performance.md).
    group_initial_delay_ms: int = 3000


def _group_stable(bootstrap: str, group: str, members: int, timeout_s: float, watched: list[procs.Proc]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="riskmon-bench-join")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                info = admin.describe_groups([group]).get(group, {})
            except Exception:  # noqa: BLE001 - coordinator not ready yet
                info = {}
            if drain.stable_members(info) >= members:
                return
            for p in watched:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited before joining:\n{p.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group} not stable after {timeout_s:.0f}s: {info}")
            time.sleep(0.2)
    finally:
        admin.close()


class _Run:
    def __init__(self, cfg: BenchConfig, settings: Settings, progress: Progress | None) -> None:
        self.cfg = cfg
        self.settings = settings
        self.progress = progress or (lambda *_: None)
        self.run_id = f"{int(time.time() * 1000):x}"
        self.log_dir = settings.var_dir / "logs" / f"bench-{self.run_id}"

    def work_dir(self) -> Path:
        """Where started processes run: Faust writes its ``<app id>-data`` directory into the cwd."""
        path = self.settings.var_dir / "bench" / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def prefix(self, stage: str) -> str:
        return f"{self.settings.topic_prefix}bench{self.run_id}.{stage}."

    def produce(self, stack: Stack, lines: list[dataset.Line], prefix: str, label: str) -> None:
        stack.create_topics(all_topic_names(prefix), self.cfg.partitions)
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            self.progress(label, done[0], len(lines))

        dataset.produce(lines, stack.bootstrap, prefix, step)

    def service_pids(self, stack: Stack) -> dict[str, int]:
        pids = {}
        for p in stack.started:
            pids["broker" if p.name.startswith(("kafka", "tansu")) else p.name.split("-")[0]] = p.pid
        return pids

    def drain_stage(self, stack: Stack, label: str, prefix: str, group: str, argv: list[str], n_procs: int,
                    env: dict[str, str], profile_name: str | None = None) -> tuple[drain.DrainResult, dict[str, Any]]:
        watch = drain.GroupWatch(stack.bootstrap, group, [prefix + t for t in INPUT_TOPICS])
        full_env = {**stack.env(), "RISKMON_APP_ID": group, "RISKMON_TOPIC_PREFIX": prefix,
                    "RISKMON_PARTITIONS": str(self.cfg.partitions), **env}
        # Faust's `worker` command starts its web server unless told otherwise; each process gets its own
        # free port so workers (ours and anyone else's on this host) never fight over 6066.
        started = [procs.start(f"{label}-{i}", argv, log_dir=self.log_dir, cwd=self.work_dir(),
                               env={**full_env, "FAUST_WEB_PORT": str(procs.free_port())}) for i in range(n_procs)]
        spy = None
        try:
            if profile_name and self.cfg.profile_dir is not None:
                self.cfg.profile_dir.mkdir(parents=True, exist_ok=True)
                spy = profile.start_profile(started[0].pid, self.cfg.profile_dir / f"{profile_name}.txt", self.log_dir)
            pids = {**self.service_pids(stack), **{p.name: p.pid for p in started}}
            result = drain.watch_drain(watch, pids, started, timeout_s=self.cfg.stage_timeout_s,
                                       progress=lambda d: self.progress(label, d, watch.total), members=n_procs)
            extra = {"rss": {p.name: drain.rss_mb(p.pid) for p in started}}
        finally:
            if spy is not None:
                profile.stop_profile(spy)
            for p in started:
                procs.stop(p)
            watch.close()
        if spy is not None and self.cfg.profile_dir is not None:
            extra["profile"] = profile.summarise(self.cfg.profile_dir / f"{profile_name}.txt")
        return result, extra

    @staticmethod
    def stage_dict(res: drain.DrainResult, cpu_cores: int) -> dict[str, Any]:
        cpu_total = sum(res.cpu_s.values())
        worker_cpu = drain.consumers_cpu(res.cpu_s)
        return {
            "events": res.total,
            "events_measured": res.counted,
            "seconds": round(res.seconds, 2),
            "wall_s_incl_startup": round(res.wall_s, 2),
            "events_per_s": round(res.events_per_s, 1),
            "cpu_s": res.cpu_s,
            "cpu_share_of_machine": round(cpu_total / (res.seconds * cpu_cores), 2) if res.seconds else None,
            # the consumers' CPU (not the broker's or Redis') per message measured, start-up included
            "worker_us_per_msg": round(worker_cpu / res.counted * 1e6, 1) if res.counted else None,
        }


def run_bench(cfg: BenchConfig, settings: Settings, progress: Progress | None = None,
              say: Callable[[str], None] = print, broker: str = "apache") -> dict[str, Any]:
    """Run every stage (see module docstring) on a fresh Apache Kafka + redis-server; returns the report.

    ``broker``: ``"apache"`` starts one; ``"kafka://host:port"`` uses a running broker (its CPU is then
    not in the split). Redis is always a fresh redis-server of our own: the bench empties it per stage.
    """
    settings = settings.model_copy(update={"redis_url": None, "broker_url": None, "partitions": cfg.partitions})
    run = _Run(cfg, settings, progress)
    cores = os.cpu_count() or 1
    n_latency = 0 if cfg.skip_latency else int(cfg.latency_rate * cfg.latency_seconds)
    say(f"code: {accel.status().describe()}")
    say(f"simulating {max(cfg.events, n_latency)} events for {cfg.users} users")
    lines = dataset.build_lines(max(cfg.events, n_latency), cfg.users, cfg.enterprises, cfg.seed)
    data = lines[: cfg.events]
    report: dict[str, Any] = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "machine": {"cpus": cores, "broker": broker, "loadavg_before": [round(x, 2) for x in os.getloadavg()]},
        "code": {"accel": accel.status().describe(), "compiled": accel.status().active},
        "log_dir": str(run.log_dir),  # every started process's log
        "data": {"events": len(data), "by_topic": _count(data), "users": cfg.users},
        "stages": {},
    }
    worker = [sys.executable, "-m", "riskmon.cli.main", "worker"]
    with Stack(settings, broker=broker, ephemeral_broker=True, group_initial_delay_ms=cfg.group_initial_delay_ms,
               log=say) as stack:
        r = redis.Redis.from_url(stack.redis_url)
        pre_ab = run.prefix("ab")
        run.produce(stack, data, pre_ab, "produce (a,b)")
        say("(a) raw aiokafka consume + orjson decode")
        report["stages"]["a_raw"] = raw_consume.raw_consume(
            stack.bootstrap, [pre_ab + t for t in INPUT_TOPICS], len(data), timeout_s=cfg.stage_timeout_s,
            progress=_counter(run.progress, "(a) raw", len(data)))

        say(f"(b) naive one-event-at-a-time Faust agent ({cfg.naive_mode})")
        r.flushdb()
        res_b, _ = run.drain_stage(stack, "naive", pre_ab, f"bench-{run.run_id}-naive",
                                   [sys.executable, "-m", "riskmon.bench.naive_app"], 1,
                                   {"RISKMON_BENCH_NAIVE_MODE": cfg.naive_mode})
        report["stages"]["b_naive"] = {**run.stage_dict(res_b, cores), "mode": cfg.naive_mode}

        drained: dict[str, drain.DrainResult] = {}
        for key, n_workers in (("c_pipeline_1", 1), ("d_pipeline_2", 2)):
            prefix = run.prefix(key[0])
            run.produce(stack, data, prefix, f"produce ({key[0]})")
            r.flushdb()
            base_mem = int(r.info("memory")["used_memory"])
            say(f"({key[0]}) full pipeline, {n_workers} worker(s)")
            res, extra = run.drain_stage(stack, f"worker{key[0]}", prefix, f"bench-{run.run_id}-{key}", worker,
                                         n_workers, {}, profile_name=f"worker-{key}")
            drained[key] = res
            stats = {k.decode(): int(v) for k, v in r.hgetall("rm:stats").items()}
            report["stages"][key] = {**run.stage_dict(res, cores), "workers": n_workers, **extra,
                                     "pipeline_counters": stats, "redis": _redis_users(r, base_mem)}
            if key == "c_pipeline_1":
                say("(f) Redis round trips on the states (c) left behind")
                report["redis_round_trips"] = redis_reads.redis_round_trips(
                    stack.redis_url, batch=cfg.redis_batch, rounds=cfg.redis_rounds)
                if cfg.pure_stage and accel.status().active:
                    report["stages"].update(_accel_pair(run, stack, data, worker, cores, say))

        res_c, res_d = drained["c_pipeline_1"], drained["d_pipeline_2"]
        same = res_c.rate_from(res_d.total - res_d.counted)  # (c) over the events (d) was measured on
        report["stages"]["c_pipeline_1"]["events_per_s_over_d_events"] = round(same, 1) if same else None

        if cfg.memory_users:
            report["memory"] = _memory_stage(run, stack, r, cfg, worker, say)

        if not cfg.skip_latency:
            lat_lines = lines[:n_latency]
            if cfg.latency_floor:
                say("(e0) latency floor: the same harness, workers with riskmon's plumbing and none of its work")
                report["latency_floor"] = _latency_stage(
                    run, stack, r, cfg, lat_lines, "e0", [sys.executable, "-m", "riskmon.bench.floor_app"],
                    "(e0) floor")
            say(f"(e) latency at {cfg.latency_rate:.0f} events/s for {cfg.latency_seconds:.0f}s "
                f"({max(1, cfg.latency_workers)} worker(s), batch window {cfg.latency_batch_within_s * 1000:.0f} ms)")
            report["latency"] = _latency_stage(run, stack, r, cfg, lat_lines, "e", worker, "(e) latency")
        r.close()
    report["ratios"] = _ratios(report["stages"])
    report["targets"] = evaluate_targets(report)
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def _latency_stage(run: _Run, stack: Stack, r: Any, cfg: BenchConfig, lines: list[dataset.Line], stage: str,
                   worker: list[str], label: str) -> dict[str, Any]:
    """Offer ``lines`` at ``cfg.latency_rate`` to ``cfg.latency_workers`` processes of ``worker`` (one
    group, fresh topics, emptied Redis) and measure event -> decision (``latency.measure_latency``), plus
    the workers' own trace. Stages (e0) and (e) differ only in ``worker``."""
    prefix = run.prefix(stage)
    stack.create_topics(all_topic_names(prefix), cfg.partitions)
    r.flushdb()
    group = f"bench-{run.run_id}-latency-{stage}"
    n_lat = max(1, cfg.latency_workers)
    name = "worker-latency" if stage == "e" else f"worker-latency-{stage}"  # (e)'s names as before (e0)
    env = {**stack.env(), "RISKMON_APP_ID": group, "RISKMON_TOPIC_PREFIX": prefix,
           "RISKMON_PARTITIONS": str(cfg.partitions), "RISKMON_BATCH_WITHIN_S": str(cfg.latency_batch_within_s),
           "RISKMON_TRACE_LATENCY": "1"}
    wps: list[procs.Proc] = []
    watch: drain.GroupWatch | None = None
    try:
        for i in range(n_lat):
            wps.append(procs.start(f"{name}-{i}", worker, log_dir=run.log_dir, cwd=run.work_dir(),
                                   env={**env, "FAUST_WEB_PORT": str(procs.free_port())}))
        _group_stable(stack.bootstrap, group, n_lat, 120, wps)
        watch = drain.GroupWatch(stack.bootstrap, group, [prefix + t for t in INPUT_TOPICS])
        res = {**latency.measure_latency(
            lines, stack.bootstrap, prefix, rate=cfg.latency_rate, warmup_s=cfg.latency_warmup_s,
            progress=_counter(run.progress, label, len(lines)),
            pids={**run.service_pids(stack), **{wp.name: wp.pid for wp in wps}},
            consumed=functools.partial(watch.committed, clamp=False), producer=cfg.latency_producer,
            work_dir=run.work_dir()),
            "batch_within_s": cfg.latency_batch_within_s, "workers": n_lat}
        time.sleep(latency_trace.FLUSH_EVERY_S + 0.5)  # the workers ship their last trace samples
        res["worker_breakdown"] = latency.summarise_worker_trace(
            r.lrange(latency_trace.TRACE_KEY, 0, -1), cfg.latency_warmup_s)
        for wp in wps:
            if not wp.alive():
                raise RuntimeError(f"latency worker {wp.name} exited:\n{wp.log_tail()}")
        return res
    finally:
        if watch is not None:
            watch.close()
        for wp in wps:
            procs.stop(wp)


def _redis_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db`` of the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _accel_pair(run: _Run, stack: Stack, data: list[dataset.Line], worker: list[str], cores: int,
                say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """(c'): (c)'s pipeline twice *at the same time*, one worker compiled and one on pure Python.

    Why at the same time: the compiled build's gain (~10-20 % of CPU per message) is smaller than how
    far this shared machine drifts between two runs a minute apart (a sequential pair once came out
    even). Draining side by side, each on its own copy of the events, its own group and its own Redis
    database, both see the same machine; the measure is each worker's CPU per message, not
    throughput (they share the cores).
    """
    variants = (("compiled", {}, 0), ("pure", {"RISKMON_ACCEL": "0"}, 1))
    prefixes = {}
    for name, _, db in variants:
        prefixes[name] = run.prefix(f"p{name[0]}")
        run.produce(stack, data, prefixes[name], f"produce (c') {name}")
        client = redis.Redis.from_url(_redis_db(stack.redis_url, db))
        client.flushdb()
        client.close()
    say("(c') full pipeline, 1 compiled and 1 pure-Python worker at the same time (RISKMON_ACCEL=0)")
    results: dict[str, tuple[drain.DrainResult, dict[str, Any]]] = {}
    errors: list[BaseException] = []

    def drain_one(name: str, env: dict[str, str], db: int) -> None:
        try:
            results[name] = run.drain_stage(stack, f"worker{name}", prefixes[name], f"bench-{run.run_id}-{name}",
                                            worker, 1, {**env, "RISKMON_REDIS_URL": _redis_db(stack.redis_url, db)})
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=drain_one, args=v, name=f"bench-{v[0]}") for v in variants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    out = {}
    for name, _, db in variants:
        res, extra = results[name]
        client = redis.Redis.from_url(_redis_db(stack.redis_url, db))
        stats = {k.decode(): int(v) for k, v in client.hgetall("rm:stats").items()}
        if db:
            client.flushdb()  # used_memory is server-wide: leave nothing behind for later stages
        client.close()
        out[f"c_pair_{name}"] = {**run.stage_dict(res, cores), "workers": 1, **extra, "pipeline_counters": stats}
    return out


def _memory_stage(run: _Run, stack: Stack, r: Any, cfg: BenchConfig, worker: list[str],
                  say: Callable[[str], None]) -> dict[str, Any]:
    """(g): one worker drains ``memory_events_per_user`` x ``memory_users`` events of that many users.

    Why a stage of its own: the memory target is per worker *at 100k users*, and (c)'s 20k users say
    nothing about it (a worker's RSS grows with the users whose state it holds: 522 MiB at 16k users,
    1.56 GB at 82k before the state cache had a memory budget).
    """
    n = cfg.memory_users * cfg.memory_events_per_user
    lines = dataset.build_lines(n, cfg.memory_users, cfg.enterprises, cfg.seed + 1)
    prefix = run.prefix("g")
    run.produce(stack, lines, prefix, "produce (g)")
    r.flushdb()
    base_mem = int(r.info("memory")["used_memory"])
    say(f"(g) memory: 1 worker, {n:,} events of {cfg.memory_users:,} users")
    res, extra = run.drain_stage(stack, "workerg", prefix, f"bench-{run.run_id}-memory", worker, 1, {})
    redis_use = _redis_users(r, base_mem)
    cpu = sum(v for k, v in res.cpu_s.items() if k.startswith("workerg"))
    return {**run.stage_dict(res, os.cpu_count() or 1), "users": cfg.memory_users,
            "users_with_state": redis_use["users"], "rss": extra["rss"],
            "worker_us_per_msg": round(cpu / res.counted * 1e6, 1) if res.counted else None,
            "redis_mb_per_1k_users": redis_use["mb_per_1k_users"]}


def _redis_users(r: Any, base_mem: int) -> dict[str, Any]:
    """Users with state in Redis (``rm:u:*``), Redis memory now, and MiB per 1k users over ``base_mem``."""
    users = len(list(r.scan_iter(ACCOUNT_PATTERN, count=5000)))
    used = int(r.info("memory")["used_memory"])
    return {"users": users, "used_memory_mb": round(used / 2**20, 1),
            "mb_per_1k_users": round((used - base_mem) / 2**20 / max(users, 1) * 1000, 3)}


def _count(lines: list[dataset.Line]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        out[line.topic] = out.get(line.topic, 0) + 1
    return out


def _counter(progress: Progress, label: str, total: int) -> Callable[[int], None]:
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        progress(label, done[0], total)

    return step


def _cpu_ratio(x: dict[str, Any] | None, y: dict[str, Any] | None) -> float | None:
    """x's worker CPU per message over y's (None unless both ran)."""
    a, b = (x or {}).get("worker_us_per_msg"), (y or {}).get("worker_us_per_msg")
    return round(a / b, 2) if a and b else None


def _ratios(stages: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def rate(k: str) -> float:
        return float(stages.get(k, {}).get("events_per_s") or 0.0)

    def ratio(x: str, y: str) -> float | None:
        return round(rate(x) / rate(y), 2) if rate(y) > 0 else None

    same = stages.get("c_pipeline_1", {}).get("events_per_s_over_d_events")
    return {"c_over_b": ratio("c_pipeline_1", "b_naive"), "c_over_a": ratio("c_pipeline_1", "a_raw"),
            "d_over_c": ratio("d_pipeline_2", "c_pipeline_1"),
            "pure_cpu_over_compiled_cpu": _cpu_ratio(stages.get("c_pair_pure"), stages.get("c_pair_compiled")),
            "d_over_c_same_events": round(rate("d_pipeline_2") / same, 2) if same else None}
