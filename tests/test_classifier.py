"""The logged pyfunc model: probabilities in label order, and the linear numpy path agreeing
with scikit-learn."""

from __future__ import annotations

import pickle

import cloudpickle
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from artpulse_contract.classifier import PROBABILITY_COLUMNS, ArtPulseClassifier, linear_softmax_of
from artpulse_contract.constants import FEATURE_NAMES, LABELS


def training_rows(classes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(classes, 40)
    centres = rng.random((max(classes) + 1, len(FEATURE_NAMES)))
    rows = centres[labels] + rng.normal(0, 0.08, (labels.size, len(FEATURE_NAMES)))
    return rows.astype(np.float32), labels


def logistic(classes: list[int]) -> object:
    rows, labels = training_rows(classes)
    return make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=1000)).fit(
        rows, labels
    )


@pytest.mark.parametrize("classes", [[0, 1, 2, 3, 4], [1, 3, 4]])
def test_linear_path_matches_scikit_learn(classes: list[int]) -> None:
    estimator = logistic(classes)
    queries = np.random.default_rng(5).random((50, len(FEATURE_NAMES))).astype(np.float32)
    linear = linear_softmax_of(estimator)
    assert linear is not None
    np.testing.assert_allclose(
        linear.predict_proba(queries), estimator.predict_proba(queries), atol=1e-6
    )
    probabilities = ArtPulseClassifier(estimator).predict_proba(queries)
    assert probabilities.shape == (50, len(LABELS))
    absent = [i for i in range(len(LABELS)) if i not in classes]
    assert not probabilities[:, absent].any()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_other_estimators_use_their_own_predict_proba() -> None:
    rows, labels = training_rows([0, 1, 2, 3, 4])
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, labels)
    binary = logistic([0, 4])
    assert linear_softmax_of(forest) is None
    assert linear_softmax_of(binary) is None  # a sigmoid, not a softmax
    model = ArtPulseClassifier(binary)
    np.testing.assert_allclose(
        model.predict_proba(rows[:5])[:, [0, 4]], binary.predict_proba(rows[:5]), atol=1e-6
    )


def test_pickled_model_rebuilds_the_linear_path_and_predicts_the_same() -> None:
    estimator = logistic([0, 1, 2, 3, 4])
    model = ArtPulseClassifier(estimator)
    restored = pickle.loads(cloudpickle.dumps(model))
    rows = training_rows([0, 1, 2, 3, 4], seed=9)[0]
    np.testing.assert_array_equal(restored.predict_proba(rows), model.predict_proba(rows))
    frame = restored.predict(None, rows)
    assert list(frame.columns) == ["label", *PROBABILITY_COLUMNS]
    assert set(frame["label"]) <= set(LABELS)


def test_a_version_pickled_before_the_contract_split_still_loads() -> None:
    # Versions registered before the split name the class by its old module (protocol 2
    # writes the module as text, so the old name can be put back exactly).
    model = ArtPulseClassifier(logistic([0, 1, 2, 3, 4]))
    current = pickle.dumps(model, protocol=2)
    old = current.replace(b"artpulse_contract.classifier\n", b"artpulse_runtime.classifier\n")
    assert old != current
    restored = pickle.loads(old)
    assert isinstance(restored, ArtPulseClassifier)
    rows = training_rows([0, 1, 2, 3, 4], seed=3)[0]
    np.testing.assert_array_equal(restored.predict_proba(rows), model.predict_proba(rows))
