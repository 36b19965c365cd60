"""The merchant universe and what a basket costs: categories, channels, amounts, installment plans.

Why fixed per-merchant traits: the pipeline builds merchant and category features; they only carry
signal if a merchant keeps its category and mostly its channel across a run.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from itertools import accumulate

from riskmon.contract import CATEGORIES

# category: (weight in everyday baskets, median amount CNY, lognormal sigma)
CATEGORY_PROFILE: dict[str, tuple[float, float, float]] = {
    "groceries": (22, 90, 0.6),
    "fashion": (15, 300, 0.7),
    "digital": (14, 60, 0.9),
    "electronics": (10, 1800, 0.8),
    "home": (10, 500, 0.8),
    "beauty": (9, 200, 0.6),
    "travel": (6, 1200, 0.7),
    "education": (4, 1500, 0.6),
    "other": (10, 150, 0.9),
}
assert set(CATEGORY_PROFILE) == CATEGORIES

CHANNELS = ("app", "web", "pos")
_CHANNEL_CUM = list(accumulate((60, 25, 15)))
BURST_CATEGORIES = ("electronics", "travel", "digital", "electronics", "fashion")

# installment plan weights (1, 3, 6, 12, 24) by amount band (upper bound in fen)
PLANS = (1, 3, 6, 12, 24)
_PLAN_BANDS: tuple[tuple[int, tuple[float, ...]], ...] = (
    (200_00, (90, 10, 0, 0, 0)),
    (1000_00, (55, 25, 15, 5, 0)),
    (5000_00, (30, 25, 20, 18, 7)),
    (10**12, (15, 15, 25, 30, 15)),
)
_PLAN_CUM = tuple((hi, list(accumulate(w))) for hi, w in _PLAN_BANDS)


class Merchants:
    """A fixed population of merchants, each with one category and a main channel."""

    __slots__ = ("_cat_cum", "_cat_names", "by_category", "category", "channel", "ids")

    def __init__(self, seed: int, n: int = 5000) -> None:
        rng = random.Random(f"merchants:{seed}")
        self._cat_names = tuple(CATEGORY_PROFILE)
        self._cat_cum = list(accumulate(p[0] for p in CATEGORY_PROFILE.values()))
        self.ids = [f"m{i:05d}" for i in range(n)]
        self.category = [self.draw_category(rng) for _ in range(n)]
        self.channel = [CHANNELS[bisect_right(_CHANNEL_CUM, rng.random() * 100)] for _ in range(n)]
        self.by_category: dict[str, list[int]] = {c: [] for c in self._cat_names}
        for i, c in enumerate(self.category):
            self.by_category[c].append(i)

    def draw_category(self, rng: random.Random) -> str:
        """A category with everyday-basket weights."""
        return self._cat_names[bisect_right(self._cat_cum, rng.random() * self._cat_cum[-1])]

    def pool(self, rng: random.Random, size: int) -> list[int]:
        """A customer's usual merchants."""
        return [rng.randrange(len(self.ids)) for _ in range(size)]

    def in_category(self, rng: random.Random, category: str) -> int:
        """Any merchant of a category."""
        idx = self.by_category[category]
        return idx[int(rng.random() * len(idx))]

    def channel_of(self, rng: random.Random, merchant: int) -> str:
        """Mostly the merchant's main channel, sometimes another one."""
        if rng.random() < 0.8:
            return self.channel[merchant]
        return CHANNELS[bisect_right(_CHANNEL_CUM, rng.random() * 100)]


def basket_fen(rng: random.Random, category: str, scale: float) -> int:
    """A purchase amount in fen for a category (lognormal; ``scale`` reflects the customer's means)."""
    _, median, sigma = CATEGORY_PROFILE[category]
    cny = median * scale * math.exp(rng.gauss(0.0, sigma))
    return max(100, min(int(cny * 100), 50_000_00))


def plan_for(rng: random.Random, amount_fen: int) -> int:
    """Number of installments, with realistic weights that grow with the amount."""
    for hi, cum in _PLAN_CUM:
        if amount_fen <= hi:
            return PLANS[bisect_right(cum, rng.random() * cum[-1])]
    return 1  # pragma: no cover - last band is unbounded
