"""Watching a consumer group drain pre-produced topics, and the CPU/RSS of the processes involved.

Why committed offsets: they are the one progress signal every consumer under test (naive Faust app,
riskmon workers) exposes the same way, without changing the code being measured. Both commit every
second, so the start and end of a run are known to about that resolution; the throughput is taken
between the first sample with progress *while every member is in the group and it is stable* and the
sample where lag reaches 0, which excludes start-up and the group join.

Why "every member, stable": workers started together do not join together. The first one to join
gets every partition and starts consuming at once; the second's join then triggers a rebalance, which
stops the group for seconds. Measured (60k events, 2 workers, same data twice): 7,586/s when both
joined in the first generation, 6,084/s when the window opened on the lone first member and took in
the 3 s rebalance (``docs/performance.md``). Steady-state throughput of n workers is what (d) is for;
the join is start-up, like the imports before the first commit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from riskmon.services import procs

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """:func:`cpu_seconds` of each named process, read together (one end of a measured window)."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


#: processes in a CPU split that are not the consumers being measured
NOT_CONSUMERS = ("broker", "redis", "bench", "producer")


def consumers_cpu(cpu_s: dict[str, float]) -> float:
    """CPU seconds of the consumers (workers, the naive app) in a split that also holds the services."""
    return sum(v for k, v in cpu_s.items() if k not in NOT_CONSUMERS)


def rss_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid`` in MiB."""
    out = {"rss_mb": 0.0, "peak_rss_mb": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak_rss_mb"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


@dataclass
class DrainResult:
    """How fast a group consumed ``total`` messages, and who burnt the CPU meanwhile."""

    total: int
    seconds: float  # first progress -> lag 0
    counted: int  # messages consumed in that window
    wall_s: float  # process start -> lag 0 (start-up and group join included)
    cpu_s: dict[str, float] = field(default_factory=dict)
    progress: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, committed)

    @property
    def events_per_s(self) -> float:
        """Throughput in the measured window."""
        return self.counted / self.seconds if self.seconds > 0 else 0.0

    def rate_from(self, count: int) -> float | None:
        """Throughput over the messages after the first ``count`` (from the first sample at or past it).

        Why: the cost of an event grows along the stream (accounts gather installments and pending
        labels), and (d)'s window opens later than (c)'s, once both workers are in the group. Comparing
        (d) with (c) over the same tail of the same data removes that difference from d/c.

        >>> DrainResult(100, 9.0, 90, 10.0, progress=[(1.0, 10), (3.0, 40), (10.0, 100)]).rate_from(30)
        8.571428571428571
        """
        if not self.progress:
            return None
        end_t, end_n = self.progress[-1]
        for t, n in self.progress:
            if n >= count:
                return (end_n - n) / (end_t - t) if end_t > t and end_n > n else None
        return None


def stable_members(info: dict) -> int:
    """Members in a ``describe_groups`` entry when the group is ``Stable``, else 0."""
    state = str(info.get("group_state", info.get("state", "")))
    return len(info.get("members") or ()) if state.lower().endswith("stable") else 0


class GroupWatch:
    """Committed offsets of one group on fixed, pre-produced topics."""

    def __init__(self, bootstrap: str, group: str, topics: Sequence[str]) -> None:
        self.group = group
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="riskmon-bench-watch")
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            self.tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            self.ends = consumer.end_offsets(self.tps)
        finally:
            consumer.close()
        self.total = sum(self.ends.values())

    def committed(self, *, clamp: bool = True) -> int:
        """Messages committed by the group so far (0 before its first commit).

        ``clamp``: count no partition past its end offset when the watch began (topics filled before the
        stage); ``False`` for topics still being written (the latency stage)."""
        try:
            offsets = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        except KafkaError:
            return 0
        done = 0
        for tp in self.tps:
            meta = offsets.get(tp)
            if meta is not None and meta.offset > 0:
                done += min(meta.offset, self.ends[tp]) if clamp else meta.offset
        return done

    def members_stable(self) -> int:
        """Members of the group when it is ``Stable`` (0 while it rebalances, is empty or is unknown)."""
        try:
            return stable_members(self.admin.describe_groups([self.group]).get(self.group, {}))
        except KafkaError:
            return 0

    def close(self) -> None:
        """Close the admin client."""
        self.admin.close()


def watch_drain(watch: GroupWatch, pids: dict[str, int], watched: Sequence[procs.Proc], *, timeout_s: float,
                progress: Callable[[int], None] | None = None, interval: float = 0.1,
                stall_s: float = 180.0, members: int = 1) -> DrainResult:
    """Poll until the group has committed everything; CPU of ``pids`` is taken over the measured window.

    The window opens at the first progress seen while the group is stable with ``members`` members (see
    the module docstring); should the group drain before that, the whole run is the window.

    ``watched`` processes must stay alive (a crashed worker fails the run with its log tail), and the
    group must make progress at least every ``stall_s`` seconds: Faust keeps a worker whose agent
    crashed running, so a stalled group is how a crashed agent shows.
    """
    t_start = time.monotonic()
    deadline = t_start + timeout_s
    first: tuple[float, int, dict[str, float]] | None = None
    last_change, last_done = t_start, -1
    samples: list[tuple[float, int]] = []
    while True:
        done = watch.committed()
        now = time.monotonic()
        if done != last_done:
            last_change, last_done = now, done
            samples.append((now - t_start, done))
        elif now - last_change > stall_s:
            tails = "\n".join(f"--- {p.name}:\n{p.log_tail()}" for p in watched)
            raise RuntimeError(f"group {watch.group} made no progress for {stall_s:.0f}s "
                               f"({done}/{watch.total} committed):\n{tails}")
        if progress:
            progress(done)
        if done > 0 and first is None and watch.members_stable() >= members:
            first = (now, done, cpu_snapshot(pids))
        if done >= watch.total:
            cpu_end = cpu_snapshot(pids)
            t0, c0, cpu0 = first or (t_start, watch.total, {})
            if c0 >= watch.total:  # finished between two samples or before the group settled: no window
                return DrainResult(watch.total, now - t_start, watch.total, now - t_start,
                                   {k: cpu_end[k] for k in pids}, samples)
            return DrainResult(watch.total, now - t0, watch.total - c0, now - t_start,
                               {k: round(cpu_end[k] - cpu0[k], 2) for k in pids}, samples)
        for p in watched:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited during the bench:\n{p.log_tail()}")
        if now > deadline:
            raise TimeoutError(f"group {watch.group} did not drain within {timeout_s:.0f}s "
                               f"({done}/{watch.total} committed)")
        time.sleep(interval)
