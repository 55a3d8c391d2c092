"""The model ArtPulse logs to MLflow: a scikit-learn estimator behind a pyfunc that returns
labels and class probabilities in the contract's label order.

The estimator is fitted on class indices (positions in ``LABELS``). A training set may lack
some labels; their probability columns are then zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from artpulse_contract.constants import FEATURE_NAMES, LABELS, PROBABILITY_COLUMN_PREFIX
from artpulse_contract.linear_path import LinearSoftmax, linear_softmax_of

PROBABILITY_COLUMNS = tuple(f"{PROBABILITY_COLUMN_PREFIX}{label}" for label in LABELS)


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
