"""The compiled build (riskmon.accel): built by the real Cython + C compiler, and it changes no result.

Why this matters: the bench's throughput is measured on the compiled modules, so they must decide
exactly what the source decides. The equivalence test replays the same simulated traffic through the
consumer-credit engine (with label learning) and the EWS core in two fresh interpreters, one compiled
and one with ``RISKMON_ACCEL=0``, and compares a digest of every output record, every account state
blob, the models' checkpoints, the learnt-label log and every enterprise state.

``scripts/test`` builds the modules first (``riskmon accel build --if-needed``) and sets
``RISKMON_REQUIRE_ACCEL=1`` when the build succeeded, so there a missing build fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.machinery import ExtensionFileLoader
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest

from riskmon import accel

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

DIGEST = r"""
import hashlib, json, pickle, sys
import orjson
import riskmon.engine, riskmon.ews.monitor
from riskmon import accel
from riskmon.bench.dataset import build_lines
from riskmon.config import Settings
from riskmon.ews.offline import run_offline as ews_offline
from riskmon.offline import labelled_engine, run_offline

lines = build_lines(int(sys.argv[1]), int(sys.argv[2]), 30, 11)
settings = Settings()
engine = labelled_engine(settings)
run = run_offline([(l.topic, l.value) for l in lines], engine, batch_size=250)
h = hashlib.sha256()
for topic, key, record in run.outputs:
    h.update(orjson.dumps([topic, key, record], option=orjson.OPT_SORT_KEYS))
for uid in sorted(run.states):
    h.update(run.states[uid].to_bytes())
h.update(engine.anomaly.to_bytes())
h.update(engine.model.to_bytes())
h.update(orjson.dumps(engine.label_log, option=orjson.OPT_SORT_KEYS))
metrics = []
for l in lines:
    if l.topic == "business-metrics":
        try:
            metrics.append((0, orjson.loads(l.value)))
        except orjson.JSONDecodeError:
            pass
alerts, health, ews_states = ews_offline(metrics)
h.update(orjson.dumps([alerts, health], option=orjson.OPT_SORT_KEYS))
for ent in sorted(ews_states):
    h.update(pickle.dumps(ews_states[ent], protocol=5))
print(json.dumps({"digest": h.hexdigest(), "compiled": accel.compiled(riskmon.engine)
                  and accel.compiled(riskmon.ews.monitor), "outputs": len(run.outputs),
                  "labels": len(engine.label_log), "ews_alerts": len(alerts)}))
"""


def _require_build() -> None:
    st = accel.status()
    if st.active:
        return
    if os.environ.get("RISKMON_REQUIRE_ACCEL") == "1":
        pytest.fail(f"the compiled build is required here but not in use: {st.reason}")
    pytest.skip(f"no compiled build ({st.reason}); `riskmon accel build` makes one")


def _digest(env_accel: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RISKMON_ACCEL"}
    if env_accel is not None:
        env["RISKMON_ACCEL"] = env_accel
    out = subprocess.run([sys.executable, "-c", DIGEST, "30000", "300"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_this_process_runs_the_compiled_modules() -> None:
    _require_build()
    import online_models.flat_hst
    import riskmon.config
    import riskmon.engine

    assert accel.compiled(riskmon.engine) and accel.compiled(online_models.flat_hst)
    assert not accel.compiled(riskmon.config)  # not listed: always the source


def test_compiled_and_pure_python_decide_byte_for_byte_the_same() -> None:
    _require_build()
    compiled = _digest(None)
    pure = _digest("0")
    assert compiled["compiled"] is True and pure["compiled"] is False
    # the replay is not trivial: decisions, learnt labels and EWS alerts all happened
    assert compiled["outputs"] > 10_000 and compiled["labels"] > 500 and compiled["ews_alerts"] > 0, compiled
    assert compiled == {**pure, "compiled": True}


def test_build_compiles_a_hashed_copy_and_reuses_unchanged_modules(tmp_path: Path) -> None:
    from riskmon.accel_build import build, cython_version

    if cython_version() is None:
        if os.environ.get("RISKMON_REQUIRE_ACCEL") == "1":
            pytest.fail("Cython is required here")
        pytest.skip("Cython is not installed")
    target = tmp_path / "build"
    done: list[str] = []
    build(target, jobs=1, progress=done.append, modules=("riskmon.money",))
    manifest = json.loads((target / accel.MANIFEST).read_text())
    assert done == ["riskmon.money"] and manifest["compiled"] == ["riskmon.money"]
    assert manifest["sources"] == {"riskmon.money": accel.source_hashes(("riskmon.money",))["riskmon.money"]}
    so = accel.built_file(target, "riskmon.money")
    assert so is not None and not (REPO / "riskmon" / "money.c").exists()  # nothing written next to sources

    # the extension is the real module: same answers as the source (loaded aside, sys.modules untouched)
    spec = spec_from_file_location("riskmon.money", so, loader=ExtensionFileLoader("riskmon.money", str(so)))
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    from riskmon import money

    assert accel.compiled(mod)
    for value in ("12.34", "0.01", "7", 0.1, 3, "1e3", "12.345", "1e30", True):
        results = []
        for m in (mod, money):
            try:
                results.append(m.fmt(m.to_fen(value)))
            except Exception as exc:  # noqa: BLE001 - the same rejection, by name and reason
                results.append(f"{type(exc).__name__}: {exc}")
        assert results[0] == results[1], value

    # a second build of the same source copies the extension instead of compiling it
    build(target, jobs=1, modules=("riskmon.money",))
    assert json.loads((target / accel.MANIFEST).read_text())["compiled"] == []
