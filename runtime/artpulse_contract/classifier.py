"""The model ArtPulse logs to MLflow: a scikit-learn estimator behind a pyfunc that returns
labels and class probabilities in the contract's label order.

The pyfunc scores through the estimator's ``Scorer`` (``artpulse_contract.scoring``: the
numpy path of a linear model, the label order) and records the ``FeatureMode`` its features
were computed in; a model pickled before the record existed is ``EXACT``. Pickles hold the
estimator and the mode; the scorer is derived again when loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from artpulse_contract.constants import (
    FEATURE_NAMES,
    LABELS,
    PROBABILITY_COLUMN_PREFIX,
    FeatureMode,
)
from artpulse_contract.scoring import Scorer

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

    def __init__(self, estimator: Any, feature_mode: FeatureMode = FeatureMode.EXACT) -> None:
        """Wrap ``estimator``, fitted on features computed in ``feature_mode``."""
        self.estimator = estimator
        self.scorer = Scorer.of(estimator, feature_mode)

    @property
    def feature_mode(self) -> FeatureMode:
        """How the estimator's features were computed from images."""
        return self.scorer.feature_mode

    def __getstate__(self) -> dict[str, Any]:
        # The estimator and the mode are stored; the scorer is derived again when loaded.
        return {"estimator": self.estimator, "feature_mode": self.feature_mode.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.estimator = state["estimator"]
        self.scorer = Scorer.of(self.estimator, state.get("feature_mode", FeatureMode.EXACT))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, 5), columns in ``LABELS`` order."""
        return self.scorer.predict_proba(features)

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
