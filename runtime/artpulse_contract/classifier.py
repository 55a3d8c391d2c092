"""The model ArtPulse logs to MLflow: a scikit-learn estimator behind a pyfunc that returns
labels and class probabilities in the contract's label order.

The estimator is fitted on class indices (positions in ``LABELS``). A training set may lack
some labels; their probability columns are then zero.

The linear candidate gets a numpy path: scikit-learn's ``Pipeline.predict_proba`` spends
0.4-0.6 ms per call on input validation and dispatch, most of a linear model's cost on the
serving hot path. For a ``StandardScaler -> LogisticRegression`` pipeline with a softmax over
three or more classes the same probabilities are ``softmax(x @ W.T + b)`` with the scaler
folded into ``W`` and ``b`` (``LinearSoftmax``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from artpulse_contract.constants import FEATURE_NAMES, LABELS, PROBABILITY_COLUMN_PREFIX

PROBABILITY_COLUMNS = tuple(f"{PROBABILITY_COLUMN_PREFIX}{label}" for label in LABELS)


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


def as_feature_matrix(rows: Any) -> np.ndarray:
    """Turn a DataFrame (contract column names) or array-like of shape (N, 5) into float32."""
    if isinstance(rows, pd.DataFrame):
        missing = [name for name in FEATURE_NAMES if name not in rows.columns]
        if missing:
            raise ValueError(f"feature rows lack columns {missing}; expected {list(FEATURE_NAMES)}")
        rows = rows[list(FEATURE_NAMES)].to_numpy()
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"feature rows have shape {matrix.shape}; expected (N, {len(FEATURE_NAMES)})"
        )
    return matrix


class ArtPulseClassifier(PythonModel):
    """Pyfunc wrapper: feature rows in, a label and one probability per label out."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self._linear: LinearSoftmax | None = linear_softmax_of(estimator)

    def __getstate__(self) -> dict[str, Any]:
        # Only the estimator is stored; the numpy path is derived again when loaded.
        return {"estimator": self.estimator}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.estimator = state["estimator"]
        self._linear = linear_softmax_of(self.estimator)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, 5), columns in ``LABELS`` order."""
        linear = self._linear
        raw = linear.predict_proba(features) if linear else self.estimator.predict_proba(features)
        probabilities = np.zeros((features.shape[0], len(LABELS)), dtype=np.float32)
        probabilities[:, np.asarray(self.estimator.classes_, dtype=np.int64)] = raw
        return probabilities

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predict a ``label`` column and ``proba_<label>`` columns for each feature row.

        The labels are an ``object`` column: pandas 3 would infer its ``str`` dtype, which
        stock MLServer (``mlserver_mlflow.MLflowRuntime``) cannot encode in a V2 response.
        """
        probabilities = self.predict_proba(as_feature_matrix(model_input))
        frame = pd.DataFrame(probabilities.astype(np.float64), columns=list(PROBABILITY_COLUMNS))
        labels = [LABELS[i] for i in probabilities.argmax(axis=1)]
        frame.insert(0, "label", pd.Series(labels, dtype=object))
        return frame
