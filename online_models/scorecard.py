"""The scorecard prior: what decides while the online model has not proved itself on recent labels.

Why a fitted scorecard: a River model fresh from the start of history knows nothing, and a hand-set score
ranked the first months of a new book at 0.66-0.74 AUC where a model fitted with hindsight reached
0.75-0.80 (docs/model.md). A lender's application scorecard is developed on the outcomes of earlier
vintages; so is this one: ``riskmon fit-scorecard`` replays a previous book through the same engine,
takes every resolved label with the features frozen at its decision, and fits a regularised logistic
regression over :func:`online_models.model_features.model_features`. The result is a points table (one
weight per named, bounded feature, plus an intercept) in ``riskmon/policies/scorecard.json``: a credit
officer can read it, and a risk team can refit or edit it without a code change
(``RISKMON_SCORECARD_FILE``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from operator import mul
from pathlib import Path
from typing import Any

import riskmon
from online_models.model_features import model_features

FORMAT = 1
# located through the riskmon package, not this file: compiled (riskmon.accel), this module lives in the build
SHIPPED = Path(riskmon.__file__).resolve().parent / "policies" / "scorecard.json"


@dataclass(frozen=True)
class Scorecard:
    """A logistic points table over the model features: ``pd = sigmoid(intercept + sum w_k * f_k(x))``.

    >>> sc = Scorecard(intercept=-4.0, weights={"dpd_now": 3.0})
    >>> round(sc.pd({"dpd_now": 30.0}), 4), round(sc.pd({}), 4)
    (0.2689, 0.018)
    """

    intercept: float
    weights: dict[str, float]
    fitted: dict[str, Any] = field(default_factory=dict)  # provenance: source, labels, AUC, command

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(model_features({})))
        if unknown:
            raise ValueError(f"scorecard weights name unknown features {unknown}; known: "
                             f"{sorted(model_features({}))}")
        # the weights as two tuples, for a dot product without a generator (a scorecard is never mutated)
        object.__setattr__(self, "_names", tuple(self.weights))
        object.__setattr__(self, "_ws", tuple(self.weights.values()))
        object.__setattr__(self, "_zeros", (0.0,) * len(self.weights))

    def logit(self, f: dict[str, float]) -> float:
        """Score of already-transformed features (``model_features(x)``), clipped to +-30."""
        z = self.intercept + sum(map(mul, self._ws, map(f.get, self._names, self._zeros)))  # same order, same sum
        return max(-30.0, min(30.0, z))

    def pd_of_features(self, f: dict[str, float]) -> float:
        """Default probability of already-transformed features (saves a second transform per purchase)."""
        return 1.0 / (1.0 + math.exp(-self.logit(f)))

    def pd(self, x: dict[str, float]) -> float:
        """Default probability of raw decision-time features."""
        return self.pd_of_features(model_features(x))

    def to_json(self) -> str:
        """The file format of ``riskmon/policies/scorecard.json``."""
        return json.dumps({"format": FORMAT, "intercept": round(self.intercept, 4),
                           "weights": {k: round(v, 4) for k, v in sorted(self.weights.items())},
                           "fitted": self.fitted}, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> Scorecard:
        """Read a scorecard file; a clear error names the file when it is malformed."""
        try:
            doc = json.loads(Path(path).read_text())
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, this build reads {FORMAT}")
            return cls(intercept=float(doc["intercept"]),
                       weights={str(k): float(v) for k, v in doc["weights"].items()},
                       fitted=dict(doc.get("fitted") or {}))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"cannot read scorecard {path}: {exc}") from exc


@lru_cache(maxsize=8)
def load_scorecard(path: Path = SHIPPED) -> Scorecard:
    """The scorecard at ``path`` (cached: every worker and replay reads it once)."""
    return Scorecard.load(path)

