"""Fitting and scoring the candidates on a stratified split, with thread counts capped."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from threadpoolctl import threadpool_limits

from artpulse_contract.classifier import ArtPulseClassifier
from artpulse_jobs.data.parallel import available_cores
from artpulse_jobs.training.candidates import Candidate
from artpulse_jobs.training.evaluation import Evaluation, evaluate

LATENCY_CALLS = 9
"""Single-row ``predict_proba`` calls timed to estimate a candidate's per-request cost."""


class TrainingError(ValueError):
    """Training cannot proceed with these data or options; the message says why."""


@dataclass(frozen=True)
class Split:
    """A stratified train / held-out split of feature rows and label indices."""

    train_features: np.ndarray
    train_labels: np.ndarray
    holdout_features: np.ndarray
    holdout_labels: np.ndarray


@dataclass
class FittedCandidate:
    """A candidate fitted on the training split and scored on the held-out split."""

    candidate: Candidate
    estimator: BaseEstimator
    holdout: Evaluation
    fit_seconds: float
    inference_ms: float
    """Median wall time of one single-row ``predict_proba`` through the pyfunc wrapper."""
    cv_macro_f1: float | None = None
    external: Evaluation | None = None
    """Scores on the generalisation set (``--eval-dir``), when one was given."""

    @property
    def name(self) -> str:
        """The candidate's name."""
        return self.candidate.name


def stratified_split(
    features: np.ndarray, labels: np.ndarray, test_size: float, seed: int
) -> Split:
    """Split rows so every label keeps its share in both parts."""
    if not 0.0 < test_size < 1.0:
        raise TrainingError(f"test size {test_size} must be between 0 and 1 (exclusive)")
    try:
        parts = train_test_split(
            features, labels, test_size=test_size, random_state=seed, stratify=labels
        )
    except ValueError as exc:
        counts = np.bincount(labels)
        raise TrainingError(
            f"cannot make a stratified {test_size:.0%} held-out split of {labels.size} images "
            f"(per-label counts {counts[counts > 0].tolist()}): {exc}"
        ) from exc
    train_x, holdout_x, train_y, holdout_y = parts
    return Split(train_x, train_y, holdout_x, holdout_y)


def _latency_ms(estimator: Any, row: np.ndarray) -> float:
    model = ArtPulseClassifier(estimator)
    model.predict_proba(row)  # warm-up: first calls pay one-off validation and allocation
    timings = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        model.predict_proba(row)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000.0)


def _cv_macro_f1(estimator: BaseEstimator, split: Split, folds: int, seed: int) -> float:
    """Mean macro F1 of stratified cross-validation on the training split."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(
        clone(estimator), split.train_features, split.train_labels, cv=splitter, scoring="f1_macro"
    )
    return float(np.mean(scores))


def fit_candidate(
    candidate: Candidate,
    split: Split,
    *,
    seed: int,
    cv_folds: int = 0,
    external: tuple[np.ndarray, np.ndarray] | None = None,
    threads: int | None = None,
) -> FittedCandidate:
    """Fit ``candidate`` on the training split; score it on the held-out (and external) set.

    OpenMP and BLAS threads are capped at ``threads`` (default: the cores available) so
    gradient boosting never oversubscribes a small machine.
    """
    threads = candidate.threads(threads or available_cores())
    estimator = candidate.build(seed, threads)
    with threadpool_limits(limits=threads):
        cv_score = _cv_macro_f1(estimator, split, cv_folds, seed) if cv_folds >= 2 else None
        start = time.perf_counter()
        estimator.fit(split.train_features, split.train_labels)
        fit_seconds = time.perf_counter() - start
        if hasattr(estimator, "n_jobs"):
            # One request is one row: thread dispatch would cost more than the trees.
            estimator.set_params(n_jobs=1)
        holdout = evaluate(split.holdout_labels, estimator.predict(split.holdout_features))
        external_scores = None
        if external is not None:
            external_scores = evaluate(external[1], estimator.predict(external[0]))
        latency = _latency_ms(estimator, split.holdout_features[:1])
    return FittedCandidate(
        candidate, estimator, holdout, fit_seconds, latency, cv_score, external_scores
    )


def fit_candidates(
    candidates: Sequence[Candidate],
    split: Split,
    *,
    seed: int,
    cv_folds: int = 0,
    external: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[FittedCandidate]:
    """Fit and score every candidate in turn (each uses all available cores)."""
    return [
        fit_candidate(c, split, seed=seed, cv_folds=cv_folds, external=external) for c in candidates
    ]
