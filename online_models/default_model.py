"""The online default model: P(an installment of this account reaches 30 DPD), learnt on delayed labels.

A River pipeline (StandardScaler | LogisticRegression) learns only when a label resolves (paid, or 30
DPD reached), with the feature vector frozen at decision time. Until ``min_labels`` labels have been
learnt the scorecard prior carries the decision; the two are blended over the hand-over so decisions do
not jump. ``version`` changes with every checkpoint so each output can name the model that scored it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

from river import compose, linear_model, optim, preprocessing

from online_models.scorecard import scorecard_pd

FORMAT = 1


def _new_pipeline() -> compose.Pipeline:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.SGD(0.02), l2=1e-4, intercept_lr=0.02
    )


@dataclass
class DefaultModel:
    """Online logistic regression with a scorecard prior and a checkpoint format.

    >>> m = DefaultModel(min_labels=2)
    >>> p = m.predict_one({"utilisation": 0.9})
    >>> m.learn_one({"utilisation": 0.9}, True); m.learn_one({"utilisation": 0.1}, False)
    >>> m.n_labels, m.version
    (2, 'dm1-2')
    """

    min_labels: int = 300
    pipeline: compose.Pipeline = field(default_factory=_new_pipeline)
    n_labels: int = 0
    n_positive: int = 0

    @property
    def version(self) -> str:
        """Model version: format and number of labels learnt (moves with learning)."""
        return f"dm{FORMAT}-{self.n_labels}"

    @property
    def warm(self) -> bool:
        """True once the learned model carries the decision alone."""
        return self.n_labels >= self.min_labels and self.n_positive >= 10

    def model_pd(self, x: dict[str, float]) -> float:
        """The learned model's probability (meaningless while cold)."""
        return float(self.pipeline.predict_proba_one(x).get(True, 0.0))

    def predict_one(self, x: dict[str, float]) -> float:
        """Decision probability: scorecard while cold, blended during hand-over, model when warm."""
        prior = scorecard_pd(x)
        if self.n_labels == 0 or self.n_positive == 0:
            return prior
        w = min(1.0, self.n_labels / max(1, self.min_labels)) if not self.warm else 1.0
        return w * self.model_pd(x) + (1.0 - w) * prior

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        """Learn one resolved label (called only when the label is known in event time)."""
        self.pipeline.learn_one(x, bool(y))
        self.n_labels += 1
        self.n_positive += int(bool(y))

    def to_bytes(self) -> bytes:
        """Checkpoint (pickle: River models are plain Python objects; the blob stays in our Redis)."""
        return pickle.dumps((FORMAT, self.min_labels, self.pipeline, self.n_labels, self.n_positive))

    @classmethod
    def from_bytes(cls, blob: bytes) -> DefaultModel:
        """Restore a checkpoint written by :meth:`to_bytes`."""
        fmt, min_labels, pipeline, n_labels, n_positive = pickle.loads(blob)  # noqa: S301 - our own blob
        if fmt != FORMAT:
            raise ValueError(f"unsupported default-model checkpoint format {fmt}")
        return cls(min_labels=min_labels, pipeline=pipeline, n_labels=n_labels, n_positive=n_positive)
