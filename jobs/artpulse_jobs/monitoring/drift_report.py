"""Turn streamed drift statistics into verdicts and the ``drift_report.json`` document.

Decision rules (thresholds in :class:`~artpulse_jobs.monitoring.thresholds.DriftThresholds`,
defaults in line with Evidently and common PSI practice):

- fewer than ``min_events`` valid events: verdict ``insufficient_data``, nothing is tested;
- a feature drifts when its KS test rejects at ``ks_alpha`` after a family-wise correction over
  the five features (Holm by default) AND the shift is material: PSI >= ``psi`` or the
  Wasserstein distance divided by the reference standard deviation >= ``wasserstein_norm``.
  The test guards against noise in small windows; the effect size against negligible shifts
  that any test flags on a million events;
- the predicted labels drift when the chi-square homogeneity test (training vs current label
  counts) rejects at ``label_alpha`` AND the Jensen-Shannon distance (base 2) between the two
  label distributions >= ``label_js``;
- the verdict is ``drift`` when any feature or the labels drift, else ``no_drift``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from artpulse_contract.constants import FEATURE_NAMES, LABELS
from artpulse_contract.label_stats import LabelAccumulator, label_tests, labels_differ
from artpulse_jobs.monitoring.drift_stats import (
    GRID_BINS,
    FeatureAccumulator,
    adjust_p_values,
    ks_p_value,
    population_stability_index,
)
from artpulse_jobs.monitoring.thresholds import DriftThresholds

REPORT_SCHEMA_VERSION = 1
DISPLAY_BINS = 40
"""Equal-width histogram bins over [0, 1] in the report (a divisor of ``GRID_BINS``)."""

VERDICT_DRIFT = "drift"
VERDICT_NO_DRIFT = "no_drift"
VERDICT_INSUFFICIENT = "insufficient_data"


@dataclass(frozen=True)
class ReferenceData:
    """What drift compares with: ``reference_stats.json`` and a sample of training features."""

    stats: dict[str, Any]
    sample: np.ndarray
    sample_source: str


class DriftAccumulator:
    """Streaming state of a whole window: five features and the predicted labels."""

    def __init__(self, reference: ReferenceData) -> None:
        sample = np.asarray(reference.sample, dtype=np.float64)
        if sample.ndim != 2 or sample.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"reference sample has shape {sample.shape}; expected (n, 5)")
        self.features = [
            FeatureAccumulator(sample[:, i], reference.stats["features"][name]["bin_edges"])
            for i, name in enumerate(FEATURE_NAMES)
        ]
        self.labels = LabelAccumulator()
        self.events = 0
        self.invalid = 0

    def update(self, features: np.ndarray, labels: np.ndarray) -> None:
        """Add a chunk: features (n, 5) and predicted labels (n,); rows with NaN/inf are skipped."""
        rows = np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        valid = np.isfinite(rows).all(axis=1)
        self.events += int(rows.shape[0])
        self.invalid += int((~valid).sum())
        for i, accumulator in enumerate(self.features):
            accumulator.update(rows[valid, i])
        self.labels.update(np.asarray(labels)[valid])

    @property
    def valid(self) -> int:
        """Events with five finite feature values."""
        return self.events - self.invalid


def _display_histograms(
    accumulator: FeatureAccumulator, reference: dict[str, Any]
) -> dict[str, Any]:
    """Reference and current proportions on equal-width bins over [0, 1]."""
    edges = np.linspace(0.0, 1.0, DISPLAY_BINS + 1)
    current = accumulator.grid_counts.reshape(DISPLAY_BINS, GRID_BINS // DISPLAY_BINS).sum(axis=1)
    ref = np.zeros(DISPLAY_BINS)
    q_edges = np.asarray(reference["bin_edges"], dtype=np.float64)
    for (low, high), count in zip(pairwise(q_edges), reference["bin_counts"], strict=True):
        if high <= low:  # a single repeated value: all its mass in one display bin
            ref[min(int(low * DISPLAY_BINS), DISPLAY_BINS - 1)] += count
            continue
        overlap = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0.0, None)
        ref += count * overlap / (high - low)  # spread evenly within the quantile bin
    return {
        "edges": edges.round(4).tolist(),
        "reference": (ref / max(ref.sum(), 1.0)).round(5).tolist(),
        "current": (current / max(current.sum(), 1)).round(5).tolist(),
    }


def _versus(name: str, value: float, threshold: float) -> str:
    """``name value >= threshold`` or ``name value < threshold``, for a report's reasons."""
    return f"{name} {value:.3g} {'>=' if value >= threshold else '<'} {threshold}"


def _number(value: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    return float(value) if math.isfinite(value) else None


def _distributions(feature: FeatureAccumulator, ref: dict[str, Any]) -> dict[str, Any]:
    """Moments, quantile-bin counts and display histograms of reference and current values."""
    return {
        "reference": {key: ref[key] for key in ("mean", "std", "min", "max")},
        "current": {
            "mean": _number(feature.mean),
            "std": _number(feature.std),
            "min": _number(feature.minimum),
            "max": _number(feature.maximum),
        },
        "bins": {
            "edges": ref["bin_edges"],
            "reference": ref["bin_counts"],
            "current": feature.bin_counts.tolist(),
        },
        "histogram": _display_histograms(feature, ref),
    }


def _feature_results(
    accumulator: DriftAccumulator, reference: ReferenceData, thresholds: DriftThresholds
) -> dict[str, dict[str, Any]]:
    """Per-feature statistics and verdicts."""
    ks = [a.ks_statistic() for a in accumulator.features]
    p_values = [
        ks_p_value(d, a.reference_n, a.n) for d, a in zip(ks, accumulator.features, strict=True)
    ]
    adjusted = adjust_p_values(p_values, thresholds.correction)
    results: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(FEATURE_NAMES):
        feature = accumulator.features[i]
        ref = reference.stats["features"][name]
        psi = population_stability_index(np.asarray(ref["bin_counts"]), feature.bin_counts)
        wasserstein = feature.wasserstein()
        wasserstein_norm = wasserstein / max(float(ref["std"]), 1e-6)
        significant = adjusted[i] < thresholds.ks_alpha
        material = psi >= thresholds.psi or wasserstein_norm >= thresholds.wasserstein_norm
        results[name] = {
            "drifted": bool(significant and material),
            "psi": psi,
            "ks_statistic": ks[i],
            "ks_p_value": p_values[i],
            "ks_p_adjusted": adjusted[i],
            "wasserstein": wasserstein,
            "wasserstein_norm": wasserstein_norm,
            "reasons": [
                _versus(f"KS p ({thresholds.correction})", adjusted[i], thresholds.ks_alpha),
                _versus("PSI", psi, thresholds.psi),
                _versus("Wasserstein/std", wasserstein_norm, thresholds.wasserstein_norm),
            ],
            **_distributions(feature, ref),
        }
    return results


def _label_result(
    accumulator: DriftAccumulator, reference: ReferenceData, thresholds: DriftThresholds
) -> dict[str, Any]:
    """Predicted-label distribution test and verdict."""
    ref_counts = np.array([reference.stats["labels"].get(label, 0) for label in LABELS])
    current = accumulator.labels.counts
    result: dict[str, Any] = {
        "reference": {label: int(c) for label, c in zip(LABELS, ref_counts, strict=True)},
        "current": {label: int(c) for label, c in zip(LABELS, current, strict=True)},
        "unknown": accumulator.labels.unknown,
    }
    if current.sum() == 0:
        return {
            **result,
            "drifted": False,
            "chi2": None,
            "p_value": None,
            "js_distance": None,
            "reasons": ["no event has a known label"],
        }
    chi2, p_value, js = label_tests(ref_counts, current)
    drifted = labels_differ(p_value, js, thresholds.label_alpha, thresholds.label_js)
    reasons = [
        _versus("chi-square p", p_value, thresholds.label_alpha),
        _versus("Jensen-Shannon", js, thresholds.label_js),
    ]
    return {
        **result,
        "drifted": bool(drifted),
        "chi2": chi2,
        "p_value": p_value,
        "js_distance": js,
        "reasons": reasons,
    }


def _methods(reference: ReferenceData) -> dict[str, str]:
    """How each statistic was computed, for the report's readers."""
    return {
        "psi": "reference quantile bins of the training set; empty bins count as 1e-4",
        "ks": f"two-sample KS (exact statistic, asymptotic p) against {reference.sample_source}",
        "wasserstein": "Wasserstein-1 against the same sample, divided by the training std",
        "labels": "chi-square homogeneity test and Jensen-Shannon distance to training labels",
    }


def build_report(
    accumulator: DriftAccumulator,
    reference: ReferenceData,
    thresholds: DriftThresholds,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The drift report: verdict, counts, thresholds, per-feature and label results.

    ``context`` (model, window, run id, ...) is copied into the report as is.
    """
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        **context,
        "counts": {
            "events": accumulator.events,
            "valid_events": accumulator.valid,
            "invalid_rows": accumulator.invalid,
            "reference_n": int(reference.stats["n"]),
            "reference_sample_n": int(reference.sample.shape[0]),
        },
        "thresholds": asdict(thresholds),
        "method": _methods(reference),
    }
    if accumulator.valid < thresholds.min_events:
        report.update(
            verdict=VERDICT_INSUFFICIENT,
            summary=f"{VERDICT_INSUFFICIENT}: {accumulator.valid} valid events in the window; "
            f"at least {thresholds.min_events} are needed to test for drift",
            features={},
            labels={},
            drifted_features=[],
        )
        return report
    features = _feature_results(accumulator, reference, thresholds)
    labels = _label_result(accumulator, reference, thresholds)
    drifted = [name for name, result in features.items() if result["drifted"]]
    verdict = VERDICT_DRIFT if drifted or labels["drifted"] else VERDICT_NO_DRIFT
    parts = [f"drifted features: {', '.join(drifted)}" if drifted else "no feature drifted"]
    parts.append("predicted labels drifted" if labels["drifted"] else "labels stable")
    report.update(
        verdict=verdict,
        summary=f"{verdict} over {accumulator.valid} events: {'; '.join(parts)}",
        features=features,
        labels=labels,
        drifted_features=drifted,
    )
    return report


def write_json(report: dict[str, Any], path: Path) -> Path:
    """Write the report as indented JSON and return the path."""
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
