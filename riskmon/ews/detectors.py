"""River detectors: Page-Hinkley drift per metric and a HalfSpaceTrees anomaly score per enterprise.

Why these two: Page-Hinkley accumulates small persistent deviations, so it catches a gradual erosion
(a decline of 1% a day) long before any "down 30%" covenant does, and it runs in O(1) memory. The
covenants are per metric; HalfSpaceTrees looks at the joint daily change of all metrics and flags a day
whose combination is unlike the enterprise's own history (e.g. cash falling while revenue holds).

Both see normalised inputs: each metric is divided by its own warm-up level and noise, so one set of
thresholds (in units of the enterprise's own noise) fits a kiosk and a factory alike. Neither may alert
before its warm-up is complete.

The HalfSpaceTrees is River's, run on flat lists (:class:`online_models.flat_hst.FlatHST`, identical
scores): River's node objects were most of an enterprise state's pickle. A state pickled with a River
forest (before FlatHST) is converted when it is unpickled and continues exactly as River would.
"""

from __future__ import annotations

import math
from typing import Any

from river import anomaly, drift

from online_models.flat_hst import FlatHST


class MetricDrift:
    """Page-Hinkley on ``(value / warm-up level - 1) / warm-up noise`` in the adverse direction."""

    __slots__ = ("delta", "detector", "direction", "min_sigma", "ref", "sigma", "threshold", "warmup",
                 "warmup_days")

    def __init__(self, direction: str, warmup_days: int, delta: float, threshold: float,
                 min_sigma: float) -> None:
        if direction not in ("up", "down"):
            raise ValueError(direction)
        self.direction = direction
        self.warmup_days = warmup_days
        self.delta = delta
        self.threshold = threshold
        self.min_sigma = min_sigma
        self.warmup: list[float] = []
        self.ref: float | None = None
        self.sigma: float | None = None
        self.detector: drift.PageHinkley | None = None

    @property
    def ready(self) -> bool:
        """True once the warm-up is over and the detector may alert."""
        return self.detector is not None

    def update(self, value: float) -> bool:
        """Feed one day's (deseasonalised) value; True when an adverse drift is detected now."""
        if value != value:
            return False
        if self.detector is None:
            self.warmup.append(value)
            if len(self.warmup) >= self.warmup_days:
                self._start()
            return False
        x = (value / self.ref - 1.0) / self.sigma
        x = max(-50.0, min(50.0, x))
        self.detector.update(x)
        return bool(self.detector.drift_detected)

    def _start(self) -> None:
        vals = self.warmup
        mean = sum(vals) / len(vals)
        if abs(mean) < 1e-9:
            mean = 1e-9
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / max(len(vals) - 1, 1))
        # Autocorrelated noise (receivables days wander for weeks) makes cumulative sums grow faster
        # than white noise of the same spread: inflate sigma by the AR(1) long-run factor.
        lag = sum((a - mean) * (b - mean) for a, b in zip(vals, vals[1:], strict=False))
        r = lag / (sd * sd * (len(vals) - 1)) if sd > 0 else 0.0
        r = min(max(r, 0.0), 0.8)
        self.ref = mean
        self.sigma = max(sd / abs(mean) * math.sqrt((1 + r) / (1 - r)), self.min_sigma)
        self.detector = drift.PageHinkley(
            min_instances=7, delta=self.delta, threshold=self.threshold, alpha=1.0, mode=self.direction
        )
        self.warmup = []


class ChangeAnomaly:
    """HalfSpaceTrees over the day's normalised changes of all metrics (score 0..1, high = unusual)."""

    __slots__ = ("days", "features", "forest", "m2", "means", "n", "sigma", "warmup_days")

    def __init__(self, features: tuple[str, ...], warmup_days: int, trees: int, height: int, window: int,
                 seed: int) -> None:
        self.features = features
        self.warmup_days = warmup_days
        self.days = 0
        self.n = 0
        self.means = dict.fromkeys(features, 0.0)
        self.m2 = dict.fromkeys(features, 0.0)
        self.sigma: dict[str, float] | None = None
        self.forest = FlatHST(
            n_trees=trees, height=height, window_size=window, limits={f: (0.0, 1.0) for f in features},
            seed=seed,
        )

    def __setstate__(self, state: tuple[Any, dict[str, Any]]) -> None:
        """Unpickle (slots), turning a River forest of a state written before FlatHST into a FlatHST."""
        _, slots = state
        for name, value in slots.items():
            setattr(self, name, value)
        if isinstance(self.forest, anomaly.HalfSpaceTrees):
            self.forest = FlatHST.from_river(self.forest)

    @property
    def ready(self) -> bool:
        """True once the anomaly score may alert."""
        return self.sigma is not None and self.days >= self.warmup_days

    def observe(self, changes: dict[str, float]) -> float | None:
        """Learn one day's changes; returns the anomaly score when warmed up, else None."""
        if any(changes.get(f) is None or changes[f] != changes[f] for f in self.features):
            return None
        self.days += 1
        if self.sigma is None:
            self.n += 1
            for f in self.features:
                d = changes[f] - self.means[f]
                self.means[f] += d / self.n
                self.m2[f] += d * (changes[f] - self.means[f])
            if self.n >= max(self.warmup_days // 2, 7):
                self.sigma = {f: max(math.sqrt(self.m2[f] / (self.n - 1)), 1e-3) for f in self.features}
            return None
        x = {f: 0.5 + 0.5 * math.tanh((changes[f] - self.means[f]) / (3.0 * self.sigma[f]))
             for f in self.features}
        score = self.forest.score_then_learn(x)
        return score if self.ready else None
