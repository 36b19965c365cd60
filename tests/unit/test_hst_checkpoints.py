"""The two users of FlatHST: the purchase detector's checkpoint and the EWS state, new and old formats.

An old checkpoint (PurchaseAnomaly format 3) or EWS state (``EWS1``) holds a River HalfSpaceTrees; it must
load and go on exactly as that River model would have, which is what the reference paths here run.
"""

from __future__ import annotations

import io
import pickle
import random
from typing import Any

import orjson
import pytest
from river.anomaly import HalfSpaceTrees

from online_models.anomaly import FORMAT, PurchaseAnomaly
from online_models.flat_hst import FlatHST
from riskmon.contract import TOPIC_METRICS, BusinessMetric, decode
from riskmon.ews.monitor import EnterpriseMonitor, EnterpriseState
from riskmon.ews.service import decode_state, encode_state
from simulator.config import start_ms
from simulator.enterprises import generate
from tests.unit.river_hst import river_masses, river_step


class RiverPath:
    """The purchase detector's model before FlatHST: River's own score_one then learn_one."""

    def __init__(self, model: HalfSpaceTrees) -> None:
        self.model = model

    def score_then_learn(self, x: dict[str, float]) -> float:
        return river_step(self.model, x)


def purchases(n: int, seed: int) -> list[dict[str, float]]:
    """Raw purchase features (PurchaseAnomaly squashes them), ordinary ones and a few bursts."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        burst = i % 173 == 0
        out.append({"velocity_24h": rng.random() * (30 if burst else 2), "utilisation": rng.random() ** 2,
                    "util_jump": rng.random() * 0.6 if burst else 0.0, "amount_to_limit": rng.random() * 0.1,
                    "count_24h": rng.choice([1, 1, 2, 5 if burst else 3]), "new_merchants_24h": rng.choice([0, 0, 1]),
                    "spend_24h": rng.random() * 500, "limit": 1000.0})
    return out


def river_detector(warmup: int, seed: int) -> tuple[PurchaseAnomaly, HalfSpaceTrees]:
    """A PurchaseAnomaly scoring with the River model its format-3 checkpoints held."""
    river = HalfSpaceTrees(n_trees=15, height=8, window_size=250, seed=seed)
    det = PurchaseAnomaly(warmup=warmup, seed=seed)
    det.model = RiverPath(river)  # type: ignore[assignment]
    return det, river


def test_purchase_detector_scores_like_river_from_scratch() -> None:
    det = PurchaseAnomaly(warmup=300, seed=3)
    ref, river = river_detector(300, 3)
    got = [det.score_and_learn(f) for f in purchases(2_000, 1)]
    assert got == [ref.score_and_learn(f) for f in purchases(2_000, 1)]
    assert list(det._recent) == list(ref._recent)  # the raw scores, bit for bit
    assert det.model.node_masses() == river_masses(river)
    assert len(set(got)) > 500


def test_format_4_checkpoint_round_trip_continues_identically() -> None:
    xs = purchases(1_600, 2)
    det = PurchaseAnomaly(warmup=100, seed=4)
    for f in xs[:1_111]:
        det.score_and_learn(f)
    blob = det.to_bytes()
    assert pickle.loads(blob)[0] == FORMAT == 4
    restored = PurchaseAnomaly.from_bytes(blob)
    assert (restored.n_seen, list(restored._recent)) == (det.n_seen, list(det._recent))
    for f in xs[1_111:]:
        assert restored.score_and_learn(f) == det.score_and_learn(f)
    assert restored.model.node_masses() == det.model.node_masses()


def test_format_4_checkpoint_tells_an_older_build_its_format() -> None:
    """An older build's from_bytes unpickles the outer tuple before it checks the format; that must not
    need online_models.flat_hst, or the worker's restore (which only expects ValueError) would fail."""
    det = PurchaseAnomaly(warmup=10, seed=1)
    for f in purchases(300, 4):
        det.score_and_learn(f)

    class ArrayOnly(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module != "array":
                raise pickle.UnpicklingError(f"{module}.{name}")
            return super().find_class(module, name)

    fmt, *_ = ArrayOnly(io.BytesIO(det.to_bytes())).load()
    assert fmt == 4


def test_format_3_checkpoint_is_converted_and_continues_like_river() -> None:
    xs = purchases(2_400, 3)
    ref, river = river_detector(200, 5)
    for f in xs[:1_337]:
        ref.score_and_learn(f)
    # what to_bytes wrote before FlatHST (format 3): the River model pickled as it is
    blob = pickle.dumps((3, ref.warmup, ref.seed, river, ref.n_seen, list(ref._recent)))
    det = PurchaseAnomaly.from_bytes(blob)
    assert isinstance(det.model, FlatHST)
    for f in xs[1_337:]:
        assert det.score_and_learn(f) == ref.score_and_learn(f)
    assert list(det._recent) == list(ref._recent)
    assert det.model.node_masses() == river_masses(river)


def test_unknown_checkpoint_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 2"):
        PurchaseAnomaly.from_bytes(pickle.dumps((2, 500, 42, None, 0, [])))


def metric_events(days: int) -> list[BusinessMetric]:
    """Three simulated enterprises' daily metrics, in time order."""
    out = []
    for _, msg in generate(23, 3, start_ms("2026-01-05"), days)[0]:
        ev = decode(TOPIC_METRICS, orjson.dumps(msg))
        assert isinstance(ev, BusinessMetric)
        out.append(ev)
    return out


def river_forest_state(mon: EnterpriseMonitor, ev: BusinessMetric) -> EnterpriseState:
    """A new state as the code before FlatHST made it: a River HalfSpaceTrees in ChangeAnomaly.forest."""
    st = mon.new_state(ev.enterprise_id, ev.industry)
    p = mon.policy
    st.anomaly.forest = HalfSpaceTrees(  # type: ignore[assignment]
        n_trees=p.anomaly_trees, height=p.anomaly_height, window_size=p.anomaly_window,
        limits={f: (0.0, 1.0) for f in st.anomaly.features}, seed=p.anomaly_seed,
    )
    return st


def apply_all(mon: EnterpriseMonitor, states: dict[str, EnterpriseState], events: list[BusinessMetric],
              make: Any) -> list[Any]:
    out = []
    for ev in events:
        st = states.get(ev.enterprise_id) or states.setdefault(ev.enterprise_id, make(mon, ev))
        out.append((mon.apply(st, ev), st.anomaly_score))
    return out


def test_ews1_state_is_converted_and_continues_like_river(monkeypatch: pytest.MonkeyPatch) -> None:
    # River's forest, driven by River's own score_one + learn_one, is the reference (the code before FlatHST)
    monkeypatch.setattr(HalfSpaceTrees, "score_then_learn", river_step, raising=False)
    events = metric_events(330)
    cut = 5 * 3 * 220
    mon = EnterpriseMonitor()
    old: dict[str, EnterpriseState] = {}
    new: dict[str, EnterpriseState] = {}
    fresh = lambda m, ev: m.new_state(ev.enterprise_id, ev.industry)  # noqa: E731
    assert apply_all(mon, new, events[:cut], fresh) == apply_all(mon, old, events[:cut], river_forest_state)
    assert all(not st.anomaly.forest._first_window for st in old.values())  # built, pivoted, mid-window
    blobs = {e: b"EWS1" + pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL) for e, st in old.items()}
    loaded = {e: decode_state(b) for e, b in blobs.items()}
    assert all(isinstance(st.anomaly.forest, FlatHST) for st in loaded.values())
    ref = apply_all(mon, old, events[cut:], river_forest_state)
    assert apply_all(mon, loaded, events[cut:], fresh) == ref  # type: ignore[arg-type]
    assert apply_all(mon, new, events[cut:], fresh) == ref
    assert len({score for _, score in ref}) > 50  # the anomaly scores really move
    for e, st in old.items():
        assert loaded[e].anomaly.forest.node_masses() == river_masses(st.anomaly.forest)  # type: ignore[union-attr]


def test_ews2_state_round_trip_continues_identically() -> None:
    events = metric_events(200)
    cut = 5 * 3 * 150
    mon = EnterpriseMonitor()
    states: dict[str, EnterpriseState] = {}
    fresh = lambda m, ev: m.new_state(ev.enterprise_id, ev.industry)  # noqa: E731
    apply_all(mon, states, events[:cut], fresh)
    blobs = {e: encode_state(st) for e, st in states.items()}
    assert all(b.startswith(b"EWS2") for b in blobs.values())
    loaded = {e: decode_state(b) for e, b in blobs.items()}
    assert apply_all(mon, loaded, events[cut:], fresh) == apply_all(mon, states, events[cut:], fresh)  # type: ignore[arg-type]
    assert decode_state(b"EWS0" + blobs[next(iter(blobs))][4:]) is None  # a foreign prefix starts fresh
