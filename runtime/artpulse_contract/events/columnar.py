"""Rows of the event table <-> Python values and numpy columns, tuned for bulk reads."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from artpulse_contract.constants import FEATURE_NAMES, LABELS
from artpulse_contract.events.model import EventChunk
from artpulse_contract.events.schema import FEATURE_COLUMNS, prediction_events

PROBABILITIES = struct.Struct(f"<{len(LABELS)}f")
"""Probabilities are kept as little-endian float32 values, 4 bytes each."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_N_FEATURES = len(FEATURE_NAMES)


def timestamp_expression(dialect: Dialect) -> sa.ColumnElement[Any]:
    """The timestamp in a form numpy converts fast.

    SQLite: the stored UTC text as is (numpy parses ISO text ~40x faster than it converts
    ``datetime`` objects). PostgreSQL: whole microseconds since the epoch, computed exactly
    in ``numeric``.
    """
    column = prediction_events.c.timestamp
    if dialect.name == "sqlite":
        return sa.type_coerce(column, sa.String()).label("ts_raw")
    micros = sa.extract("epoch", column) * sa.literal(1_000_000, sa.Numeric())
    return sa.cast(micros, sa.BigInteger()).label("ts_raw")


def chunk_columns(dialect: Dialect, *, probabilities: bool) -> list[sa.ColumnElement[Any]]:
    """Columns selected for a chunk: raw timestamp, id, features, label, version, and the
    probabilities when asked for."""
    table = prediction_events.c
    columns = [
        timestamp_expression(dialect),
        table.id,
        *FEATURE_COLUMNS,
        table.label,
        table.model_version,
    ]
    return [*columns, table.probabilities] if probabilities else columns


def _timestamps(values: Sequence[Any], dialect: Dialect) -> np.ndarray:
    if dialect.name == "sqlite":
        return np.array(values, dtype="datetime64[us]")
    return np.array(values, dtype=np.int64).view("datetime64[us]")


def rows_to_chunk(rows: Sequence[Sequence[Any]], dialect: Dialect) -> EventChunk:
    """Turn rows selected with ``chunk_columns`` into an ``EventChunk``."""
    columns = list(zip(*rows, strict=True))
    features = np.empty((len(rows), _N_FEATURES), dtype=np.float32)
    for index in range(_N_FEATURES):
        features[:, index] = columns[2 + index]
    label_column = 2 + _N_FEATURES
    probabilities = None
    if len(columns) > label_column + 2:
        packed = np.frombuffer(bytearray(b"".join(columns[label_column + 2])), dtype="<f4")
        probabilities = packed.reshape(len(rows), len(LABELS))
    return EventChunk(
        timestamps=_timestamps(columns[0], dialect),
        features=features,
        labels=np.array(columns[label_column], dtype=object),
        model_versions=np.array(columns[label_column + 1], dtype=object),
        probabilities=probabilities,
    )


def concatenate(chunks: Sequence[EventChunk]) -> EventChunk:
    """One chunk holding ``chunks`` in order."""
    if len(chunks) == 1:
        return chunks[0]
    probabilities = [chunk.probabilities for chunk in chunks if chunk.probabilities is not None]
    return EventChunk(
        timestamps=np.concatenate([chunk.timestamps for chunk in chunks]),
        features=np.concatenate([chunk.features for chunk in chunks]),
        labels=np.concatenate([chunk.labels for chunk in chunks]),
        model_versions=np.concatenate([chunk.model_versions for chunk in chunks]),
        probabilities=np.concatenate(probabilities) if len(probabilities) == len(chunks) else None,
    )


def as_utc_datetime(value: np.datetime64) -> datetime:
    """A ``datetime64`` value (naive UTC) as an aware UTC ``datetime``."""
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return _EPOCH + timedelta(microseconds=micros)
