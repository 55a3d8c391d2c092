"""A numpy path for the linear candidate: a scaler folded into a multinomial logistic model.

scikit-learn's ``Pipeline.predict_proba`` spends 0.4-0.6 ms per call on input validation and
dispatch, which is most of a linear model's cost on the serving hot path. For a
``StandardScaler -> LogisticRegression`` pipeline with a softmax over three or more classes the
same probabilities are ``softmax(x @ W.T + b)`` with the scaler folded into ``W`` and ``b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


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
