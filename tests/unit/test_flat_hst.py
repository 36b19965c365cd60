"""FlatHST gives exactly River's HalfSpaceTrees score_one + learn_one: every score, every node's masses."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

import pytest
from river.anomaly import HalfSpaceTrees

from online_models.flat_hst import FlatHST
from tests.unit.river_hst import river_masses, river_step

KEYS = ("a", "b", "c", "d", "e")


def inputs(n: int, seed: int) -> list[dict[str, Any]]:
    """Skewed inputs (long early-stopped walks and full-depth ones), with missing, NaN, integer and unseen
    features; the first one lacks "e", so trees never split on it and it only shows up later."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        x: dict[str, Any] = {k: rng.random() ** (4 if i % 7 else 1) for k in KEYS}
        if i == 0:
            del x["e"]
        if i % 11 == 3:
            for k in rng.sample(KEYS, rng.choice((1, 2))):
                del x[k]  # missing: River follows the child with the larger l_mass (left on a tie)
        if i % 29 == 5:
            x[rng.choice(KEYS)] = math.nan  # compares False: River goes right
        if i % 31 == 7:
            x[rng.choice(KEYS)] = rng.choice((0, 1, True))
        if i % 5 == 0:
            x["unseen"] = rng.random()
        out.append(x)
    return out


SHAPES = [  # (n_trees, height, window_size, seed)
    (15, 8, 250, 42),  # the purchase detector's
    (8, 5, 60, 7),  # the EWS detector's
    (7, 6, 50, 11),
    (3, 1, 5, 2),
    (2, 0, 3, 4),  # a single leaf per tree
    (4, 3, 1, 9),  # a pivot after every input
]


@pytest.mark.parametrize(("n_trees", "height", "window", "seed"), SHAPES)
def test_scores_and_masses_identical_to_river(n_trees: int, height: int, window: int, seed: int) -> None:
    river = HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window, seed=seed)
    flat = FlatHST(n_trees=n_trees, height=height, window_size=window, seed=seed)
    xs = inputs(4_000, seed)
    scores = []
    for i, x in enumerate(xs):
        expected = river_step(river, x)
        got = flat.score_then_learn(x)
        assert got == expected, i
        scores.append(got)
        if i % 97 == 0 or i % window == window - 1:  # mid-window and at pivots
            assert flat.node_masses() == river_masses(river), i
    assert flat.node_masses() == river_masses(river)
    assert (flat.counter, flat.first_window) == (river.counter, river._first_window)
    assert scores[:window] == [0.0] * window  # River's first window
    if height > 0:  # really compared: not a run of constants
        assert len(set(scores)) > (100 if window >= 50 else 10)


def test_missing_feature_goes_to_the_heavier_child_left_on_a_tie() -> None:
    river = HalfSpaceTrees(n_trees=1, height=1, window_size=100, seed=3)
    flat = FlatHST(n_trees=1, height=1, window_size=100, seed=3)
    t = 0.0
    first = {"a": 0.5}
    for x in (first,):
        river_step(river, x)
        flat.score_then_learn(x)
        t = river.trees[0].threshold
    lo, hi = {"a": t / 2}, {"a": (1 + t) / 2}
    steps = [  # (x, leaf l_masses after it)
        (hi if first["a"] < t else lo, (1, 1)),
        ({}, (2, 1)),  # a tie: left
        ({}, (3, 1)),  # left heavier: left
        (hi, (3, 2)), (hi, (3, 3)), (hi, (3, 4)),
        ({}, (3, 5)),  # right heavier: right
    ]
    for x, leaves in steps:
        assert flat.score_then_learn(x) == river_step(river, x)
        masses = river_masses(river)
        assert (masses[0][1][0], masses[0][2][0]) == leaves
        assert flat.node_masses() == masses


def test_pickle_round_trip_continues_identically() -> None:
    xs = inputs(1_500, 5)
    flat = FlatHST(n_trees=6, height=5, window_size=40, seed=1)
    clones = [pickle.loads(pickle.dumps(flat))]  # before the trees are built
    for i, x in enumerate(xs[:1_000]):
        flat.score_then_learn(x)
        if i in (10, 333, 999):  # first window, mid-window, the input just before a pivot
            clones.append(pickle.loads(pickle.dumps(flat, protocol=pickle.HIGHEST_PROTOCOL)))
    for x in xs[:1_000]:
        clones[0].score_then_learn(x)
    for i, clone in enumerate(clones[1:]):
        for x in xs[[11, 334, 1_000][i]:1_000]:
            clone.score_then_learn(x)
    for x in xs[1_000:]:
        expected = flat.score_then_learn(x)
        assert [c.score_then_learn(x) for c in clones] == [expected] * len(clones)
    assert all(c.node_masses() == flat.node_masses() for c in clones)


def test_unseeded_detector_keeps_its_generator_through_a_pickle() -> None:
    flat = FlatHST(n_trees=3, height=3, window_size=5)
    clone = pickle.loads(pickle.dumps(flat))
    for x in inputs(50, 2):
        assert clone.score_then_learn(x) == flat.score_then_learn(x)
    assert clone.node_masses() == flat.node_masses()


@pytest.mark.parametrize("learnt", [0, 1, 37, 60, 61, 250])
def test_converted_river_model_continues_identically(learnt: int) -> None:
    xs = inputs(600, 8)
    river = HalfSpaceTrees(n_trees=8, height=5, window_size=60, seed=4)
    for x in xs[:learnt]:
        river_step(river, x)
    flat = FlatHST.from_river(pickle.loads(pickle.dumps(river)))
    for x in xs[learnt:]:
        assert flat.score_then_learn(x) == river_step(river, x)
    assert flat.node_masses() == river_masses(river)


def test_converting_an_unbuilt_unseeded_river_model_keeps_its_generator() -> None:
    river = HalfSpaceTrees(n_trees=3, height=4, window_size=10, seed=None)
    flat = FlatHST.from_river(pickle.loads(pickle.dumps(river)))
    for x in inputs(100, 3):
        assert flat.score_then_learn(x) == river_step(river, x)
    assert flat.node_masses() == river_masses(river)


def test_conversion_refuses_masses_river_cannot_have() -> None:
    river = HalfSpaceTrees(n_trees=2, height=3, window_size=10, seed=1)
    for x in inputs(25, 1):
        river_step(river, x)
    river.trees[1].children[0].l_mass += 1  # no longer the sum of its leaves
    with pytest.raises(ValueError, match="sums"):
        FlatHST.from_river(river)
