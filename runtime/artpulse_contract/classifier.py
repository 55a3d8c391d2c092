"""The model ArtPulse logs to MLflow: a scikit-learn estimator behind a pyfunc that returns
labels and class probabilities in the contract's label order.

The pyfunc scores through the estimator's ``Scorer`` (``artpulse_contract.scoring``: the
numpy path of a linear model, the label order) and records the ``FeatureMode`` its features
were computed in.

Nothing is pickled: the estimator is stored with skops under an allow-list
(``artpulse_contract.estimator_store``), the scorer as plain arrays, and the pyfunc itself is
logged as code (MLflow's models-from-code, ``artpulse_contract.pyfunc_model``), loading both
in ``load_context``. Versions logged before (cloudpickle, or skops without a scorer) still
load, as ``EXACT``.
"""

from __future__ import annotations

from pathlib import Path
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
from artpulse_contract.estimator_store import ESTIMATOR_ARTIFACT
from artpulse_contract.scoring import SCORER_ARTIFACT, Scorer, load_scorer

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
    """Pyfunc wrapper: feature rows in, a label and one probability per label out.

    Made with the fitted estimator and its feature mode (training), or without them and given
    its scorer by MLflow's ``load_context`` from the model's artifacts (a logged model being
    loaded).
    """

    def __init__(self, estimator: Any = None, feature_mode: FeatureMode = FeatureMode.EXACT):
        """Wrap ``estimator``, fitted on features computed in ``feature_mode`` (or nothing yet,
        for a logged model's ``load_context`` to fill)."""
        self.estimator = estimator
        self.scorer: Scorer | None = (
            None if estimator is None else Scorer.of(estimator, feature_mode)
        )

    def load_context(self, context: Any) -> None:
        """Load the scorer from the model's artifacts (models logged as code)."""
        if self.scorer is None:
            artifacts = context.artifacts
            scorer_file = artifacts.get(SCORER_ARTIFACT)
            self.scorer = load_scorer(
                Path(artifacts[ESTIMATOR_ARTIFACT]), Path(scorer_file) if scorer_file else None
            )
            self.estimator = self.scorer.estimator  # None for a linear scorer: not needed

    def __getstate__(self) -> dict[str, Any]:
        # The form versions logged before skops were pickled in: the estimator only.
        return {"estimator": self.estimator}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Those versions predate feature modes: EXACT.
        self.estimator = state["estimator"]
        self.scorer = Scorer.of(self.estimator)

    @property
    def feature_mode(self) -> FeatureMode:
        """How the estimator's features were computed from images."""
        return self.loaded_scorer.feature_mode

    @property
    def loaded_scorer(self) -> Scorer:
        """The scorer (``RuntimeError`` before ``load_context`` has loaded it)."""
        if self.scorer is None:
            raise RuntimeError("the classifier has no estimator yet (load_context loads it)")
        return self.scorer

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, 5), columns in ``LABELS`` order."""
        return self.loaded_scorer.predict_proba(features)

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
