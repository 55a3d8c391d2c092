"""Serving outcomes and version windows in a real event store (SQLite file and PostgreSQL):
what the runtime counts per request, what canary analysis reads back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlserver.errors import MLServerError

from artpulse_contract.constants import LABELS
from artpulse_contract.events import EventStore, PredictionEvent
from artpulse_contract.events.outcomes import (
    ServingOutcome,
    latency_bucket,
    latency_quantile,
    write_outcomes,
)
from artpulse_contract.events.schema import LATENCY_BOUNDS, LATENCY_BUCKETS, prediction_events
from artpulse_contract.events.version_window import read_version_window
from artpulse_runtime.outcome_tally import OutcomeTally, OutcomeWriter

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MODEL = "artpulse-classifier"


class Clock:
    """A settable clock for the tally's periods."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """An empty store on a SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
    store = EventStore(url)
    yield store
    store.close()


def prediction(at: datetime, version: str, label_index: int, top: float) -> PredictionEvent:
    """An event predicting ``LABELS[label_index]`` with probability ``top``."""
    rest = (1.0 - top) / (len(LABELS) - 1)
    probabilities = tuple(top if i == label_index else rest for i in range(len(LABELS)))
    return PredictionEvent(
        timestamp=at,
        request_id="r",
        model_name=MODEL,
        model_version=version,
        input_kind="features",
        features=(0.5,) * 5,
        label=LABELS[label_index],
        probabilities=probabilities,
    )


def test_latency_buckets_and_quantiles() -> None:
    assert latency_bucket(0.0) == 0
    assert latency_bucket(LATENCY_BOUNDS[3]) == 3  # a bound belongs to its own bucket
    assert latency_bucket(LATENCY_BOUNDS[3] * 1.01) == 4
    assert latency_bucket(3600.0) == LATENCY_BUCKETS - 1
    counts = [0] * LATENCY_BUCKETS
    counts[10] = 100
    # All in one bucket: the quantiles interpolate linearly inside it.
    assert latency_quantile(counts, 0.5) == pytest.approx(
        (LATENCY_BOUNDS[9] + LATENCY_BOUNDS[10]) / 2
    )
    counts[-1] = 900
    assert latency_quantile(counts, 0.95) == LATENCY_BOUNDS[-1]
    assert latency_quantile([0] * LATENCY_BUCKETS, 0.95) is None


def test_a_histogram_of_the_wrong_size_or_negative_counts_is_refused() -> None:
    with pytest.raises(ValueError, match=f"needs {LATENCY_BUCKETS} buckets, got 3"):
        ServingOutcome(T0, T0, "pod", MODEL, "1", 1, 0, (1, 0, 0))
    with pytest.raises(ValueError, match="must not be negative"):
        ServingOutcome(T0, T0, "pod", MODEL, "1", -1, 0)


def test_tally_counts_answers_server_errors_but_not_client_errors() -> None:
    clock = Clock()
    tally = OutcomeTally("pod-a", clock)
    with tally.observe(MODEL, "2"):
        pass
    with pytest.raises(RuntimeError), tally.observe(MODEL, "2"):
        raise RuntimeError("the model crashed")  # no status: a 500 for MLServer
    with pytest.raises(MLServerError), tally.observe(MODEL, "2"):
        raise MLServerError("unavailable", status_code=503)
    with pytest.raises(MLServerError), tally.observe(MODEL, "2"):
        raise MLServerError("bad input", status_code=400)
    tally.answered(MODEL, "3", 0.2)
    clock.now = T0 + timedelta(seconds=5)
    rows = {row.model_version: row for row in tally.take()}
    assert (rows["2"].answered, rows["2"].server_errors) == (1, 2)
    assert rows["3"].latency_counts[latency_bucket(0.2)] == 1
    assert {(r.period_start, r.period_end, r.instance) for r in rows.values()} == {
        (T0, clock.now, "pod-a")
    }
    assert tally.take() == []  # taken means gone


def test_rows_put_back_after_a_failed_write_go_out_with_the_next_period() -> None:
    clock = Clock()
    tally = OutcomeTally("pod-a", clock)
    tally.answered(MODEL, "2", 0.01)
    clock.now = T0 + timedelta(seconds=5)
    failed = tally.take()
    tally.put_back(failed)
    tally.answered(MODEL, "2", 0.01)
    tally.failed(MODEL, "2")
    clock.now = T0 + timedelta(seconds=10)
    [row] = tally.take()
    assert (row.period_start, row.period_end) == (T0, clock.now)
    assert (row.answered, row.server_errors) == (2, 1)
    assert sum(row.latency_counts) == 2


def test_writer_survives_a_store_outage_and_loses_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    store = EventStore(f"sqlite:///{missing / 'events.db'}")
    tally = OutcomeTally("pod-a")
    writer = OutcomeWriter(tally, store, interval=3600)
    tally.answered(MODEL, "2", 0.01)

    async def flush_then_close() -> None:
        # The folder is a file: SQLite cannot open the store, the counts are kept.
        missing.write_text("in the way")
        await writer.flush()
        missing.unlink()
        tally.failed(MODEL, "2")
        await writer.close()

    asyncio.run(flush_then_close())
    until = datetime.now(UTC) + timedelta(seconds=1)
    window = read_version_window(store, MODEL, "2", T0, until)
    assert (window.outcomes.answered, window.outcomes.server_errors) == (1, 1)


def test_version_window_adds_up_predictions_and_outcomes_of_one_version(
    store: EventStore,
) -> None:
    events = [prediction(T0 + timedelta(seconds=i), "2", i % 2, 0.8) for i in range(10)]
    events += [prediction(T0 + timedelta(seconds=i), "3", 4, 0.6) for i in range(4)]
    events.append(prediction(T0 + timedelta(seconds=20), "2", 0, 0.9))  # after the window
    store.write(events)
    latency = [0] * LATENCY_BUCKETS
    latency[5] = 7
    end = T0 + timedelta(seconds=10)
    write_outcomes(
        store,
        [
            ServingOutcome(T0, end, "a", MODEL, "2", 7, 1, tuple(latency)),
            ServingOutcome(T0, end, "b", MODEL, "2", 7, 0, tuple(latency)),
            ServingOutcome(T0, end, "a", MODEL, "3", 2, 2),
            ServingOutcome(end, end + timedelta(seconds=20), "a", MODEL, "2", 50, 50),
        ],
    )
    window = read_version_window(store, MODEL, "2", T0, end)
    assert window.predictions == 10
    assert window.label_counts == (5, 5, 0, 0, 0)
    assert window.mean_top_probability == pytest.approx(0.8)
    assert (window.outcomes.answered, window.outcomes.server_errors) == (14, 1)
    assert window.outcomes.requests == 15
    assert window.outcomes.latency_counts[5] == 14
    other = read_version_window(store, MODEL, "3", T0, end)
    assert (other.predictions, other.label_counts[4], other.outcomes.requests) == (4, 4, 4)
    empty = read_version_window(store, MODEL, "9", T0, end)
    assert (empty.predictions, empty.mean_top_probability, empty.outcomes.requests) == (0, None, 0)


def test_a_store_made_before_serving_outcomes_gets_the_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # an older store: the prediction table only
        prediction_events.create(connection)
    engine.dispose()
    store = EventStore(url)
    store.write([prediction(T0, "2", 0, 0.9)])
    write_outcomes(store, [ServingOutcome(T0, T0 + timedelta(seconds=5), "a", MODEL, "2", 1, 0)])
    window = read_version_window(store, MODEL, "2", T0, T0 + timedelta(seconds=5))
    assert (window.predictions, window.outcomes.answered) == (1, 1)
