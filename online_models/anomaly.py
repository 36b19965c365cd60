"""Purchase-anomaly score: HalfSpaceTrees over spend velocity and utilisation jumps.

Why HalfSpaceTrees: it is an online, label-free detector with constant memory, so bust-out and
account-takeover patterns (a sudden burst far above the user's own baseline, a jump to full
utilisation) score high without waiting weeks for default labels. Inputs are squashed to [0, 1] as the
trees require. Scores are 0 during a warm-up so the first events of history do not alarm.

The trees are River's HalfSpaceTrees run on flat lists (:mod:`online_models.flat_hst`: the same scores
for ~2.5x less CPU per purchase; the checkpoint 298 KB -> 82 KB). Checkpoint format 4 holds that; format
3 (a pickled River model) is still read and converted, and the detector continues exactly as River would.
"""

from __future__ import annotations

import bisect
import math
import pickle
from array import array
from collections import deque
from dataclasses import dataclass, field

from river import anomaly

from online_models.flat_hst import FlatHST

FORMAT = 4
RIVER_FORMAT = 3  # the checkpoint before FlatHST: a pickled river.anomaly.HalfSpaceTrees


def _squash(v: float, scale: float) -> float:
    return 1.0 - math.exp(-max(0.0, v) / scale)


def anomaly_inputs(f: dict[str, float]) -> dict[str, float]:
    """The detector's inputs, each in [0, 1]."""
    return {
        "velocity": _squash(f.get("velocity_24h", 0.0), 5.0),
        "util": min(1.0, max(0.0, f.get("utilisation", 0.0))),
        "util_jump": min(1.0, max(0.0, f.get("util_jump", 0.0))),
        "amount_to_limit": min(1.0, max(0.0, f.get("amount_to_limit", 0.0))),
        "count_24h": _squash(f.get("count_24h", 0.0), 4.0),
        "new_merchants_24h": _squash(f.get("new_merchants_24h", 0.0), 2.0),
        "spend_24h_to_limit": min(1.0, max(0.0, f.get("spend_24h", 0.0) / max(f.get("limit", 1.0), 1.0))),
    }


@dataclass
class PurchaseAnomaly:
    """Score-then-learn anomaly detector.

    >>> det = PurchaseAnomaly(warmup=0, seed=1)
    >>> 0.0 <= det.score_and_learn({"velocity_24h": 1.0, "utilisation": 0.2}) <= 1.0
    True
    """

    warmup: int = 500
    seed: int = 42
    model: FlatHST = field(default=None)  # type: ignore[assignment]
    n_seen: int = 0
    reference: int = 5000  # recent raw scores the percentile is taken against

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = FlatHST(n_trees=15, height=8, window_size=250, seed=self.seed)
        elif isinstance(self.model, anomaly.HalfSpaceTrees):  # a River model (format 3) goes on flat
            self.model = FlatHST.from_river(self.model)
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []

    def score_and_learn(self, features: dict[str, float]) -> float:
        """Anomaly score in [0, 1] for this purchase (its percentile among recent purchases), then learn it.

        HalfSpaceTrees' raw score is badly spread on this data (median ~0.8), so thresholds on it fire on a
        large share of ordinary purchases. The percentile of the raw score among the last ``reference``
        purchases is what the policy thresholds mean: 0.995 = rarer than 199 in 200 recent purchases.
        """
        x = anomaly_inputs(features)
        raw = self.model.score_then_learn(x)  # River's score_one + learn_one
        self.n_seen += 1
        pct = bisect.bisect_left(self._sorted, raw) / len(self._sorted) if self._sorted else 0.0
        bisect.insort(self._sorted, raw)
        self._recent.append(raw)
        if len(self._recent) > self.reference:
            old = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        return pct if self.n_seen > self.warmup else 0.0

    def to_bytes(self) -> bytes:
        """Checkpoint blob (format 4: the FlatHST's arrays, the recent raw scores as doubles).

        The model is pickled inside as bytes, so the outer tuple needs nothing but ``array`` to load: a
        build that predates FlatHST reads the format number, raises ValueError and starts afresh (as the
        worker's model restore expects) instead of failing to import ``online_models.flat_hst``.
        """
        model = pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL)
        recent = array("d", self._recent)
        return pickle.dumps((FORMAT, self.warmup, self.seed, model, self.n_seen, recent),
                            protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes) -> PurchaseAnomaly:
        """Restore from :meth:`to_bytes`, or from a format-3 blob (River model, converted on load)."""
        fmt, warmup, seed, model, n_seen, recent = pickle.loads(blob)  # noqa: S301 - our own blob
        if fmt == FORMAT:
            model = pickle.loads(model)  # noqa: S301 - our own blob
        elif fmt != RIVER_FORMAT:
            raise ValueError(f"unsupported anomaly checkpoint format {fmt}")
        recent = list(recent)
        det = cls(warmup=warmup, seed=seed, model=model, n_seen=n_seen)
        det._recent = deque(recent)
        det._sorted = sorted(recent)
        return det
