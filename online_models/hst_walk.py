"""River's ``HalfSpaceTrees.score_one`` followed by ``learn_one``, in one walk down each tree.

Why: a purchase is scored and then learnt, and both walk the same root-to-leaf path of each of the
15 trees (the path depends only on ``x`` and the split thresholds; scoring reads ``r_mass``, learning
increments ``l_mass``). River walks it twice; the anomaly detector was the largest single item of a
worker's profile (about 15 % of its CPU, docs/performance.md). One walk does both for less. The result
is identical, node for node, to River's two calls (``tests/unit/test_hst_walk.py`` checks scores and
every node's masses against River), which is why this relies on River's tree layout (pinned
``river>=0.26,<0.27``).
"""

from __future__ import annotations

from river.anomaly import HalfSpaceTrees


def score_then_learn(model: HalfSpaceTrees, x: dict[str, float]) -> float:
    """``model.score_one(x)`` (returned, as a float) then ``model.learn_one(x)``, in one pass per tree."""
    if not model.trees or model._first_window:
        raw = float(model.score_one(x))  # 0 until the first window is full; River builds the trees lazily
        model.learn_one(x)
        return raw
    height = model.height
    size_limit = 0.1 * model.window_size
    total = 0.0
    for root in model.trees:
        node = root
        depth_pow = 1
        scoring = True
        for _ in range(height):
            if scoring:
                r = node.r_mass
                total += r * depth_pow
                if r < size_limit:
                    scoring = False  # River's score walk stops here; the learn walk goes on to the leaf
            node.l_mass += 1
            c = node.children
            try:
                value = x[node.feature]
            except KeyError:
                node = c[1] if c[0].l_mass < c[1].l_mass else c[0]
            else:
                node = c[0] if value < node.threshold else c[1]
            depth_pow <<= 1
        if scoring:
            total += node.r_mass * depth_pow
        node.l_mass += 1
    raw = 1 - total / (model.n_trees * model.window_size * (2 ** (height + 1) - 1))
    model.counter += 1
    if model.counter == model.window_size:  # River's window pivot, as in learn_one
        for nodes in model._tree_nodes:
            for n in nodes:
                n.r_mass = n.l_mass
                n.l_mass = 0
        model._first_window = False
        model.counter = 0
    return raw
