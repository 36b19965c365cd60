"""River's HalfSpaceTrees on flat per-tree lists: ``score_one`` then ``learn_one``, identical results.

Why: the purchase anomaly's HalfSpaceTrees was the largest single CPU item of a worker (~9 % of its
samples), and River's node objects were most of every EWS enterprise state's pickle. River walks a tree
of linked ``PaddedBranch`` objects by attribute access, adds 1 to ``l_mass`` at every node on the path,
and at each window pivot rewrites two attributes on every node. This module keeps each tree as lists in
heap order (the children of node ``i`` are ``2i+1`` and ``2i+2``) and does less work per purchase:

- **Masses live on the leaves only.** Every learn adds 1 to every node of one root-to-leaf path, and a
  pivot copies ``l_mass`` to ``r_mass`` on every node, so a node's mass is always the sum of its leaves'
  masses. Learning adds 1 to one leaf instead of ``height + 1`` nodes; a node's ``l_mass`` is summed
  from its leaves only where River would read it (a missing feature), ``r_mass`` only at a pivot.
- **A tree's score is a function of the leaf reached.** Within a window ``r_mass`` does not change, and
  River's score walk (``sum r_mass * 2**depth`` down the path, stopping after the first node with
  ``r_mass < 0.1 * window_size``) follows the same path as the learn walk. So each pivot tabulates every
  leaf's score (visiting only the nodes above the early stop, at most ~10 per level) and a purchase
  walks the thresholds once per tree, reads its leaf's score, adds 1 to its leaf's count.
- **Inputs as a tuple.** The features are fetched once per call (``operator.itemgetter``) and the split
  features are positions in that tuple.

Results are bit-identical to River's ``score_one`` + ``learn_one`` (``tests/unit/test_flat_hst.py``:
scores and every node's masses, over many windows, with missing and unseen features). Integer sums are
exact, so summing per leaf instead of per node changes nothing; the trees themselves are built by
River's own ``make_padded_tree`` with the same seeded ``random.Random``, from the same ``sorted(x)``.
River's missing-feature rule (the child with the larger ``l_mass``, the left one on a tie) and its
first window (score 0) are kept. River is pinned ``river>=0.26,<0.27``. Two caveats, neither reachable
from riskmon's inputs (floats in [0, 1] in plain dicts): a value that does not compare with a float
raises TypeError here possibly after some trees have learnt ``x`` (River's ``score_one`` raises before
any learning); and the sums are exact only below 2**53, which River's float sums need as well.

Measured with ``scripts/bench_hst.py`` on the 2-core shared dev machine (min of 7 rounds, noisy):

- ``walk``: 15 trees x height 8, window 250, 7 features, 10,117 purchase inputs recorded from a simulated
  book after 3,000 of warm-up, one process. River's two calls 31.3 µs per purchase, the one-walk
  ``hst_walk`` this replaces (removed; the bench takes it from git) 24.0 µs, this 9.4 µs (window
  pivots included, ~0.9 µs of it): 2.6x faster.
- ``checkpoints``, the purchase detector after 13k purchases: 298 KB -> 83 KB (40 KB of it the 5,000
  recent raw scores), ``to_bytes`` 6.5 ms -> 0.41 ms, ``from_bytes`` 5.2 ms -> 0.93 ms. An EWS
  enterprise state after 400 days: 38.3 KB -> 20.9 KB (its forest 20.3 KB -> 3.1 KB), ``encode_state``
  568 -> 107 µs, ``decode_state`` 415 -> 172 µs, 218 -> 91 KB in memory (tracemalloc).
"""

from __future__ import annotations

import operator
import random
from array import array
from collections.abc import Callable, Hashable, Mapping, Sequence
from itertools import accumulate
from typing import Any

from river.anomaly import HalfSpaceTrees
from river.tree.padded import PaddedLeaf, make_padded_tree

__all__ = ["FlatHST"]

_MISSING = object()  # stands for a feature absent from x (River's KeyError), in the values tuple
_STATE_VERSION = 1  # of the pickled state (``__getstate__``)
_PADDING = 0.15  # River's padding of split points (``HalfSpaceTrees.learn_one``)


class FlatHST:
    """HalfSpaceTrees with River's parameters and results; one call scores then learns.

    >>> hst = FlatHST(n_trees=3, height=4, window_size=5, seed=1)
    >>> [round(hst.score_then_learn({"a": v}), 3) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.15)]
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.959, 0.766]
    """

    __slots__ = ("_feat", "_get", "_l", "_max_score", "_r", "_rng", "_scores", "_thr", "_trees", "counter",
                 "features", "first_window", "height", "limits", "n_trees", "seed", "window_size")

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250,
                 limits: Mapping[Hashable, tuple[float, float]] | None = None, seed: int | None = None) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.limits: dict[Hashable, tuple[float, float]] = dict(limits or {})
        self.seed = seed
        # River draws every split from random.Random(seed) when the first x comes in; with a seed the
        # generator is made then, so a pickled detector that has not built its trees carries no state
        self._rng: random.Random | None = None if seed is not None else random.Random()
        self.counter = 0
        self.first_window = True
        self.features: tuple[Hashable, ...] = ()
        self._feat: list[list[int]] = []  # per tree, per inner node: position of the split feature
        self._thr: list[list[float]] = []  # per tree, per inner node: split threshold
        self._l: list[list[int]] = []  # per tree, per leaf: l_mass (this window's count)
        self._r: list[list[int]] = []  # per tree, per leaf: r_mass (the last full window's count)
        self._scores: list[list[int]] = []  # per tree, per leaf: River's score walk ending at that leaf
        self._trees: list[tuple[list[int], list[float], list[int], list[int]]] = []
        self._get: Callable[[Mapping[Hashable, Any]], tuple[Any, ...]] = _getter(())
        self._max_score = n_trees * window_size * (2 ** (height + 1) - 1)

    # ---- scoring and learning ----------------------------------------------------------------------
    def score_then_learn(self, x: Mapping[Hashable, Any]) -> float:
        """River's ``score_one(x)`` (returned as a float; 0.0 in the first window) then ``learn_one(x)``."""
        trees = self._trees
        if not trees:
            self._build(x)
            trees = self._trees
        try:
            values = self._get(x)
        except KeyError:
            total = self._walk_with_missing(x)
        else:
            total = 0
            off = (1 << self.height) - 1  # heap index of the first leaf
            levels = range(self.height)
            for feat, thr, counts, scores in trees:
                i = 0
                for _ in levels:
                    if values[feat[i]] < thr[i]:  # River: left if value < threshold, else right (NaN too)
                        i += i + 1
                    else:
                        i += i + 2
                i -= off
                total += scores[i]
                counts[i] += 1
        scored = not self.first_window
        self.counter += 1
        if self.counter == self.window_size:
            self._pivot()
        return 1 - total / self._max_score if scored else 0.0

    def _walk_with_missing(self, x: Mapping[Hashable, Any]) -> int:
        """The walk when a split feature is absent from ``x``: River goes down the child with the larger
        ``l_mass`` there (the left one on a tie), counted before this ``x`` is learnt."""
        values = tuple(_lookup(x, f) for f in self.features)
        off = (1 << self.height) - 1
        total = 0
        for feat, thr, counts, scores in self._trees:
            i = 0
            for depth in range(self.height):
                value = values[feat[i]]
                if value is _MISSING:
                    left = i + i + 1
                    heavier_right = self._mass(counts, left, depth + 1) < self._mass(counts, left + 1, depth + 1)
                    i = left + 1 if heavier_right else left
                elif value < thr[i]:
                    i += i + 1
                else:
                    i += i + 2
            i -= off
            total += scores[i]
            counts[i] += 1
        return total

    def _mass(self, leaf_counts: list[int], node: int, depth: int) -> int:
        """The mass of heap node ``node`` (at ``depth``): the sum over its leaves, a contiguous run."""
        span = 1 << (self.height - depth)
        lo = (node + 1) * span - (1 << self.height)  # its first leaf, as an index into leaf_counts
        return sum(leaf_counts[lo:lo + span])

    def _pivot(self) -> None:
        """River's window pivot: ``r_mass = l_mass; l_mass = 0`` on every node, then the new leaf scores."""
        self._r = self._l
        self._l = [[0] * (1 << self.height) for _ in range(self.n_trees)]
        self.first_window = False
        self.counter = 0
        self._index()

    def _index(self) -> None:
        """Leaf scores from the ``r`` counts, and the per-tree tuples the walk iterates over."""
        limit = 0.1 * self.window_size  # River's size_limit
        self._scores = [_leaf_scores(r, self.height, limit) for r in self._r]
        self._trees = list(zip(self._feat, self._thr, self._l, self._scores, strict=True))

    # ---- construction ------------------------------------------------------------------------------
    def _build(self, x: Mapping[Hashable, Any]) -> None:
        """River's trees for the first ``x`` (``HalfSpaceTrees.learn_one``), flattened."""
        if self._rng is None:
            self._rng = random.Random(self.seed)  # kept until the trees are built, as River keeps it
        limits = {f: self.limits.get(f, (0.0, 1.0)) for f in sorted(x)}
        roots = [make_padded_tree(limits=dict(limits), height=self.height, padding=_PADDING, rng=self._rng,
                                  r_mass=0, l_mass=0)
                 for _ in range(self.n_trees)]
        self._rng = None  # River never draws again
        self._load_roots(roots)

    def _load_roots(self, roots: Sequence[Any]) -> None:
        """Flatten River trees (``PaddedBranch``/``PaddedLeaf``) into heap-ordered lists."""
        names: dict[Hashable, int] = {}
        feats, thrs, ls, rs = [], [], [], []
        for root in roots:
            inner, leaves = _heap_order(root, self.height)
            feats.append([names.setdefault(n.feature, len(names)) for n in inner])
            thrs.append([n.threshold for n in inner])
            ls.append([n.l_mass for n in leaves])
            rs.append([n.r_mass for n in leaves])
        self._set_trees(tuple(names), feats, thrs, ls, rs)

    def _set_trees(self, features: tuple[Hashable, ...], feats: list[list[int]], thrs: list[list[float]],
                   ls: list[list[int]], rs: list[list[int]]) -> None:
        self.features = features
        self._get = _getter(features)
        self._feat, self._thr, self._l, self._r = feats, thrs, ls, rs
        self._index()

    @classmethod
    def from_river(cls, model: HalfSpaceTrees) -> FlatHST:
        """The same detector as a River ``HalfSpaceTrees`` (built or not), continuing identically.

        Raises ValueError for a model whose masses River could not have produced (a node's mass not the
        sum of its children's), since only the leaves' masses are kept.
        """
        flat = cls(n_trees=model.n_trees, height=model.height, window_size=model.window_size,
                   limits=dict(model.limits), seed=model.seed)
        if not model.trees:
            fresh = model.seed is not None and model.rng.getstate() == random.Random(model.seed).getstate()
            flat._rng = None if fresh else model.rng
            return flat
        if len(model.trees) != model.n_trees:
            raise ValueError(f"{len(model.trees)} trees in a HalfSpaceTrees of n_trees={model.n_trees}")
        for root in model.trees:
            _check_masses(root, model.height)
        flat._rng = None
        flat._load_roots(model.trees)
        flat.counter = model.counter
        flat.first_window = model._first_window
        return flat

    # ---- inspection --------------------------------------------------------------------------------
    def node_masses(self) -> list[list[tuple[int, int]]]:
        """Per tree, every node's ``(l_mass, r_mass)`` in heap order (what River's nodes would hold)."""
        return [list(zip(_heap_sums(ls), _heap_sums(rs), strict=True))
                for ls, rs in zip(self._l, self._r, strict=True)]

    # ---- pickling ----------------------------------------------------------------------------------
    def __getstate__(self) -> tuple[Any, ...]:
        """Compact: the per-tree lists concatenated into typed arrays (bytes in the pickle)."""
        flat = None
        if self._trees:
            mass = _mass_typecode(self.window_size)
            flat = (_concat(_index_typecode(len(self.features)), self._feat), _concat("d", self._thr),
                    _concat(mass, self._l), _concat(mass, self._r))
        return (_STATE_VERSION, self.n_trees, self.height, self.window_size, self.limits, self.seed, self._rng,
                self.counter, self.first_window, self.features, flat)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        version, n_trees, height, window_size, limits, seed, rng, counter, first_window, features, flat = state
        if version != _STATE_VERSION:
            raise ValueError(f"unsupported FlatHST state version {version}")
        self.__init__(n_trees, height, window_size, limits, seed)
        self._rng = rng
        self.counter = counter
        self.first_window = first_window
        if flat is not None:
            feat, thr, ls, rs = flat
            inner, leaves = (1 << height) - 1, 1 << height
            self._set_trees(features, _split(feat.tolist(), inner, n_trees), _split(thr.tolist(), inner, n_trees),
                            _split(ls.tolist(), leaves, n_trees), _split(rs.tolist(), leaves, n_trees))


# ---- helpers -----------------------------------------------------------------------------------------
def _getter(features: tuple[Hashable, ...]) -> Callable[[Mapping[Hashable, Any]], tuple[Any, ...]]:
    """``x -> tuple(x[f] for f in features)`` (KeyError if one is missing), as fast as it goes."""
    if len(features) > 1:
        return operator.itemgetter(*features)
    if len(features) == 1:
        only = features[0]
        return lambda x: (x[only],)
    return lambda x: ()


def _lookup(x: Mapping[Hashable, Any], feature: Hashable) -> Any:
    """``x[feature]``, or the missing marker where River's ``x[node.feature]`` raises KeyError."""
    try:
        return x[feature]
    except KeyError:
        return _MISSING


def _leaf_scores(r: list[int], height: int, limit: float) -> list[int]:
    """For each leaf, what River's score walk to it adds up: ``r_mass * 2**depth`` per node, root first,
    ending with the first node whose ``r_mass < limit`` (or with the leaf, which River adds untested).

    Only nodes down to an early stop are visited (a level's masses sum to the window size, so few of a
    level's nodes reach the limit); the leaves under a stopping node all get its score. A node's mass is a
    difference of prefix sums over the leaves, its leaves being a contiguous run.
    """
    prefix = [0, *accumulate(r)]
    out = [0] * len(r)
    stack = [(0, len(r), 0, 0)]  # (first leaf, end leaf, depth, score of the ancestors)
    while stack:
        lo, hi, depth, acc = stack.pop()
        mass = prefix[hi] - prefix[lo]
        acc += mass << depth
        if depth == height:
            out[lo] = acc
        elif mass < limit:
            out[lo:hi] = [acc] * (hi - lo)
        else:
            mid = (lo + hi) >> 1
            stack.append((lo, mid, depth + 1, acc))
            stack.append((mid, hi, depth + 1, acc))
    return out


def _heap_order(root: Any, height: int) -> tuple[list[Any], list[Any]]:
    """River tree nodes level by level, left to right: inner nodes, then leaves (heap order)."""
    inner: list[Any] = []
    level = [root]
    for _ in range(height):
        inner.extend(level)
        level = [child for node in level for child in node.children]
    return inner, level


def _check_masses(root: Any, height: int) -> None:
    """Every inner node's masses must be the sum of its children's (true of any River-trained tree), and
    the tree must be River's padded tree of that height (every leaf at the bottom level)."""
    inner, leaves = _heap_order(root, height)
    if not all(isinstance(leaf, PaddedLeaf) for leaf in leaves):
        raise ValueError(f"not a HalfSpaceTrees tree of height {height}")
    for node in inner:
        left, right = node.children
        if node.l_mass != left.l_mass + right.l_mass or node.r_mass != left.r_mass + right.r_mass:
            raise ValueError("HalfSpaceTrees node masses are not sums of their children's; cannot flatten")


def _heap_sums(leaves: list[int]) -> list[int]:
    """Masses of every node in heap order, from the leaves' masses."""
    levels = [leaves]
    while len(levels[0]) > 1:
        below = levels[0]
        levels.insert(0, [a + b for a, b in zip(below[0::2], below[1::2], strict=True)])
    return [m for level in levels for m in level]


def _concat(typecode: str, lists: list[list[Any]]) -> array:
    """The per-tree lists end to end in one typed array."""
    out = array(typecode)
    for values in lists:
        out.fromlist(values)
    return out


def _split(values: list[Any], size: int, n: int) -> list[list[Any]]:
    """``n`` consecutive runs of ``size`` values (the per-tree lists of a concatenated array)."""
    return [values[k * size:(k + 1) * size] for k in range(n)]


def _mass_typecode(window_size: int) -> str:
    """Smallest unsigned array type holding a mass (at most ``window_size``)."""
    for code in ("B", "H", "I", "L", "Q"):
        if window_size < 256 ** array(code).itemsize:
            return code
    raise ValueError(f"window_size {window_size} too large")


def _index_typecode(n_features: int) -> str:
    return _mass_typecode(max(n_features - 1, 0))
