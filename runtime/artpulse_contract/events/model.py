"""What one prediction event holds, and the column-wise chunks the store reads back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from artpulse_contract.constants import FEATURE_NAMES, INPUT_FEATURES, INPUT_IMAGE, LABELS

INPUT_KINDS: tuple[str, ...] = (INPUT_IMAGE, INPUT_FEATURES)
"""The values ``PredictionEvent.input_kind`` may take."""


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Features and probabilities are float32 (the V2 outputs are FP32); so is the store."""


def _check_values(name: str, values: tuple[float, ...], expected: int) -> None:
    if len(values) != expected:
        raise ValueError(f"PredictionEvent.{name} needs {expected} values, got {len(values)}")
    # On the request path: the sum is NaN or infinite iff a value is (the range check
    # below keeps the sum of in-range values finite), so one pass in C decides.
    total = sum(values)
    if total - total != 0.0 or max(values) > FLOAT32_MAX or min(values) < -FLOAT32_MAX:
        raise ValueError(f"PredictionEvent.{name} must be finite float32 numbers, got {values!r}")


@dataclass(frozen=True, slots=True)
class PredictionEvent:
    """One prediction as the serving runtime saw it; validated on construction."""

    timestamp: datetime
    """When the prediction was made; timezone-aware (stored and read back as UTC)."""
    request_id: str
    model_name: str
    model_version: str
    """The registry version that answered, never an alias."""
    input_kind: str
    """``"image"`` or ``"features"``."""
    features: tuple[float, ...]
    """The five feature values, in ``FEATURE_NAMES`` order."""
    label: str
    probabilities: tuple[float, ...]
    """The five class probabilities, in ``LABELS`` order."""

    def __post_init__(self) -> None:
        """Reject values the store could not keep faithfully, naming the bad field."""
        offset = self.timestamp.utcoffset()
        if offset is None:
            raise ValueError(
                f"PredictionEvent.timestamp must be timezone-aware, got naive {self.timestamp!r}"
            )
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(
                f"PredictionEvent.input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}"
            )
        _check_values("features", self.features, len(FEATURE_NAMES))
        _check_values("probabilities", self.probabilities, len(LABELS))


def events_from_predictions(
    *,
    timestamp: datetime,
    request_id: str,
    model_name: str,
    model_version: str,
    input_kind: str,
    features: np.ndarray,
    labels: Sequence[str],
    probabilities: np.ndarray,
) -> list[PredictionEvent]:
    """One event per row of a batched prediction (features and probabilities are (N, 5))."""
    feature_rows = np.asarray(features).tolist()  # float32 .tolist() gives exact floats
    proba_rows = np.asarray(probabilities).tolist()
    if not len(feature_rows) == len(labels) == len(proba_rows):
        raise ValueError(
            f"events_from_predictions needs as many rows of features ({len(feature_rows)}), "
            f"labels ({len(labels)}) and probabilities ({len(proba_rows)})"
        )
    return [
        PredictionEvent(
            timestamp=timestamp,
            request_id=request_id,
            model_name=model_name,
            model_version=model_version,
            input_kind=input_kind,
            features=tuple(feature_row),
            label=str(label),
            probabilities=tuple(proba_row),
        )
        for feature_row, label, proba_row in zip(feature_rows, labels, proba_rows, strict=True)
    ]


@dataclass(frozen=True)
class EventChunk:
    """A run of stored events, column by column, in (timestamp, insertion) order."""

    timestamps: np.ndarray
    """``datetime64[us]``, UTC, shape (n,)."""
    features: np.ndarray
    """float32, shape (n, 5), ``FEATURE_NAMES`` order."""
    labels: np.ndarray
    """object array of str, shape (n,)."""
    model_versions: np.ndarray
    """object array of str, shape (n,)."""
    probabilities: np.ndarray | None = None
    """float32, shape (n, 5), ``LABELS`` order; always filled by ``EventStore``."""

    def __len__(self) -> int:
        """Number of events in the chunk."""
        return int(self.timestamps.shape[0])
