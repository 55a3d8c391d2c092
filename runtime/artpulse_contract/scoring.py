"""What serving needs of a trained model: its feature mode and class probabilities in label order.

A ``Scorer`` is the estimator reduced to its serving path, without MLflow or pandas, so a
server can load it without importing either (see ``artpulse_runtime.loading``). Training
stores one next to the estimator of every version (``SCORER_ARTIFACT``, an ``.npz`` of plain
arrays read with ``allow_pickle=False``); the pyfunc (``artpulse_contract.classifier``) scores
through the same object.

The estimator is fitted on class indices (positions in ``LABELS``). A training set may lack
some labels; their probability columns are then zero.

The linear candidate gets a numpy path: scikit-learn's ``Pipeline.predict_proba`` spends
0.4-0.6 ms per call on input validation and dispatch, most of a linear model's cost on the
serving hot path. For a ``StandardScaler -> LogisticRegression`` pipeline with a softmax over
three or more classes the same probabilities are ``softmax(x @ W.T + b)`` with the scaler
folded into ``W`` and ``b`` (``LinearSoftmax``); its scorer file holds those arrays, so
loading it imports neither skops nor scikit-learn. Other estimators load from their skops
file (``estimator_store``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artpulse_contract.constants import LABELS, FeatureMode
from artpulse_contract.estimator_store import load_estimator

SCORER_ARTIFACT = "scorer"
"""The logged model's artifact holding its ``Scorer`` (``scorer.npz``). Versions logged
before it existed have none: they are ``EXACT`` and score through their estimator."""


@dataclass(frozen=True)
class LinearSoftmax:
    """Class probabilities as ``softmax(features @ weights.T + intercept)``."""

    weights: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) in the estimator's ``classes_`` order, float64."""
        logits = np.asarray(features, dtype=np.float64) @ self.weights.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits


def linear_softmax_of(estimator: Any) -> LinearSoftmax | None:
    """The folded form of a scaler + multinomial logistic pipeline, or None for anything else."""
    # Imported here: an estimator to fold has already imported scikit-learn.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        return None
    scaler, model = estimator.steps[0][1], estimator.steps[1][1]
    if not isinstance(scaler, StandardScaler) or not isinstance(model, LogisticRegression):
        return None
    coef = np.asarray(model.coef_, dtype=np.float64)
    if len(model.classes_) < 3 or coef.shape[0] != len(model.classes_):
        return None  # binary models use a sigmoid, not a softmax
    mean = scaler.mean_ if scaler.with_mean else np.zeros(coef.shape[1])
    scale = scaler.scale_ if scaler.with_std else np.ones(coef.shape[1])
    weights = coef / np.asarray(scale, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64) - weights @ np.asarray(mean)
    return LinearSoftmax(weights=weights, intercept=intercept)


@dataclass(frozen=True)
class Scorer:
    """Feature rows -> class probabilities (N, 5) in ``LABELS`` order, and the feature mode.

    Either ``linear`` (the folded numpy path) or ``estimator`` computes the probabilities.
    """

    classes: np.ndarray
    """The estimator's ``classes_``: label indices, in the order of its probability columns."""
    feature_mode: FeatureMode
    """How the features the estimator was fitted on were computed from images."""
    linear: LinearSoftmax | None = None
    estimator: Any = None

    @classmethod
    def of(cls, estimator: Any, feature_mode: FeatureMode = FeatureMode.EXACT) -> Scorer:
        """The scorer of a fitted estimator: its numpy path when it has one, else itself."""
        linear = linear_softmax_of(estimator)
        return cls(
            classes=np.asarray(estimator.classes_, dtype=np.int64),
            feature_mode=FeatureMode(feature_mode),
            linear=linear,
            estimator=None if linear is not None else estimator,
        )

    @property
    def family(self) -> str:
        """What computes the probabilities (``LinearSoftmax`` or the estimator's class name)."""
        return type(self.linear if self.linear is not None else self.estimator).__name__

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, 5) float32, columns in ``LABELS`` order."""
        linear = self.linear
        raw = linear.predict_proba(features) if linear else self.estimator.predict_proba(features)
        probabilities = np.zeros((features.shape[0], len(LABELS)), dtype=np.float32)
        probabilities[:, self.classes] = raw
        return probabilities

    def save(self, path: Path) -> Path:
        """Write the scorer's arrays and mode to ``path`` (an ``.npz``; the estimator of a
        non-linear scorer is stored on its own, with skops)."""
        arrays: dict[str, Any] = {
            "classes": self.classes,
            "feature_mode": np.array(self.feature_mode.value),
        }
        if self.linear is not None:
            arrays |= {"weights": self.linear.weights, "intercept": self.linear.intercept}
        with path.open("wb") as file:
            np.savez(file, **arrays)
        return path


def load_scorer(estimator_file: Path, scorer_file: Path | None) -> Scorer:
    """The scorer stored in ``scorer_file`` (its estimator, when it is not linear, read from
    ``estimator_file``), or, without a scorer file, the ``EXACT`` scorer of the estimator.

    Raises ``ValueError`` for a scorer file that is not one (``UntrustedEstimatorError``, a
    ``ValueError``, for an estimator file holding types outside the allow-list).
    """
    if scorer_file is None:
        return Scorer.of(load_estimator(estimator_file))
    with np.load(scorer_file, allow_pickle=False) as stored:
        names = set(stored.files)
        if not {"classes", "feature_mode"} <= names:
            raise ValueError(f"{scorer_file} lacks 'classes' or 'feature_mode': not a scorer")
        classes = np.asarray(stored["classes"], dtype=np.int64)
        mode = FeatureMode(str(stored["feature_mode"]))
        if "weights" in names:
            linear = LinearSoftmax(stored["weights"], stored["intercept"])
            return Scorer(classes=classes, feature_mode=mode, linear=linear)
    return Scorer(classes=classes, feature_mode=mode, estimator=load_estimator(estimator_file))
