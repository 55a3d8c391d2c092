"""The model families training compares, and how one is chosen.

Selection: the highest macro F1 on the held-out split wins. Candidates within
``TIE_TOLERANCE`` of the best score count as tied, and the tie goes to the one cheapest to
run at inference (lowest ``inference_rank``): the serving hot path calls ``predict_proba``
once per request, where a linear model answers in microseconds, a boosted ensemble in about
a millisecond and a forest of trees in several.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TIE_TOLERANCE = 0.005
"""Macro-F1 difference below which two candidates count as equally good."""


@dataclass(frozen=True)
class Candidate:
    """A model family: its name, its parameters and how cheap it is at inference."""

    name: str
    inference_rank: int
    """Tie-break order: lower is cheaper per ``predict_proba`` call."""
    params: dict[str, Any]
    factory: Callable[..., BaseEstimator]
    max_threads: int | None = None
    """Cap on the threads this family may use, whatever the cores (None: no cap)."""

    def threads(self, available: int) -> int:
        """Threads to fit and score this candidate with, given the cores available."""
        return min(available, self.max_threads or available)

    def build(self, seed: int, threads: int) -> BaseEstimator:
        """A fresh, unfitted estimator seeded with ``seed`` using at most ``threads`` threads."""
        return self.factory(seed=seed, threads=threads, **self.params)


def _logistic(seed: int, threads: int, **params: Any) -> BaseEstimator:
    return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed, **params))


def _random_forest(seed: int, threads: int, **params: Any) -> BaseEstimator:
    return RandomForestClassifier(random_state=seed, n_jobs=threads, **params)


def _hist_gradient_boosting(seed: int, threads: int, **params: Any) -> BaseEstimator:
    # Its OpenMP threads are capped by the caller (threadpoolctl) around fit and predict.
    return HistGradientBoostingClassifier(random_state=seed, **params)


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logistic_regression", 0, {"C": 10.0, "max_iter": 1000}, _logistic),
    Candidate(
        "hist_gradient_boosting",
        1,
        {"max_iter": 60, "learning_rate": 0.15, "early_stopping": False},
        _hist_gradient_boosting,
        # One OpenMP thread: on a few hundred rows parallel histograms gain little, and on
        # a busy two-core machine OpenMP's spinning barriers made a 0.3 s fit take 8 s and
        # a single-row predict 120 ms (measured).
        max_threads=1,
    ),
    Candidate(
        "random_forest",
        2,
        # 60 trees: five features need no more, and each request walks every tree.
        {"n_estimators": 60, "min_samples_leaf": 1},
        _random_forest,
    ),
)
"""The default candidates, cheapest at inference first."""


def candidate_by_name(name: str) -> Candidate:
    """The default candidate called ``name``; a ValueError lists the valid names."""
    for candidate in CANDIDATES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown candidate {name!r}; expected one of {[c.name for c in CANDIDATES]}")


def select_best(scores: Sequence[tuple[Candidate, float]]) -> Candidate:
    """The candidate with the best macro F1, ties (within TIE_TOLERANCE) to the cheapest."""
    if not scores:
        raise ValueError("no candidate was evaluated")
    best_score = max(score for _, score in scores)
    tied = [candidate for candidate, score in scores if score >= best_score - TIE_TOLERANCE]
    return min(tied, key=lambda candidate: candidate.inference_rank)
