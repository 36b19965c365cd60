"""Sampling profiles of a worker with py-spy, summarised as the top functions by own and total time.

Why py-spy: it attaches to the running worker from outside (no code change, ~no overhead), so the
profile is of exactly the process the throughput numbers come from. Raw (collapsed-stack) output is
kept next to the summary for flame graphs (``py-spy`` / speedscope can read it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

from riskmon.services import procs

_LINE = re.compile(r"\s*\((?P<file>[^:]*):(?P<line>\d+)\)$")


def py_spy_bin() -> str | None:
    """py-spy next to the interpreter (venv) or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(pid: int, out_path: Path, log_dir: Path, rate: int = 200) -> procs.Proc | None:
    """Start recording ``pid`` (collapsed stacks to ``out_path``); None when py-spy is not installed."""
    exe = py_spy_bin()
    if exe is None:
        return None
    return procs.start(f"py-spy-{pid}", [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                                         "--nonblocking", "-o", str(out_path)], log_dir=log_dir)


def stop_profile(proc: procs.Proc) -> None:
    """Ask py-spy to write its output (SIGINT), then make sure it is gone."""
    if proc.popen is not None and proc.alive():
        os.kill(proc.pid, signal.SIGINT)
        with contextlib.suppress(Exception):  # it is stopped below either way
            proc.popen.wait(timeout=20)
    procs.stop(proc)


def _frame_name(frame: str) -> str:
    m = _LINE.search(frame)
    if not m:
        return frame.strip()
    func = frame[: m.start()].strip()
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


PROJECT = ("riskmon/", "streams/", "online_models/", "sinks/", "simulator/")
ENTRY = ("riskmon/cli/", "streams/worker.py")


def _package(frame: str) -> str:
    """The top-level package of a frame name (``func (path)``), e.g. ``faust``, ``riskmon``, ``asyncio``."""
    path = frame.rsplit("(", 1)[-1].rstrip(")")
    if path.startswith("<"):
        return "python-internal"
    top = path.split("/", 1)[0]
    return top.removesuffix(".py")


def summarise(raw_path: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Where the worker's samples went, as percent of all samples.

    ``own``: functions by own (leaf) time; ``by_package``: own time summed per top-level package
    (faust, aiokafka, asyncio, redis, river, riskmon, ...); ``project_total``: our functions by inclusive
    time, entry points left out (they include everything).
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    pkg: Counter[str] = Counter()
    samples = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))] or frames
        samples += n
        own[frames[-1]] += n
        pkg[_package(frames[-1])] += n
        for f in set(frames):
            where = f.rsplit("(", 1)[-1]
            if where.startswith(PROJECT) and not where.startswith(ENTRY):
                total[f] += n
    if not samples:
        return {"own": [], "by_package": [], "project_total": [], "samples": []}

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * k / samples, 1)) for name, k in c.most_common(top)]

    return {"own": pct(own), "by_package": pct(pkg), "project_total": pct(total),
            "samples": [("samples", float(samples))]}
