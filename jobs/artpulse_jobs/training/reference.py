"""Reference statistics of a training set: what drift detection compares serving traffic with.

Logged as ``reference_stats.json`` in the run of every registered model version. Format
(``schema_version`` 1)::

    {
      "schema_version": 1,
      "n": 600,
      "bins": 10,
      "features": {
        "hue_mean": {"mean": .., "std": .., "min": .., "max": ..,
                     "bin_edges": [b0, .., bK], "bin_counts": [c1, .., cK]},
        ...                                   # one entry per FEATURE_NAMES, in order
      },
      "labels": {"minimal": 120, ...}         # every label of LABELS, zero if absent
    }

``bin_edges`` are the training quantiles at 0, 1/bins, ..., 1 with repeats removed, so a
feature with few distinct values has fewer bins; ``bin_counts[i]`` counts training values in
``[bin_edges[i], bin_edges[i+1])`` (the last bin is closed). Drift maps values below the first
or above the last edge into the first or last bin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from artpulse_contract.constants import FEATURE_NAMES, LABELS

SCHEMA_VERSION = 1
DEFAULT_BINS = 10


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin edges at the quantiles of ``values``, repeats removed (at least two edges)."""
    edges = np.unique(np.quantile(values.astype(np.float64), np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return edges


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` per bin of ``edges``; values outside go to the outermost bins."""
    inner = edges[1:-1]
    index = np.searchsorted(inner, values.astype(np.float64), side="right")
    return np.bincount(index, minlength=len(edges) - 1)


def compute_reference_stats(
    features: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """Reference statistics of a training set: features (N, 5) and label indices (N,)."""
    if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"features have shape {features.shape}; expected (N, {len(FEATURE_NAMES)})"
        )
    if features.shape[0] == 0:
        raise ValueError("cannot compute reference statistics of an empty training set")
    per_feature: dict[str, Any] = {}
    for column, name in enumerate(FEATURE_NAMES):
        values = features[:, column].astype(np.float64)
        edges = quantile_edges(values, bins)
        per_feature[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "bin_edges": edges.tolist(),
            "bin_counts": bin_counts(values, edges).tolist(),
        }
    label_counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(LABELS))
    return {
        "schema_version": SCHEMA_VERSION,
        "n": int(features.shape[0]),
        "bins": bins,
        "features": per_feature,
        "labels": {label: int(label_counts[i]) for i, label in enumerate(LABELS)},
    }
