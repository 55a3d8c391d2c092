"""Settings of the drift, retrain and promote jobs (``ARTPULSE_`` environment variables).

Command-line options override them. Defaults and bounds are those of ``DriftThresholds`` and
``GateConfig``: a value out of bounds fails when the command starts, naming the variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from artpulse_contract.settings import ArtPulseSettings
from artpulse_jobs.monitoring.thresholds import (
    DEFAULT_THRESHOLDS,
    DEFAULT_WINDOW_HOURS,
    Correction,
    DriftThresholds,
    EventCount,
    Positive,
    Significance,
)
from artpulse_jobs.promotion.rules import DEFAULT_GATE, GateConfig, Score


class MonitoringSettings(ArtPulseSettings):
    """Thresholds and folders for ``artpulse drift``, ``retrain`` and ``promote``."""

    drift_window_hours: float = Field(default=DEFAULT_WINDOW_HOURS, gt=0.0)
    """Default drift window: events of the last this many hours."""

    drift_min_events: EventCount = DEFAULT_THRESHOLDS.min_events
    """Fewer valid events than this in the window is ``insufficient_data``."""

    drift_psi_threshold: Positive = DEFAULT_THRESHOLDS.psi
    """Population stability index at or above which a feature's shift is material."""

    drift_ks_alpha: Significance = DEFAULT_THRESHOLDS.ks_alpha
    """Significance level of the per-feature KS tests, after the family-wise correction."""

    drift_correction: Correction = DEFAULT_THRESHOLDS.correction
    """Family-wise correction of the five KS p-values."""

    drift_wasserstein_threshold: Positive = DEFAULT_THRESHOLDS.wasserstein_norm
    """Wasserstein distance / reference std at or above which a shift is material."""

    drift_label_alpha: Significance = DEFAULT_THRESHOLDS.label_alpha
    """Significance level of the chi-square test on predicted labels."""

    drift_label_js_threshold: Positive = DEFAULT_THRESHOLDS.label_js
    """Jensen-Shannon distance (base 2) of label distributions at or above which labels drift."""

    gate_min_macro_f1: Score = DEFAULT_GATE.min_macro_f1
    """Minimum macro F1 a candidate needs on the evaluation set to become champion."""

    gate_max_regression: Score = DEFAULT_GATE.max_regression
    """How far below the champion's macro F1 (same set) a candidate may score."""

    dataset_dir: Path | None = None
    """Training images folder for ``retrain``; unset means the champion's training folder."""

    new_data_dir: Path | None = None
    """Newly labelled images folder added to the training data by ``retrain`` (if it exists)."""

    def drift_thresholds(self) -> DriftThresholds:
        """The drift thresholds these settings describe."""
        return DriftThresholds(
            min_events=self.drift_min_events,
            psi=self.drift_psi_threshold,
            ks_alpha=self.drift_ks_alpha,
            correction=self.drift_correction,
            wasserstein_norm=self.drift_wasserstein_threshold,
            label_alpha=self.drift_label_alpha,
            label_js=self.drift_label_js_threshold,
        )

    def gate_config(self) -> GateConfig:
        """The promotion gate these settings describe."""
        return GateConfig(
            min_macro_f1=self.gate_min_macro_f1, max_regression=self.gate_max_regression
        )
