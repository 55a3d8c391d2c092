"""Comparing two predicted-label distributions: the one home of the statistics drift
monitoring (window vs training labels) and canary analysis (candidate vs stable version) share.

:class:`LabelAccumulator` counts labels in ``LABELS`` order; :func:`label_tests` runs the
chi-square test of homogeneity and the Jensen-Shannon distance on two such counts, and
:func:`labels_differ` is the rule both callers apply: a difference counts when it is
significant (the test rejects) AND material (the distance reaches its threshold), so neither
sampling noise in a small window nor a negligible shift on a million events is reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import stats
from scipy.spatial import distance

from artpulse_contract.constants import LABELS


def label_tests(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[float, float, float]:
    """Chi-square test of homogeneity between reference and current label counts.

    A two-sample test (a 2 x labels contingency table), so the reference's own sampling noise
    is accounted for; labels absent from both are left out. Returns ``(chi2, p_value,
    jensen_shannon_distance)``; the distance uses base 2, so it lies in [0, 1].
    """
    table = np.vstack(
        [np.asarray(reference_counts, dtype=np.float64), np.asarray(current_counts, np.float64)]
    )
    used = table.sum(axis=0) > 0
    if used.sum() < 2:
        chi2, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(table[:, used], correction=False)
        chi2, p_value = float(result.statistic), float(result.pvalue)
    proportions = table / table.sum(axis=1, keepdims=True)
    js = distance.jensenshannon(proportions[0], proportions[1], base=2)
    return chi2, p_value, float(js)


def labels_differ(p_value: float, js_distance: float, alpha: float, min_js: float) -> bool:
    """The shared rule: the test rejects at ``alpha`` AND the distance is at least ``min_js``."""
    return p_value < alpha and js_distance >= min_js


class LabelAccumulator:
    """Streaming counts of predicted labels, in ``LABELS`` order, plus unknown labels."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(LABELS), dtype=np.int64)
        self.unknown = 0
        self._index = {label: i for i, label in enumerate(LABELS)}

    def update(self, labels: Iterable[object]) -> None:
        """Add a chunk of predicted labels (strings)."""
        self.add_counts(Counter(np.asarray(labels, dtype=object).tolist()))

    def add_counts(self, counts: Mapping[object, int]) -> None:
        """Add labels already counted (label -> count), e.g. from a SQL ``GROUP BY``."""
        for value, count in counts.items():
            index = self._index.get(str(value))
            if index is None:
                self.unknown += int(count)
            else:
                self.counts[index] += int(count)
