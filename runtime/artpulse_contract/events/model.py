"""What one prediction event holds, and the column-wise chunks the store reads back.

An event is a plain row (``PredictionEvent``, a named tuple): the request path builds one per
prediction straight from numpy, with no per-row checks. The checks happen once per request,
at the boundary, in ``events_from_predictions``, on whole arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np

from artpulse_contract.constants import FEATURE_NAMES, INPUT_FEATURES, INPUT_IMAGE, LABELS

INPUT_KINDS: tuple[str, ...] = (INPUT_IMAGE, INPUT_FEATURES)
"""The values ``PredictionEvent.input_kind`` may take."""


class PredictionEvent(NamedTuple):
    """One prediction as the serving runtime saw it: a row of the event store."""

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


def _float32(values: np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.float32:
        return values  # what the runtime passes: nothing to convert
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
        return np.asarray(values, dtype=np.float32)


def _rows(name: str, values: np.ndarray, rows: int, columns: int) -> list[list[float]]:
    """The float32 matrix ``values`` as Python rows, checked: shape, and finite throughout."""
    matrix = _float32(values)
    if matrix.shape != (rows, columns):
        raise ValueError(f"{name} has shape {matrix.shape}; expected ({rows}, {columns})")
    listed: list[list[float]] = matrix.tolist()  # exact floats: what the store holds
    # The sum is NaN or infinite iff a value is (float32 values cannot overflow a float sum):
    # one pass in C, cheaper than numpy's checks on the few rows of a request.
    total = sum(map(sum, listed))
    if total - total != 0.0:
        raise ValueError(f"{name} must be finite float32 numbers")
    return listed


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
    """One event per row of a batched prediction (features and probabilities are (N, 5)).

    The whole batch is checked once: an aware timestamp, a known input kind, and finite
    float32 features and probabilities of the right shape; a ValueError names the problem.
    """
    if timestamp.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {timestamp!r}")
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    rows = len(labels)
    feature_rows = _rows("features", features, rows, len(FEATURE_NAMES))
    proba_rows = _rows("probabilities", probabilities, rows, len(LABELS))
    return [
        PredictionEvent(
            timestamp,
            request_id,
            model_name,
            model_version,
            input_kind,
            tuple(feature_row),
            label,
            tuple(proba_row),
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
    """float32, shape (n, 5), ``LABELS`` order; None when the read left them out."""

    def __len__(self) -> int:
        """Number of events in the chunk."""
        return int(self.timestamps.shape[0])
