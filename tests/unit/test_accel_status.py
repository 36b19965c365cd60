"""riskmon.accel's decision: compiled modules only from a complete build of today's sources.

These tests write manifests by hand (no compiler): the build itself and the equivalence of compiled and
pure-Python results are checked in tests/integration/test_accel.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskmon import accel


def _manifest(directory: Path, sources: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / accel.MANIFEST).write_text(json.dumps({"sources": sources}))


def test_a_current_build_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKMON_ACCEL", raising=False)
    _manifest(tmp_path, accel.source_hashes())
    st = accel._check(tmp_path)
    assert st.active and st.modules == len(accel.MODULES)
    assert st.describe().startswith("compiled (")


def test_no_build_means_pure_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKMON_ACCEL", raising=False)
    st = accel._check(tmp_path / "nothing-here")
    assert not st.active and "not built" in st.reason


def test_an_edited_source_turns_the_whole_build_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKMON_ACCEL", raising=False)
    hashes = accel.source_hashes()
    hashes["riskmon.ledger"] = "0" * 64  # built from another version of ledger.py
    _manifest(tmp_path, hashes)
    st = accel._check(tmp_path)
    assert not st.active
    assert "stale: riskmon.ledger changed" in st.reason


def test_a_build_missing_a_module_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKMON_ACCEL", raising=False)
    hashes = accel.source_hashes()
    del hashes["riskmon.engine"]
    _manifest(tmp_path, hashes)
    st = accel._check(tmp_path)
    assert not st.active and "lacks riskmon.engine" in st.reason


def test_the_switch_forces_pure_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _manifest(tmp_path, accel.source_hashes())
    for off in ("0", "false", "off"):
        monkeypatch.setenv("RISKMON_ACCEL", off)
        st = accel._check(tmp_path)
        assert not st.active and st.reason == "RISKMON_ACCEL=0"


def test_a_corrupt_manifest_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKMON_ACCEL", raising=False)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / accel.MANIFEST).write_text("{not json")
    st = accel._check(tmp_path)
    assert not st.active and "unreadable manifest" in st.reason


def test_the_finder_serves_only_listed_modules_with_a_built_file(tmp_path: Path) -> None:
    finder = accel._CompiledFinder(tmp_path)
    assert finder.find_spec("riskmon.config") is None  # never compiled: the normal search finds the source
    assert finder.find_spec("riskmon.engine") is None  # listed, but no extension file in this build
    so = tmp_path / "riskmon" / "engine.cpython-311-x86_64-linux-gnu.so"
    so.parent.mkdir(parents=True)
    so.write_bytes(b"")
    from importlib.machinery import EXTENSION_SUFFIXES

    if ".cpython-311-x86_64-linux-gnu.so" not in EXTENSION_SUFFIXES:
        pytest.skip("another interpreter ABI")
    spec = finder.find_spec("riskmon.engine")
    assert spec is not None and spec.origin == str(so)


def test_every_listed_module_exists_and_is_synchronous_code() -> None:
    """The list names real modules, and none of them holds coroutines (those stay interpreted)."""
    for module in accel.MODULES:
        src = accel.source_of(module).read_text()
        assert "async def" not in src, module
    assert {m.rsplit(".", 1)[0] for m in accel.MODULES} <= set(accel.PACKAGES)
