"""Settings of the drift, retrain and promote jobs (``ARTPULSE_`` environment variables).

Command-line options override them; the defaults are the documented ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from artpulse_jobs.drift import DEFAULT_WINDOW_HOURS
from artpulse_jobs.drift_report import DriftThresholds
from artpulse_jobs.gate import GateConfig
from artpulse_runtime.settings import ArtPulseSettings


class MonitoringSettings(ArtPulseSettings):
    """Thresholds and folders for ``artpulse drift``, ``retrain`` and ``promote``."""

    drift_window_hours: float = DEFAULT_WINDOW_HOURS
    """Default drift window: events of the last this many hours."""

    drift_min_events: int = 100
    """Fewer valid events than this in the window is ``insufficient_data``."""

    drift_psi_threshold: float = 0.2
    """Population stability index at or above which a feature's shift is material."""

    drift_ks_alpha: float = 0.01
    """Significance level of the per-feature KS tests, after the family-wise correction."""

    drift_correction: Literal["holm", "bonferroni"] = "holm"
    """Family-wise correction of the five KS p-values."""

    drift_wasserstein_threshold: float = 0.1
    """Wasserstein distance / reference std at or above which a shift is material."""

    drift_label_alpha: float = 0.01
    """Significance level of the chi-square test on predicted labels."""

    drift_label_js_threshold: float = 0.1
    """Jensen-Shannon distance (base 2) of label distributions at or above which labels drift."""

    gate_min_macro_f1: float = 0.90
    """Minimum macro F1 a candidate needs on the evaluation set to become champion."""

    gate_max_regression: float = 0.02
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
