"""The one-walk score-then-learn gives exactly River's score_one + learn_one, node for node."""

from __future__ import annotations

import random

from river.anomaly import HalfSpaceTrees

from online_models.hst_walk import score_then_learn


def _masses(model: HalfSpaceTrees) -> list[tuple[int, int]]:
    return [(n.l_mass, n.r_mass) for nodes in model._tree_nodes for n in nodes]


def test_identical_to_river_over_several_windows() -> None:
    rng = random.Random(3)
    ours = HalfSpaceTrees(n_trees=7, height=6, window_size=50, seed=11)
    river = HalfSpaceTrees(n_trees=7, height=6, window_size=50, seed=11)
    keys = ["a", "b", "c", "d"]
    scores = []
    for i in range(1_200):  # 24 windows: every pivot, early-stopped and full-depth score walks
        x = {k: rng.random() ** (3 if i % 97 == 0 else 1) for k in keys}
        if i % 13 == 0:
            del x[rng.choice(keys)]  # a missing feature: both walks follow the heavier child
        expected = float(river.score_one(x))
        river.learn_one(x)
        got = score_then_learn(ours, x)
        assert got == expected, i
        scores.append(got)
        if i % 50 == 49:
            assert _masses(ours) == _masses(river)
    assert _masses(ours) == _masses(river)
    assert ours.counter == river.counter and not ours._first_window
    assert len(set(scores)) > 100  # the scores really vary: the comparison is not of constants
