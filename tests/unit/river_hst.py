"""River's HalfSpaceTrees as the reference the FlatHST tests compare against."""

from __future__ import annotations

from typing import Any

from river.anomaly import HalfSpaceTrees


def river_step(model: HalfSpaceTrees, x: dict[str, Any]) -> float:
    """River's own ``score_one`` then ``learn_one`` (what ``FlatHST.score_then_learn`` must equal)."""
    score = float(model.score_one(x))
    model.learn_one(x)
    return score


def river_masses(model: HalfSpaceTrees) -> list[list[tuple[int, int]]]:
    """Every node's (l_mass, r_mass) of a River model, per tree in heap order (``FlatHST.node_masses``)."""
    out = []
    for root in model.trees:
        nodes, level = [], [root]
        for _ in range(model.height + 1):
            nodes.extend(level)
            level = [c for n in level for c in getattr(n, "children", ())]
        out.append([(n.l_mass, n.r_mass) for n in nodes])
    return out
