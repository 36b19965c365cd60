"""Build the compiled modules of :mod:`riskmon.accel` with Cython (``riskmon accel build``).

Why a copy in a scratch directory: Cython writes a ``.c`` file and a build tree next to each source, and
the compiled ``.so`` must not sit next to its ``.py`` (it would shadow the source even when the source
changes, and ``RISKMON_ACCEL=0`` could not turn it off). Each module is compiled from a copy whose bytes
were hashed first, so the manifest names exactly the source that was compiled; the manifest is written
last, so an interrupted build is never taken for a current one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from riskmon import accel


class BuildError(RuntimeError):
    """A module did not compile (the message holds the compiler's last lines)."""


def cython_version() -> str | None:
    """The installed Cython's version, or None when it is not installed."""
    try:
        import Cython
    except ImportError:
        return None
    return str(Cython.__version__)


def is_current(directory: Path | None = None) -> bool:
    """True when ``directory`` (default: the build dir) holds a build of today's sources."""
    d = directory or accel.build_dir()
    return accel.check_build(d).active and all(accel.built_file(d, m) is not None for m in accel.MODULES)


def _compile_one(scratch: Path, module: str) -> Path:
    """Cythonize and compile one module in ``scratch``; returns the extension file."""
    src = accel.source_of(module, scratch)
    proc = subprocess.run(
        [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "-q", str(src.relative_to(scratch))],
        cwd=scratch, capture_output=True, text=True, check=False,
    )
    built = accel.built_file(scratch, module)
    if proc.returncode != 0 or built is None:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise BuildError(f"{module} did not compile (exit {proc.returncode}):\n{tail}")
    return built


def build(directory: Path | None = None, jobs: int | None = None,
          progress: Callable[[str], None] | None = None,
          modules: tuple[str, ...] = accel.MODULES) -> Path:
    """Compile ``modules`` (default: all of :data:`riskmon.accel.MODULES`) into ``directory``; returns it.

    A module whose source and Cython version match the previous build there is copied from it, not
    compiled again (editing one module rebuilds one). ``progress(module)`` is called as each module is
    ready. Raises :class:`BuildError` when Cython is missing or a module fails; the previous build is
    then left as it was.
    """
    version = cython_version()
    if version is None:
        raise BuildError("Cython is not installed (pip install 'cython>=3.1,<4'; scripts/test and "
                         "scripts/demo install it)")
    target = directory or accel.build_dir()
    jobs = max(1, jobs or os.cpu_count() or 1)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="riskmon-accel-") as tmp:
        scratch = Path(tmp)
        try:
            previous = json.loads((target / accel.MANIFEST).read_text())
        except (OSError, ValueError):
            previous = {}
        hashes = {}
        for module in modules:
            data = accel.source_of(module).read_bytes()
            hashes[module] = hashlib.sha256(data).hexdigest()
            dest = accel.source_of(module, scratch)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        # package markers, so Cython names each module by its full dotted name (riskmon.ews.monitor)
        for package in accel.PACKAGES:
            init = scratch.joinpath(*package.split("."), "__init__.py")
            init.parent.mkdir(parents=True, exist_ok=True)
            init.touch()
        built: dict[str, Path] = {}
        if previous.get("cython") == version and previous.get("python") == sys.version.split()[0]:
            for module in modules:
                old = accel.built_file(target, module)
                if old is not None and previous.get("sources", {}).get(module) == hashes[module]:
                    built[module] = old
                    if progress:
                        progress(module)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {m: pool.submit(_compile_one, scratch, m) for m in modules if m not in built}
            for module, fut in futures.items():
                built[module] = fut.result()
                if progress:
                    progress(module)
        staging = target.with_name(target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        for module, so in built.items():
            dest = staging.joinpath(*module.split(".")[:-1], so.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(so, dest)
        manifest = {"cython": version, "python": sys.version.split()[0], "built_at": int(time.time()),
                    "build_seconds": round(time.monotonic() - t0, 1), "compiled": sorted(futures),
                    "sources": hashes}
        (staging / accel.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(target)
    return target
