"""Purchase-anomaly score: HalfSpaceTrees over spend velocity and utilisation jumps.

Why HalfSpaceTrees: it is an online, label-free detector with constant memory, so bust-out and
account-takeover patterns (a sudden burst far above the user's own baseline, a jump to full
utilisation) score high without waiting weeks for default labels. Inputs are squashed to [0, 1] as the
trees require. Scores are 0 during a warm-up so the first events of history do not alarm.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field

from river import anomaly

FORMAT = 1


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
    model: anomaly.HalfSpaceTrees = field(default=None)  # type: ignore[assignment]
    n_seen: int = 0

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = anomaly.HalfSpaceTrees(n_trees=15, height=8, window_size=250, seed=self.seed)

    def score_and_learn(self, features: dict[str, float]) -> float:
        """Anomaly score in [0, 1] for this purchase, then learn it."""
        x = anomaly_inputs(features)
        score = float(self.model.score_one(x))
        self.model.learn_one(x)
        self.n_seen += 1
        return score if self.n_seen > self.warmup else 0.0

    def to_bytes(self) -> bytes:
        """Checkpoint blob."""
        return pickle.dumps((FORMAT, self.warmup, self.seed, self.model, self.n_seen))

    @classmethod
    def from_bytes(cls, blob: bytes) -> PurchaseAnomaly:
        """Restore from :meth:`to_bytes`."""
        fmt, warmup, seed, model, n_seen = pickle.loads(blob)  # noqa: S301 - our own blob
        if fmt != FORMAT:
            raise ValueError(f"unsupported anomaly checkpoint format {fmt}")
        return cls(warmup=warmup, seed=seed, model=model, n_seen=n_seen)
