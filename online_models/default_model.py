"""The online default model: P(an installment of this account reaches 30 DPD), learnt on delayed labels.

Two scorers see every purchase:

- the **scorecard** (``online_models/scorecard.py``): a logistic points table fitted on a previous book
  (``riskmon fit-scorecard``), transparent, right from the first event;
- the **learned model**: a River ``StandardScaler | LogisticRegression`` over fixed feature transforms
  (:func:`model_features`), learning only when a label resolves, with the feature vector frozen at
  decision time.

Which of the two carries decisions is decided the way a risk team promotes a challenger: on the labels
that resolved most recently, both predictions (made at decision time, before the label was known) are
compared by exact AUC; the learned model takes over when it ranks better by a margin, and hands back if
it falls behind by the same margin (hysteresis, so decisions do not flap). Measured on the simulator, a
learned model trained on the first cohort's labels ranks the next cohort worse than the scorecard
(its positives are a different mix: bust-outs appear, subprime customers start stopping), so a count of
labels alone is the wrong hand-over rule (docs/model.md).

``version`` moves with every label learnt so each output names the model state that scored it.
"""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import dataclass, field

from river import compose, linear_model, optim, preprocessing

from online_models.metrics import exact_auc
from online_models.model_features import EXCLUDED, model_features
from online_models.scorecard import Scorecard, load_scorecard

__all__ = ["EXCLUDED", "ChampionGate", "DefaultModel", "model_features"]

FORMAT = 2

def _new_pipeline() -> compose.Pipeline:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.SGD(0.02), l2=1e-4, intercept_lr=0.02
    )


@dataclass
class ChampionGate:
    """Decides whether the learned model (challenger) or the scorecard (champion) carries decisions.

    Keeps the last ``window`` resolved labels with both decision-time predictions and re-compares their
    exact AUCs every ``every`` labels, once the window holds ``min_labels`` labels and ``min_positive``
    positives.
    """

    window: int = 2000
    min_labels: int = 1000
    min_positive: int = 30
    margin: float = 0.005
    every: int = 250
    recent: deque[tuple[float, float, bool]] = field(default_factory=deque)
    model_carries: bool = False
    since_check: int = 0
    last_auc: tuple[float, float] | None = None  # (scorecard, model) at the last comparison

    def observe(self, p_scorecard: float, p_model: float, y: bool) -> None:
        """Record one resolved label's two decision-time predictions; re-compare every ``every``."""
        self.recent.append((p_scorecard, p_model, bool(y)))
        if len(self.recent) > self.window:
            self.recent.popleft()
        self.since_check += 1
        if self.since_check >= self.every:
            self.since_check = 0
            self._compare()

    def _compare(self) -> None:
        ys = [r[2] for r in self.recent]
        pos = sum(ys)
        if len(ys) < self.min_labels or pos < self.min_positive or pos == len(ys):
            return
        a_sc = exact_auc([r[0] for r in self.recent], ys)
        a_m = exact_auc([r[1] for r in self.recent], ys)
        self.last_auc = (a_sc, a_m)
        self.model_carries = a_m > a_sc + self.margin if not self.model_carries else a_m >= a_sc - self.margin


@dataclass
class DefaultModel:
    """Scorecard prior, online logistic regression, champion/challenger hand-over and a checkpoint format.

    >>> m = DefaultModel()
    >>> 0.0 < m.predict_one({"bureau_score": 1.0}) < 0.1
    True
    >>> m.learn_one({"utilisation": 0.9}, True, p_model=0.5); m.learn_one({"utilisation": 0.1}, False, p_model=0.5)
    >>> m.n_labels, m.version, m.warm
    (2, 'dm2-2', False)
    """

    pipeline: compose.Pipeline = field(default_factory=_new_pipeline)
    gate: ChampionGate = field(default_factory=ChampionGate)
    n_labels: int = 0
    n_positive: int = 0
    scorecard: Scorecard = field(default_factory=load_scorecard)  # configuration, not checkpointed

    @classmethod
    def for_settings(cls, min_labels: int, scorecard: Scorecard | None = None) -> DefaultModel:
        """A fresh model whose gate needs ``min_labels`` resolved labels (``RISKMON_MIN_LABELS_FOR_MODEL``),
        with ``scorecard`` as its prior (default: the shipped ``riskmon/policies/scorecard.json``)."""
        return cls(gate=ChampionGate(window=max(2000, min_labels), min_labels=min_labels),
                   scorecard=scorecard or load_scorecard())

    @property
    def version(self) -> str:
        """Model version: format and number of labels learnt (moves with learning)."""
        return f"dm{FORMAT}-{self.n_labels}"

    @property
    def warm(self) -> bool:
        """True while the learned model carries decisions (it beat the scorecard on recent labels)."""
        return self.gate.model_carries

    def model_pd(self, x: dict[str, float]) -> float:
        """The learned model's probability (plain logistic loss: both classes resolve at one horizon, so
        the label stream has the true class balance and probabilities stay calibrated)."""
        return self.score(x)[1]

    def score(self, x: dict[str, float]) -> tuple[float, float]:
        """(decision probability, learned model's probability), each computed once.

        The learned model's is needed even while the scorecard decides: the gate compares both.
        """
        f = model_features(x)
        if self.n_labels == 0:
            p = self.scorecard.pd_of_features(f)
            return p, p
        pm = float(self.pipeline.predict_proba_one(f).get(True, 0.0))
        return (pm if self.warm else self.scorecard.pd_of_features(f)), pm

    def predict_one(self, x: dict[str, float]) -> float:
        """Decision probability: the learned model when it carries, else the scorecard."""
        return self.score(x)[0]

    def learn_one(self, x: dict[str, float], y: bool, p_model: float | None = None) -> None:
        """Learn one resolved label (called only when the label is known in event time).

        ``p_model`` is the learned model's prediction made at decision time (kept with the label); with
        the scorecard's, recomputed from the frozen features, it feeds the champion/challenger gate.
        """
        f = model_features(x)
        if p_model is not None:
            self.gate.observe(self.scorecard.pd_of_features(f), p_model, y)
        self.n_labels += 1
        self.n_positive += int(bool(y))
        self.pipeline.learn_one(f, bool(y))

    def to_bytes(self) -> bytes:
        """Checkpoint (pickle: River models are plain Python objects; the blob stays in our Redis)."""
        return pickle.dumps((FORMAT, self.pipeline, self.gate, self.n_labels, self.n_positive))

    @classmethod
    def from_bytes(cls, blob: bytes, scorecard: Scorecard | None = None) -> DefaultModel:
        """Restore a checkpoint written by :meth:`to_bytes`; the scorecard is configuration, so it comes
        from the caller (default: the shipped one), never from the checkpoint."""
        parts = pickle.loads(blob)  # noqa: S301 - our own checkpoint in our own Redis
        if parts[0] != FORMAT:
            raise ValueError(f"unsupported default-model checkpoint format {parts[0]} (this build reads {FORMAT})")
        _, pipeline, gate, n_labels, n_positive = parts
        return cls(pipeline=pipeline, gate=gate, n_labels=n_labels, n_positive=n_positive,
                   scorecard=scorecard or load_scorecard())
