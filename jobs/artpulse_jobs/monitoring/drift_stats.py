"""Drift statistics that can be fed chunk by chunk, so a window of any size fits in memory.

Per feature, a :class:`FeatureAccumulator` keeps only counts whose size depends on the
reference, never on the number of events:

- counts per reference quantile bin (population stability index);
- counts of current values at-or-below and below each distinct value of the reference
  sample, which is all the two-sample Kolmogorov-Smirnov statistic needs (exact, not
  approximated);
- a fine histogram over [0, 1] (the contract's feature range) for the Wasserstein distance
  and the report's histograms;
- the sum, sum of squares, minimum and maximum.

The functions below turn those counts into statistics with scipy. Predicted labels are
counted and compared by ``artpulse_contract.label_stats``, which canary analysis shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

PSI_EPSILON = 1e-4
"""Proportion used in place of an empty bin, so the PSI logarithm stays finite."""

GRID_BINS = 1000
"""Bins of the fine histogram over [0, 1]; the Wasserstein error is at most half a bin."""


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI = sum((c - r) * ln(c / r)) over bins of the proportions ``r`` and ``c``."""
    reference = np.asarray(reference_counts, dtype=np.float64)
    current = np.asarray(current_counts, dtype=np.float64)
    if reference.shape != current.shape:
        raise ValueError(f"bin counts differ in shape: {reference.shape} vs {current.shape}")
    r = np.maximum(reference / max(reference.sum(), 1.0), PSI_EPSILON)
    c = np.maximum(current / max(current.sum(), 1.0), PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise corrected p-values: ``holm`` (step-down) or ``bonferroni``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if method == "bonferroni":
        return np.minimum(p * m, 1.0).tolist()
    if method != "holm":
        raise ValueError(f"unknown p-value correction {method!r}; expected 'holm' or 'bonferroni'")
    order = np.argsort(p)
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided p-value of a two-sample KS statistic: Smirnov's asymptotic distribution.

    The same computation as ``scipy.stats.ks_2samp(..., method="asymp")``.
    """
    m, n = sorted((float(n_reference), float(n_current)), reverse=True)
    effective = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))


GRID_EDGES = np.arange(1, GRID_BINS) / GRID_BINS
"""Inner edges of the fine histogram; values below 0 or above 1 land in the outer bins."""


def _counts_between(sorted_values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts per bin of ``inner_edges`` (a value equal to an edge goes to the upper bin).

    Values below the first or above the last edge count in the outermost bins, as
    ``reference.bin_counts`` does.
    """
    positions = np.searchsorted(sorted_values, inner_edges, side="left")
    return np.diff(positions, prepend=0, append=sorted_values.size)


class FeatureAccumulator:
    """Streaming summary of one feature's current values against its reference."""

    def __init__(self, reference_sample: np.ndarray, bin_edges: Sequence[float]) -> None:
        sample = np.sort(np.asarray(reference_sample, dtype=np.float64))
        if sample.size == 0:
            raise ValueError("the reference sample is empty; the KS test needs reference values")
        self.reference_values, counts = np.unique(sample, return_counts=True)
        self.reference_cdf = np.cumsum(counts) / sample.size
        self.reference_n = int(sample.size)
        self.bin_edges = np.asarray(bin_edges, dtype=np.float64)
        self.bin_counts = np.zeros(max(self.bin_edges.size - 1, 1), dtype=np.int64)
        self._at_or_below = np.zeros(self.reference_values.size, dtype=np.int64)  # n(v <= u_j)
        self._below = np.zeros(self.reference_values.size, dtype=np.int64)  # n(v < u_j)
        self.grid_counts = np.zeros(GRID_BINS, dtype=np.int64)
        self.n = 0
        self._sum = 0.0
        self._sum_squares = 0.0
        self.minimum = float("inf")
        self.maximum = float("-inf")

    def update(self, values: np.ndarray) -> None:
        """Add a chunk of finite current values."""
        v = np.sort(np.asarray(values, dtype=np.float64))
        if v.size == 0:
            return
        # On the sorted chunk every count is a cumulative position found by a few hundred
        # binary searches, instead of one search per event.
        self._at_or_below += np.searchsorted(v, self.reference_values, side="right")
        self._below += np.searchsorted(v, self.reference_values, side="left")
        self.bin_counts += _counts_between(v, self.bin_edges[1:-1])
        self.grid_counts += _counts_between(v, GRID_EDGES)
        self.n += int(v.size)
        self._sum += float(v.sum())
        self._sum_squares += float(np.square(v).sum())
        self.minimum = min(self.minimum, float(v[0]))
        self.maximum = max(self.maximum, float(v[-1]))

    @property
    def mean(self) -> float:
        """Mean of the current values (NaN when there are none)."""
        return self._sum / self.n if self.n else float("nan")

    @property
    def std(self) -> float:
        """Population standard deviation of the current values (NaN when there are none)."""
        if not self.n:
            return float("nan")
        return float(np.sqrt(max(self._sum_squares / self.n - self.mean**2, 0.0)))

    def ks_statistic(self) -> float:
        """Exact two-sample KS statistic sup |F_ref - F_cur| (same value as ``ks_2samp``).

        Between two consecutive reference values ``F_ref`` is flat and ``F_cur`` rises, so the
        supremum is reached at a reference value or just below the next one; both are known
        from the counts.
        """
        if not self.n:
            return float("nan")
        at_or_below = self._at_or_below / self.n  # F_cur(u_j)
        below = self._below / self.n  # F_cur(u_j-)
        previous_cdf = np.concatenate(([0.0], self.reference_cdf[:-1]))  # F_ref(u_j-)
        return float(
            max(
                np.max(np.abs(self.reference_cdf - at_or_below)),
                np.max(np.abs(previous_cdf - below)),
            )
        )

    def wasserstein(self) -> float:
        """Wasserstein-1 distance between the current values (fine histogram) and the sample."""
        if not self.n:
            return float("nan")
        centers = (np.arange(GRID_BINS) + 0.5) / GRID_BINS
        used = self.grid_counts > 0
        return float(
            stats.wasserstein_distance(
                centers[used],
                self.reference_values,
                u_weights=self.grid_counts[used],
                v_weights=np.diff(np.concatenate(([0.0], self.reference_cdf))),
            )
        )
