"""What the event store holds about one model version over one window of time, added up:
the predictions (how many, per label, their mean top probability) and the serving outcomes
(answered, server errors, latency histogram). Canary analysis reads one for the candidate and
one for the stable version over the same window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from artpulse_contract.constants import LABELS
from artpulse_contract.events.outcomes import OutcomeTotals, outcome_totals
from artpulse_contract.events.schema import prediction_events
from artpulse_contract.events.store import READ_PARTITION, EventStore
from artpulse_contract.label_stats import LabelAccumulator


@dataclass(frozen=True)
class VersionWindow:
    """One model version's events over one window."""

    version: str
    predictions: int
    label_counts: tuple[int, ...]
    """Predictions per label, in ``LABELS`` order (labels outside ``LABELS`` are left out)."""
    top_probability_sum: float
    """Sum over predictions of the probability of the predicted label."""
    outcomes: OutcomeTotals

    @property
    def mean_top_probability(self) -> float | None:
        """Mean probability of the predicted label (the model's confidence); None if empty."""
        return self.top_probability_sum / self.predictions if self.predictions else None

    @classmethod
    def empty(cls, version: str) -> VersionWindow:
        """A window of ``version`` with no events."""
        return cls(version, 0, (0,) * len(LABELS), 0.0, OutcomeTotals())

    def __add__(self, other: VersionWindow) -> VersionWindow:
        """The window covering both (adjoining windows of the same version)."""
        if other.version != self.version:
            raise ValueError(f"cannot add windows of versions {self.version} and {other.version}")
        return VersionWindow(
            self.version,
            self.predictions + other.predictions,
            tuple(a + b for a, b in zip(self.label_counts, other.label_counts, strict=True)),
            self.top_probability_sum + other.top_probability_sum,
            self.outcomes + other.outcomes,
        )


def _predictions(
    connection: Connection, model_name: str, version: str, since: datetime, until: datetime
) -> tuple[int, tuple[int, ...], float]:
    table = prediction_events.c
    query = (
        sa.select(table.label, table.probabilities)
        .where(
            table.model_version == version,
            table.timestamp >= since,
            table.timestamp < until,
            table.model_name == model_name,
        )
        .execution_options(yield_per=READ_PARTITION)
    )
    labels = LabelAccumulator()
    count, top_sum = 0, 0.0
    for rows in connection.execute(query).partitions():
        labels.update([row[0] for row in rows])
        probabilities = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4")
        top_sum += float(probabilities.reshape(-1, len(LABELS)).max(axis=1).sum(dtype=np.float64))
        count += len(rows)
    return count, tuple(int(n) for n in labels.counts), top_sum


def read_version_window(
    store: EventStore, model_name: str, version: str, since: datetime, until: datetime
) -> VersionWindow:
    """Version ``version`` of ``model_name``: its predictions with ``since <= timestamp <
    until`` and its serving outcomes whose period ended in ``(since, until]``."""
    store.ensure_schema()
    with store.engine.connect() as connection:
        count, label_counts, top_sum = _predictions(connection, model_name, version, since, until)
        outcomes = outcome_totals(connection, model_name, version, since, until)
    return VersionWindow(version, count, label_counts, top_sum, outcomes)
