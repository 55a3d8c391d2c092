"""Serving outcomes: how many requests each model version answered or failed, and how fast.

Prediction events say what a version predicted; they cannot say what it failed to answer.
The runtime therefore also counts, per model version, the requests it answered and those that
failed with a server error (a request the client got wrong, 4xx, is not counted), with a
latency histogram of the answered ones, and writes one ``serving_outcomes`` row per version
every few seconds (``ServingSettings.outcome_interval``). Canary analysis compares two
versions over the same window from these rows and from the prediction events.

Latency buckets are fixed (``LATENCY_BOUNDS``, upper bounds in seconds growing by 25% from
0.5 ms, then one unbounded bucket), so rows of any pods and periods add up, and a quantile
read from the sum is off by at most one bucket's width (25%) before interpolation.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from artpulse_contract.events.schema import LATENCY_BOUNDS, LATENCY_BUCKETS, serving_outcomes
from artpulse_contract.events.store import EventStore

_COUNTS = struct.Struct(f"<{LATENCY_BUCKETS}I")
"""A histogram is stored as little-endian uint32 counts, one per bucket."""


def latency_bucket(seconds: float) -> int:
    """Index of the bucket ``seconds`` falls in (a value equal to a bound is in that bucket)."""
    return bisect.bisect_left(LATENCY_BOUNDS, seconds)


def latency_quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0 < q < 1) of a latency histogram, interpolated within its bucket.

    None for an empty histogram; a quantile in the unbounded bucket is the last finite bound.
    """
    totals = np.cumsum(np.asarray(counts, dtype=np.int64))
    if totals.size == 0 or totals[-1] == 0:
        return None
    rank = q * float(totals[-1])
    index = int(np.searchsorted(totals, rank, side="left"))
    if index >= len(LATENCY_BOUNDS):
        return LATENCY_BOUNDS[-1]
    lower = LATENCY_BOUNDS[index - 1] if index else 0.0
    below = float(totals[index - 1]) if index else 0.0
    inside = float(totals[index]) - below
    return lower + (LATENCY_BOUNDS[index] - lower) * (rank - below) / inside


@dataclass(frozen=True)
class ServingOutcome:
    """What one serving process saw of one model version during one period."""

    period_start: datetime
    period_end: datetime
    instance: str
    """The serving process (a pod's host name), so rows from several pods stay apart."""
    model_name: str
    model_version: str
    answered: int
    """Requests answered with a prediction."""
    server_errors: int
    """Requests that failed with a server error (5xx)."""
    latency_counts: tuple[int, ...] = field(default=(0,) * LATENCY_BUCKETS)
    """Answered requests per latency bucket (``LATENCY_BOUNDS``)."""

    def __post_init__(self) -> None:
        """Refuse a histogram of the wrong size or negative counts, naming the field."""
        if len(self.latency_counts) != LATENCY_BUCKETS:
            raise ValueError(
                f"ServingOutcome.latency_counts needs {LATENCY_BUCKETS} buckets, "
                f"got {len(self.latency_counts)}"
            )
        if min(self.answered, self.server_errors, *self.latency_counts) < 0:
            raise ValueError("ServingOutcome counts must not be negative")


def _row(outcome: ServingOutcome) -> dict[str, Any]:
    return {
        "period_start": outcome.period_start,
        "period_end": outcome.period_end,
        "instance": outcome.instance,
        "model_name": outcome.model_name,
        "model_version": outcome.model_version,
        "answered": outcome.answered,
        "server_errors": outcome.server_errors,
        "latency_counts": _COUNTS.pack(*outcome.latency_counts),
    }


def write_outcomes(store: EventStore, outcomes: Sequence[ServingOutcome]) -> None:
    """Insert ``outcomes`` into the store in one transaction (all or none)."""
    if not outcomes:
        return
    store.ensure_schema()
    with store.engine.begin() as connection:
        connection.execute(sa.insert(serving_outcomes), [_row(o) for o in outcomes])


@dataclass(frozen=True)
class OutcomeTotals:
    """Outcome rows of one model version added up."""

    answered: int = 0
    server_errors: int = 0
    latency_counts: tuple[int, ...] = (0,) * LATENCY_BUCKETS

    @property
    def requests(self) -> int:
        """Requests that reached the model: answered or failed with a server error."""
        return self.answered + self.server_errors

    def __add__(self, other: OutcomeTotals) -> OutcomeTotals:
        """The totals of two sets of rows (e.g. two adjoining windows)."""
        return OutcomeTotals(
            self.answered + other.answered,
            self.server_errors + other.server_errors,
            tuple(a + b for a, b in zip(self.latency_counts, other.latency_counts, strict=True)),
        )


def outcome_totals(
    connection: Connection, model_name: str, model_version: str, since: datetime, until: datetime
) -> OutcomeTotals:
    """The outcomes of ``model_version`` in rows whose period ended in ``(since, until]``."""
    table = serving_outcomes.c
    query = sa.select(table.answered, table.server_errors, table.latency_counts).where(
        table.model_version == model_version,
        table.model_name == model_name,
        table.period_end > since,
        table.period_end <= until,
    )
    answered = errors = 0
    latency = np.zeros(LATENCY_BUCKETS, dtype=np.int64)
    for row in connection.execute(query):
        answered += int(row.answered)
        errors += int(row.server_errors)
        latency += np.frombuffer(row.latency_counts, dtype="<u4")
    return OutcomeTotals(answered, errors, tuple(int(c) for c in latency))
