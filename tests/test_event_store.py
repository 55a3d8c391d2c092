"""EventStore against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from artpulse_contract.constants import FEATURE_NAMES, LABELS
from artpulse_contract.events import (
    EventChunk,
    EventStore,
    PredictionEvent,
    UnsupportedEventStoreURL,
    events_from_predictions,
    prediction_events,
)
from artpulse_contract.events.columnar import concatenate

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_event(index: int, *, at: datetime, version: str = "1") -> PredictionEvent:
    """A distinct, valid event whose values are derived from ``index``."""
    weights = [float(index % 7 + position + 1) for position in range(len(LABELS))]
    total = sum(weights)
    return PredictionEvent(
        timestamp=at,
        request_id=f"req-{index}",
        model_name="artpulse-classifier",
        model_version=version,
        input_kind="image" if index % 2 else "features",
        features=tuple(index * 0.5 + position / 8 for position in range(len(FEATURE_NAMES))),
        label=LABELS[index % len(LABELS)],
        probabilities=tuple(weight / total for weight in weights),
    )


def read_all(store: EventStore, **filters: Any) -> EventChunk:
    """Every chunk of a read, concatenated into one."""
    chunks = list(store.iter_chunks(**filters))
    if not chunks:
        return EventChunk(
            timestamps=np.empty(0, dtype="datetime64[us]"),
            features=np.empty((0, len(FEATURE_NAMES)), dtype=np.float32),
            labels=np.empty(0, dtype=object),
            model_versions=np.empty(0, dtype=object),
        )
    return concatenate(chunks)


def as_datetime64(moments: Sequence[datetime]) -> np.ndarray:
    """Aware datetimes as naive-UTC ``datetime64[us]``."""
    return np.array([m.astimezone(UTC).replace(tzinfo=None) for m in moments], "datetime64[us]")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty store: a SQLite file in a folder not yet created, or a new PG database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'not-yet' / 'events.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    """An ``EventStore`` on ``store_url``, closed after the test."""
    result = EventStore(store_url)
    yield result
    result.close()


def test_round_trip_keeps_values_time_order_and_utc(store: EventStore) -> None:
    paris = timezone(timedelta(hours=1))
    moments = [
        T0 + timedelta(seconds=5),
        (T0 + timedelta(seconds=1)).astimezone(paris),  # same instant in another zone
        T0 + timedelta(seconds=3, microseconds=7),
        T0 + timedelta(seconds=1),  # ties with the second: insertion order breaks the tie
    ]
    events = [make_event(index, at=moment) for index, moment in enumerate(moments)]
    store.write(events)

    chunk = read_all(store)

    order = [1, 3, 2, 0]
    expected = [events[index] for index in order]
    assert chunk.timestamps.dtype == np.dtype("datetime64[us]")
    np.testing.assert_array_equal(chunk.timestamps, as_datetime64([e.timestamp for e in expected]))
    assert chunk.features.dtype == np.float32
    assert chunk.features.shape == (4, len(FEATURE_NAMES))
    np.testing.assert_array_equal(
        chunk.features, np.array([e.features for e in expected], dtype=np.float32)
    )
    assert chunk.labels.tolist() == [e.label for e in expected]
    assert chunk.model_versions.tolist() == [e.model_version for e in expected]
    assert chunk.probabilities is not None
    np.testing.assert_allclose(chunk.probabilities, [e.probabilities for e in expected], rtol=1e-6)
    assert store.count() == 4

    (without,) = store.iter_chunks(probabilities=False)
    assert without.probabilities is None
    np.testing.assert_array_equal(without.features, chunk.features)
    assert without.labels.tolist() == chunk.labels.tolist()


@pytest.mark.postgres
def test_postgresql_session_time_zone_does_not_shift_anything(fresh_postgres_url: str) -> None:
    tokyo = EventStore(f"{fresh_postgres_url}?options=-c%20TimeZone%3DAsia/Tokyo")
    events = [make_event(index, at=T0 + timedelta(hours=index)) for index in range(4)]
    tokyo.write(events)
    default = EventStore(fresh_postgres_url)

    for store in (tokyo, default):
        chunk = read_all(store, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
        np.testing.assert_array_equal(
            chunk.timestamps, as_datetime64([e.timestamp for e in events[1:3]])
        )
    with tokyo.engine.connect() as connection:
        assert connection.execute(sa.text("SHOW TimeZone")).scalar_one() == "Asia/Tokyo"
    tokyo.close()
    default.close()


def test_reads_filter_by_window_and_version(store: EventStore) -> None:
    events = [
        make_event(index, at=T0 + timedelta(minutes=index), version="1" if index < 6 else "2")
        for index in range(10)
    ]
    store.write(events)
    since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=8)

    window = read_all(store, since=since, until=until)
    version_two = read_all(store, model_version="2")
    both = read_all(store, since=since, until=until, model_version="2")

    expected_window = [e.timestamp for e in events[3:8]]  # since inclusive, until exclusive
    np.testing.assert_array_equal(window.timestamps, as_datetime64(expected_window))
    assert version_two.model_versions.tolist() == ["2"] * 4
    np.testing.assert_array_equal(
        both.timestamps, as_datetime64([e.timestamp for e in events[6:8]])
    )
    assert store.count(since=since, until=until) == 5
    assert store.count(model_version="2") == 4
    assert store.count(since=since, until=until, model_version="2") == 2
    assert store.count(model_version="nope") == 0
    assert list(store.iter_chunks(model_version="nope")) == []


def test_last_n_returns_the_newest_oldest_first(store: EventStore) -> None:
    events = [
        make_event(index, at=T0 + timedelta(seconds=index // 3), version=str(index % 2))
        for index in range(30)
    ]
    store.write(events)

    last_seven = read_all(store, last_n=7, chunk_size=3)
    last_of_version = read_all(store, last_n=4, model_version="1", chunk_size=2)
    more_than_stored = read_all(store, last_n=1000, chunk_size=8)

    assert last_seven.labels.tolist() == [e.label for e in events[-7:]]
    np.testing.assert_array_equal(last_seven.features, [e.features for e in events[-7:]])
    odd = [e for e in events if e.model_version == "1"]
    np.testing.assert_array_equal(last_of_version.features, [e.features for e in odd[-4:]])
    assert len(more_than_stored) == 30


def test_chunks_cross_boundaries_without_gaps_or_repeats(store_url: str) -> None:
    # Five events share each timestamp, so chunk boundaries fall inside runs of ties; the
    # driver hands rows over three at a time, so partitions split chunks too.
    store = EventStore(store_url, read_partition=3)
    events = [make_event(index, at=T0 + timedelta(seconds=index // 5)) for index in range(53)]
    store.write(events[:20])
    store.write(events[20:])

    chunks = list(store.iter_chunks(chunk_size=7))

    assert [len(chunk) for chunk in chunks] == [7] * 7 + [4]
    features = np.concatenate([chunk.features for chunk in chunks])
    np.testing.assert_array_equal(features, np.array([e.features for e in events], np.float32))
    assert [len(chunk) for chunk in store.iter_chunks(chunk_size=53)] == [53]
    last = read_all(store, last_n=11, chunk_size=4)
    np.testing.assert_array_equal(last.features, np.array([e.features for e in events[-11:]]))
    assert last.probabilities is not None
    np.testing.assert_allclose(
        last.probabilities, [e.probabilities for e in events[-11:]], rtol=1e-6
    )
    store.close()


def test_empty_store_reads_nothing(store: EventStore) -> None:
    assert store.count() == 0
    assert list(store.iter_chunks()) == []
    assert list(store.iter_chunks(last_n=5)) == []
    store.write([])
    assert store.count() == 0


def test_schema_creation_is_idempotent_and_safe_when_racing(store_url: str) -> None:
    stores = [EventStore(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def first_use(store: EventStore, index: int) -> None:
        barrier.wait()
        try:
            store.write([make_event(index, at=T0)])
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [
        threading.Thread(target=first_use, args=(store, index))
        for index, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    again = EventStore(store_url)
    again.ensure_schema()
    again.ensure_schema()
    assert again.count() == 4
    indexes = {index["name"] for index in sa.inspect(again.engine).get_indexes("prediction_events")}
    assert {"ix_prediction_events_timestamp", "ix_prediction_events_model_version"} <= indexes
    for store in [*stores, again]:
        store.close()


def test_features_are_float_columns_sql_can_aggregate(store: EventStore) -> None:
    events = [make_event(index, at=T0) for index in range(4)]
    store.write(events)
    query = sa.select(
        sa.func.avg(prediction_events.c.hue_mean), sa.func.max(prediction_events.c.edges)
    )
    with store.engine.connect() as connection:
        mean_hue, max_edges = connection.execute(query).one()

    assert math.isclose(mean_hue, np.mean([e.features[0] for e in events]), rel_tol=1e-6)
    assert math.isclose(max_edges, max(e.features[4] for e in events), rel_tol=1e-6)


def test_sqlite_store_creates_its_folder_and_reads_while_another_writer_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "state" / "events.db"
    store = EventStore(f"sqlite:///{path}")
    store.write([make_event(0, at=T0)])
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock until COMMIT
    writer.execute("DELETE FROM prediction_events")

    assert store.count() == 1  # WAL: the reader sees the last commit and is not blocked
    writer.execute("COMMIT")
    assert store.count() == 0
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    writer.close()
    store.close()


def test_bad_arguments_are_refused_with_the_value_named(store: EventStore) -> None:
    with pytest.raises(ValueError, match="since must be a timezone-aware"):
        store.count(since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        store.iter_chunks(chunk_size=0)
    with pytest.raises(ValueError, match="last_n must be a positive integer, got -1"):
        store.iter_chunks(last_n=-1)
    with pytest.raises(ValueError, match="read_partition must be a positive integer, got 0"):
        EventStore("sqlite://", read_partition=0)


def test_unsupported_urls_are_refused_and_postgresql_means_psycopg() -> None:
    with pytest.raises(UnsupportedEventStoreURL, match="mysql"):
        EventStore("mysql://user:secret@db/events")
    with pytest.raises(UnsupportedEventStoreURL, match="not a SQLAlchemy URL"):
        EventStore("events.db")
    store = EventStore("postgresql://artpulse:secret@127.0.0.1:1/events")
    assert store.engine.dialect.driver == "psycopg"
    assert "secret" not in store.display_url


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timestamp", datetime(2026, 1, 1), "timestamp must be timezone-aware"),
        ("input_kind", "video", "input_kind must be one of"),
        ("features", np.ones((2, 4)), r"features has shape \(2, 4\); expected \(2, 5\)"),
        ("features", [[1, 2, float("nan"), 4, 5]] * 2, "features must be finite float32"),
        ("features", [[1, 2, 3, 4, 1e39]] * 2, "features must be finite float32"),
        ("probabilities", [[0.2, 0.2, float("inf"), 0.2, 0.2]] * 2, "probabilities must be"),
        ("labels", ["minimal"], r"features has shape \(2, 5\); expected \(1, 5\)"),
    ],
)
def test_a_batch_with_an_invalid_value_is_refused_whole(
    field: str, value: object, message: str
) -> None:
    arguments: dict[str, Any] = {
        "timestamp": T0,
        "request_id": "r",
        "model_name": "m",
        "model_version": "3",
        "input_kind": "features",
        "features": np.full((2, 5), 0.5, dtype=np.float32),
        "labels": ["minimal", "surreal"],
        "probabilities": np.full((2, 5), 0.2, dtype=np.float32),
        field: value,
    }
    with pytest.raises(ValueError, match=message):
        events_from_predictions(**arguments)


def test_events_from_predictions_makes_one_event_per_row() -> None:
    features = np.arange(10, dtype=np.float32).reshape(2, 5)
    probabilities = np.full((2, 5), 0.2, dtype=np.float32)

    events = events_from_predictions(
        timestamp=T0,
        request_id="r",
        model_name="m",
        model_version="3",
        input_kind="features",
        features=features,
        labels=["minimal", "surreal"],
        probabilities=probabilities,
    )

    assert [e.label for e in events] == ["minimal", "surreal"]
    assert events[1].features == (5.0, 6.0, 7.0, 8.0, 9.0)
    assert all(isinstance(value, float) for value in events[0].probabilities)
