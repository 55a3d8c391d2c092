"""When a window of prediction events counts as drifted: the thresholds, their defaults and
bounds, in one place (``MonitoringSettings`` and the command-line help take them from here)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass as validated_dataclass

EventCount = Annotated[int, Field(ge=1)]
Significance = Annotated[float, Field(gt=0.0, lt=1.0)]
"""A test's significance level, strictly between 0 and 1."""
Positive = Annotated[float, Field(gt=0.0)]
Correction = Literal["holm", "bonferroni"]
"""Family-wise correction of the per-feature p-values."""

DEFAULT_WINDOW_HOURS = 24.0
"""Without ``--last`` or ``--since``, the window is the last 24 hours."""


@validated_dataclass(frozen=True)
class DriftThresholds:
    """When a window counts as drifted; see ``drift_report`` for the rules."""

    min_events: EventCount = 100
    """Fewer valid events than this in the window is ``insufficient_data``."""
    psi: Positive = 0.2
    """Population stability index at or above which a feature's shift is material."""
    ks_alpha: Significance = 0.01
    """Significance level of the per-feature KS tests, after the family-wise correction."""
    correction: Correction = "holm"
    """Family-wise correction of the five KS p-values."""
    wasserstein_norm: Positive = 0.1
    """Wasserstein distance / reference std at or above which a shift is material."""
    label_alpha: Significance = 0.01
    """Significance level of the chi-square test on predicted labels."""
    label_js: Positive = 0.1
    """Jensen-Shannon distance (base 2) of label distributions at or above which labels drift."""


DEFAULT_THRESHOLDS = DriftThresholds()
