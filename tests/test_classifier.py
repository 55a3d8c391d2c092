"""The logged pyfunc model: probabilities in label order, and the linear numpy path agreeing
with scikit-learn."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from artpulse_contract.classifier import PROBABILITY_COLUMNS, ArtPulseClassifier
from artpulse_contract.constants import FEATURE_NAMES, LABELS, FeatureMode
from artpulse_contract.estimator_store import (
    UntrustedEstimatorError,
    load_estimator,
    save_estimator,
)
from artpulse_contract.scoring import Scorer, linear_softmax_of, load_scorer


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


def test_a_legacy_pickle_holds_the_estimator_only_and_is_exact() -> None:
    estimator = logistic([0, 1, 2, 3, 4])
    legacy = pickle.loads(cloudpickle.dumps(ArtPulseClassifier(estimator, FeatureMode.DRAFT)))
    assert legacy.feature_mode is FeatureMode.EXACT  # pickles predate feature modes
    assert ArtPulseClassifier(estimator).feature_mode is FeatureMode.EXACT


def test_the_scorer_file_keeps_the_mode_and_the_probabilities(tmp_path: Path) -> None:
    rows, labels = training_rows([0, 1, 2, 3, 4])
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, labels)
    for number, estimator in enumerate([logistic([0, 2, 4]), forest]):
        estimator_file = save_estimator(estimator, tmp_path / f"{number}.skops")
        scorer = Scorer.of(estimator, FeatureMode.DRAFT)
        scorer_file = scorer.save(tmp_path / f"{number}.npz")
        loaded = load_scorer(estimator_file, scorer_file)
        assert loaded.feature_mode is FeatureMode.DRAFT
        assert loaded.family == scorer.family
        np.testing.assert_array_equal(loaded.predict_proba(rows), scorer.predict_proba(rows))
        # A version logged before scorers were stored: its estimator, in EXACT mode.
        unrecorded = load_scorer(estimator_file, None)
        assert unrecorded.feature_mode is FeatureMode.EXACT
        np.testing.assert_array_equal(unrecorded.predict_proba(rows), scorer.predict_proba(rows))


def test_a_scorer_file_is_read_without_unpickling_anything(tmp_path: Path) -> None:
    estimator_file = save_estimator(logistic([0, 1, 2, 3, 4]), tmp_path / "estimator.skops")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, classes=np.arange(5), feature_mode=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_scorer(estimator_file, pickled)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones((5, 5)))
    with pytest.raises(ValueError, match="not a scorer"):
        load_scorer(estimator_file, foreign)


def test_every_candidate_family_round_trips_through_skops(tmp_path: Path) -> None:
    rows, labels = training_rows([0, 1, 2, 3, 4])
    for number, estimator in enumerate(
        [
            logistic([0, 1, 2, 3, 4]),
            RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, labels),
            HistGradientBoostingClassifier(max_iter=5).fit(rows, labels),
        ]
    ):
        path = save_estimator(estimator, tmp_path / f"{number}.skops")
        restored = load_estimator(path)
        np.testing.assert_array_equal(restored.predict_proba(rows), estimator.predict_proba(rows))


def test_an_estimator_holding_other_types_is_neither_stored_nor_loaded(tmp_path: Path) -> None:
    """A function in the file (here os.system) would run code: skops does not rebuild it."""
    tampered = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    with pytest.raises(UntrustedEstimatorError, match="system"):
        save_estimator(tampered, tmp_path / "refused.skops")
    path = tmp_path / "tampered.skops"
    skops.io.dump(tampered, path)  # as someone with write access to the artifact store could
    with pytest.raises(UntrustedEstimatorError, match="system"):
        load_estimator(path)
