"""Live traffic as the runtime records it, written straight into a real event store: prediction
events and serving outcomes of one model version, for canary analysis tests and the bench."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from artpulse_contract.constants import LABELS, MODEL_NAME
from artpulse_contract.events import EventStore, PredictionEvent
from artpulse_contract.events.outcomes import ServingOutcome, latency_bucket, write_outcomes
from artpulse_contract.events.schema import LATENCY_BUCKETS

EVEN = (0.2, 0.2, 0.2, 0.2, 0.2)
"""The stable version's label distribution in the tests."""
SHIFTED = (0.05, 0.05, 0.8, 0.05, 0.05)
"""A canary that predicts ``surreal`` most of the time."""


def predictions(
    version: str,
    count: int,
    weights: Sequence[float] = EVEN,
    top: float = 0.8,
    *,
    at: datetime | None = None,
    seed: int = 0,
) -> list[PredictionEvent]:
    """``count`` predictions of ``version`` whose labels follow ``weights`` exactly (largest
    remainders), each with probability ``top`` for its label, at ``at`` (default now)."""
    moment = at or datetime.now(UTC)
    shares = np.asarray(weights, dtype=np.float64) * count
    per_label = np.floor(shares).astype(int)
    extra = np.argsort(per_label - shares)[: count - int(per_label.sum())]
    per_label[extra] += 1
    indices = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(LABELS)), per_label))
    rest = (1.0 - top) / (len(LABELS) - 1)
    return [
        PredictionEvent(
            timestamp=moment,
            request_id=f"traffic-{version}-{seed}-{n}",
            model_name=MODEL_NAME,
            model_version=version,
            input_kind="features",
            features=(0.5,) * len(LABELS),
            label=LABELS[index],
            probabilities=tuple(top if i == index else rest for i in range(len(LABELS))),
        )
        for n, index in enumerate(indices)
    ]


def outcome(
    version: str,
    answered: int,
    server_errors: int = 0,
    latency_seconds: float = 0.01,
    *,
    at: datetime | None = None,
    instance: str = "test-pod",
) -> ServingOutcome:
    """A serving-outcome row of ``version`` for the 5 s ending at ``at`` (default now)."""
    end = at or datetime.now(UTC)
    latency = [0] * LATENCY_BUCKETS
    latency[latency_bucket(latency_seconds)] = answered
    return ServingOutcome(
        end - timedelta(seconds=5),
        end,
        instance,
        MODEL_NAME,
        version,
        answered,
        server_errors,
        tuple(latency),
    )


def write_traffic(
    store: EventStore,
    version: str,
    count: int,
    weights: Sequence[float] = EVEN,
    top: float = 0.8,
    *,
    server_errors: int = 0,
    latency_seconds: float = 0.01,
    seed: int = 0,
) -> None:
    """``count`` answered single-prediction requests of ``version`` (and ``server_errors``
    failed ones), as the runtime would have recorded them just now."""
    store.write(predictions(version, count, weights, top, seed=seed))
    write_outcomes(store, [outcome(version, count, server_errors, latency_seconds)])
