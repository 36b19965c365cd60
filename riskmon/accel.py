"""Compiled builds (Cython) of the hot pure-Python modules, used when present and current.

Why: a worker is CPU-bound on one core (docs/performance.md): of its ~150 µs per message, ~100 are
riskmon's own Python (engine, features, ledger, state serialisation, EWS), spread thin over hundreds of
small functions with no single hot spot left to rewrite. Compiling the *same source, unchanged* with
Cython removes the interpreter's dispatch from all of them at once: the in-process engine runs ~25 %
faster (docs/performance.md, session 9). Nothing is annotated with C types, so every operation keeps
Python's semantics: integers stay arbitrary-precision (money is exact), floats are the same IEEE doubles
in the same order, and decisions are byte-for-byte those of the pure-Python run
(``tests/integration/test_accel.py`` replays a stream both ways and compares every output and state).

How: ``riskmon accel build`` compiles :data:`MODULES` into ``<build dir>/<package path>/<module>.so``
and writes ``manifest.json`` with each source's SHA-256. ``import riskmon`` (which ``online_models``
also does first) calls :func:`install`: when every compiled module's source still hashes to the
manifest, a ``sys.meta_path`` finder loads exactly those modules from the build, so
``import riskmon.engine`` gets the extension and every other module its source. A missing, partial or stale build (a source edited since)
means pure Python for everything, never a mix of old compiled code and new source; :func:`status` says
which, and why. ``RISKMON_ACCEL=0`` forces pure Python (e.g. for py-spy, which cannot see inside
compiled functions). The switch is read from the environment at import, before any settings object
exists, since it decides which code the settings object itself would run with.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path

#: Modules compiled by ``riskmon accel build``: the consumer-credit engine and everything it calls per
#: event, the EWS core, the models' per-event code. Only synchronous modules: the async plumbing
#: (``streams/``, the Redis store, the EWS service) stays interpreted. Compiling it too (32 modules) was
#: measured and gained nothing visible (docs/performance.md, session 9); Faust and asyncio would have
#: to accept Cython's coroutines for no return.
MODULES: tuple[str, ...] = (
    "riskmon.account",
    "riskmon.contract",
    "riskmon.engine",
    "riskmon.eventtime",
    "riskmon.features",
    "riskmon.label_features",
    "riskmon.ladder",
    "riskmon.ledger",
    "riskmon.limits",
    "riskmon.money",
    "riskmon.outputs",
    "riskmon.ews.covenants",
    "riskmon.ews.detectors",
    "riskmon.ews.extension",
    "riskmon.ews.health",
    "riskmon.ews.monitor",
    "riskmon.ews.peers",
    "riskmon.ews.seasonality",
    "riskmon.ews.series",
    "online_models.anomaly",
    "online_models.default_model",
    "online_models.flat_hst",
    "online_models.metrics",
    "online_models.model_features",
    "online_models.scorecard",
)

#: The packages :data:`MODULES` live in (the build gives each an ``__init__.py`` marker).
PACKAGES: tuple[str, ...] = ("riskmon", "riskmon.ews", "online_models")

SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the directory holding riskmon/ and online_models/
MANIFEST = "manifest.json"


def build_dir() -> Path:
    """Where builds live: ``RISKMON_ACCEL_DIR``, else ``.accel/<interpreter tag>`` next to the sources."""
    env = os.environ.get("RISKMON_ACCEL_DIR")
    base = Path(env) if env else SOURCE_ROOT / ".accel"
    return base / sys.implementation.cache_tag


def source_of(module: str, root: Path = SOURCE_ROOT) -> Path:
    """The ``.py`` file of a dotted module name under ``root``."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def source_hashes(modules: tuple[str, ...] = MODULES, root: Path = SOURCE_ROOT) -> dict[str, str]:
    """SHA-256 of each module's source (what a build is checked against)."""
    return {m: hashlib.sha256(source_of(m, root).read_bytes()).hexdigest() for m in modules}


@dataclass(frozen=True)
class Status:
    """Whether compiled modules are in use, and why (shown by ``riskmon accel status`` and the worker)."""

    active: bool
    reason: str
    directory: Path
    modules: int = 0

    def describe(self) -> str:
        """One line for logs and reports."""
        if self.active:
            return f"compiled ({self.modules} modules, {self.directory})"
        return f"pure Python ({self.reason})"


def _check(directory: Path) -> Status:
    if os.environ.get("RISKMON_ACCEL", "1").strip().lower() in ("0", "false", "no", "off"):
        return Status(False, "RISKMON_ACCEL=0", directory)
    return check_build(directory)


def check_build(directory: Path) -> Status:
    """Whether ``directory``'s manifest covers every module with today's sources (whatever RISKMON_ACCEL
    says: ``riskmon accel build --if-needed`` asks this too)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return Status(False, "not built: run `riskmon accel build`", directory)
    except (OSError, ValueError) as exc:
        return Status(False, f"unreadable manifest: {exc}", directory)
    built = manifest.get("sources", {})
    missing = [m for m in MODULES if m not in built]
    if missing:
        return Status(False, f"build lacks {', '.join(missing)}: run `riskmon accel build`", directory)
    try:
        current = source_hashes()
    except OSError as exc:
        return Status(False, f"cannot read sources: {exc}", directory)
    stale = [m for m in MODULES if built[m] != current[m]]
    if stale:
        return Status(False, f"stale: {', '.join(stale)} changed since the build; run `riskmon accel build`",
                      directory)
    return Status(True, "current", directory, len(MODULES))


_status: Status | None = None


def status() -> Status:
    """The build's status, checked once per process (the first package import decides for all)."""
    global _status
    if _status is None:
        _status = _check(build_dir())
    return _status


class _CompiledFinder:
    """A ``sys.meta_path`` finder that loads :data:`MODULES` from the build's extension files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names = frozenset(MODULES)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        """The extension's spec for a compiled module; None (the normal search) for anything else."""
        if fullname not in self.names:
            return None
        built = built_file(self.directory, fullname)
        if built is None:
            return None
        return spec_from_file_location(fullname, built, loader=ExtensionFileLoader(fullname, str(built)))


def built_file(directory: Path, module: str) -> Path | None:
    """The extension file of ``module`` in a build directory (None when absent)."""
    parent = directory.joinpath(*module.split(".")[:-1])
    name = module.rsplit(".", 1)[-1]
    for suffix in EXTENSION_SUFFIXES:
        if (parent / f"{name}{suffix}").is_file():
            return parent / f"{name}{suffix}"
    return None


def install() -> Status:
    """Load compiled modules from now on when the build is current; returns the status.

    Called by ``riskmon/__init__.py`` (and ``online_models/__init__.py`` through it), so before any
    compiled module can be imported. Idempotent.
    """
    st = status()
    if st.active and not any(isinstance(f, _CompiledFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _CompiledFinder(st.directory))
    return st


def compiled(module: object) -> bool:
    """True when a module object was loaded from a compiled extension."""
    return str(getattr(module, "__file__", "") or "").endswith((".so", ".pyd"))
