"""EventRecorder against real databases, including real outages (no mocks)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from artpulse_contract.constants import LABELS
from artpulse_contract.events import EventRecorder, EventStore, PredictionEvent, prediction_events
from support.environment import free_port
from support.polling import wait_for
from support.postgres import restartable_postgres

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_events(
    count: int, *, prefix: str = "req", label: str | None = None
) -> list[PredictionEvent]:
    """``count`` valid events with request ids ``<prefix>-<i>``."""
    return [
        PredictionEvent(
            timestamp=T0 + timedelta(milliseconds=index),
            request_id=f"{prefix}-{index}",
            model_name="artpulse-classifier",
            model_version="1",
            input_kind="image",
            features=(0.1, 0.2, 0.3, 0.4, float(index)),
            label=label or LABELS[index % len(LABELS)],
            probabilities=(0.2, 0.2, 0.2, 0.2, 0.2),
        )
        for index in range(count)
    ]


def stored_request_ids(url: str) -> list[str]:
    """Request ids in the store at ``url``, in insertion order."""
    store = EventStore(url)
    query = sa.select(prediction_events.c.request_id).order_by(prediction_events.c.id)
    with store.engine.connect() as connection:
        ids = list(connection.execute(query).scalars())
    store.close()
    return ids


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty store on SQLite or on a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture(params=["sqlite-folder-is-a-file", "postgresql-nobody-listening"])
def unwritable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store that cannot be written: a real fault, not a mock."""
    if request.param == "sqlite-folder-is-a-file":
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where the store's folder should be")
        return f"sqlite:///{blocker / 'events.db'}"
    return f"postgresql+psycopg://artpulse@127.0.0.1:{free_port()}/artpulse"


def test_everything_recorded_from_threads_and_asyncio_is_written_after_close(
    store_url: str,
) -> None:
    recorder = EventRecorder(store_url, max_queue=100_000, batch_size=64, flush_interval=0.05)
    recorder.start()

    def from_thread(name: str) -> None:
        events = make_events(500, prefix=name)
        for start in range(0, len(events), 3):
            recorder.record(events[start : start + 3])

    async def from_asyncio() -> None:
        async def task(name: str) -> None:
            for event in make_events(100, prefix=name):
                recorder.record([event])
                await asyncio.sleep(0)

        await asyncio.gather(*(task(f"async{number}") for number in range(3)))

    threads = [threading.Thread(target=from_thread, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    asyncio.run(from_asyncio())
    for thread in threads:
        thread.join()
    recorder.close()

    expected = {event.request_id for n in range(4) for event in make_events(500, prefix=f"t{n}")}
    expected |= {e.request_id for n in range(3) for e in make_events(100, prefix=f"async{n}")}
    stored = stored_request_ids(store_url)
    assert len(stored) == len(expected) == 2300
    assert set(stored) == expected
    assert (recorder.written_total, recorder.dropped_total, recorder.queue_depth) == (2300, 0, 0)
    assert recorder.write_failures_total == 0


def test_a_partial_batch_is_written_once_the_flush_interval_passes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    recorder = EventRecorder(url, batch_size=1000, flush_interval=0.05)
    recorder.start()
    recorder.record(make_events(3))

    wait_for("3 events written without close", lambda: recorder.written_total == 3)
    assert stored_request_ids(url) == ["req-0", "req-1", "req-2"]
    assert recorder.queue_depth == 0
    recorder.close()


def test_flush_writes_at_once_and_reports_success(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    recorder = EventRecorder(url, batch_size=1000, flush_interval=3600)
    recorder.start()
    recorder.record(make_events(7))

    assert recorder.flush(timeout=30)
    assert len(stored_request_ids(url)) == 7
    recorder.close()


def test_a_full_queue_drops_and_counts_exactly_the_excess(unwritable_url: str) -> None:
    recorder = EventRecorder(unwritable_url, max_queue=100, batch_size=10, flush_interval=0.01)
    recorder.start()
    recorder.record(make_events(1))
    wait_for("a failed write", lambda: recorder.write_failures_total >= 1)

    for start in range(0, 136, 8):  # 136 more events: 137 offered, room for 100
        recorder.record(make_events(136)[start : start + 8])
    recorder.record(make_events(5, prefix="late"))

    assert recorder.queue_depth == 100
    assert recorder.dropped_total == 37 + 5
    assert recorder.written_total == 0

    recorder.close(timeout=0.2)  # the store never comes back: the 100 queued are lost, counted
    assert (recorder.queue_depth, recorder.dropped_total, recorder.written_total) == (0, 142, 0)


def test_recovers_by_itself_when_the_sqlite_folder_becomes_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder yet")
    url = f"sqlite:///{blocker / 'events.db'}"
    recorder = EventRecorder(url, batch_size=8, flush_interval=0.01)
    recorder.start()
    recorder.record(make_events(30))
    wait_for("two failed writes (a retry)", lambda: recorder.write_failures_total >= 2)
    assert recorder.queue_depth == 30

    blocker.unlink()  # the fault goes away; nothing is restarted

    wait_for("all 30 events written after recovery", lambda: recorder.written_total == 30)
    recorder.close()
    assert stored_request_ids(url) == [f"req-{index}" for index in range(30)]
    assert recorder.dropped_total == 0


def test_close_waits_out_a_short_outage_and_loses_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a folder yet")
    url = f"sqlite:///{blocker / 'events.db'}"
    recorder = EventRecorder(url, batch_size=5, flush_interval=0.01)
    recorder.start()
    recorder.record(make_events(12))

    def end_outage_after_a_failure() -> None:
        wait_for("a failed write", lambda: recorder.write_failures_total >= 1)
        blocker.unlink()

    fixer = threading.Thread(target=end_outage_after_a_failure)
    fixer.start()
    recorder.close(timeout=60)  # graceful shutdown during the outage
    fixer.join()

    assert stored_request_ids(url) == [f"req-{index}" for index in range(12)]
    assert (recorder.written_total, recorder.dropped_total, recorder.queue_depth) == (12, 0, 0)


def test_record_returns_while_the_writer_waits_on_a_locked_database(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}?timeout=0.2"  # the writer waits 0.2 s for the lock, then retries
    EventStore(url).ensure_schema()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    recorder = EventRecorder(url, batch_size=5, flush_interval=0.01)
    recorder.start()

    recorder.record(make_events(5, prefix="first"))
    wait_for("a write stuck on the lock", lambda: recorder.write_failures_total >= 1)
    recorder.record(make_events(7, prefix="second"))  # the writer is waiting or retrying
    assert (recorder.queue_depth, recorder.written_total, recorder.dropped_total) == (12, 0, 0)

    holder.execute("COMMIT")
    holder.close()
    recorder.close()
    assert len(stored_request_ids(url)) == 12
    assert recorder.dropped_total == 0


def test_two_recorders_share_one_store(store_url: str) -> None:
    # Two server processes (here: two engines, two connection pools) writing at once.
    recorders = [EventRecorder(store_url, batch_size=20, flush_interval=0.01) for _ in range(2)]
    for recorder in recorders:
        recorder.start()
    events = [make_events(1000, prefix=f"r{number}") for number in range(2)]
    for start in range(0, 1000, 10):
        for recorder, own in zip(recorders, events, strict=True):
            recorder.record(own[start : start + 10])
    for recorder in recorders:
        recorder.close()

    stored = stored_request_ids(store_url)
    assert len(stored) == 2000
    assert set(stored) == {f"r{n}-{i}" for n in range(2) for i in range(1000)}


@pytest.mark.postgres
@pytest.mark.slow
def test_recovers_by_itself_when_postgresql_comes_back() -> None:
    with restartable_postgres() as postgres:
        url = postgres.url
        recorder = EventRecorder(url, batch_size=8, flush_interval=0.01)
        recorder.start()
        recorder.record(make_events(10, prefix="before"))
        wait_for("events written before the outage", lambda: recorder.written_total == 10)

        postgres.stop()
        recorder.record(make_events(20, prefix="during"))
        wait_for("failed writes during the outage", lambda: recorder.write_failures_total >= 2)
        assert recorder.queue_depth == 20
        postgres.start()

        wait_for("events written after the restart", lambda: recorder.written_total == 30)
        recorder.close()
        stored = stored_request_ids(url)
    assert stored[:10] == [f"before-{index}" for index in range(10)]
    assert sorted(stored[10:]) == sorted(f"during-{index}" for index in range(20))
    assert recorder.dropped_total == 0


def test_rows_the_database_refuses_are_dropped_alone(store_url: str) -> None:
    # A real refusal: the table pre-exists with a CHECK constraint the events break.
    strict = prediction_events.to_metadata(sa.MetaData())
    strict.append_constraint(sa.CheckConstraint("label <> 'surreal'", name="no_surreal"))
    engine = sa.create_engine(store_url)
    strict.create(engine)
    engine.dispose()
    recorder = EventRecorder(store_url, batch_size=10, flush_interval=0.01)
    recorder.start()
    events = make_events(10)  # labels cycle through LABELS: two are "surreal"
    recorder.record(events)
    recorder.close()

    kept = [event.request_id for event in events if event.label != "surreal"]
    assert stored_request_ids(store_url) == kept
    assert (recorder.written_total, recorder.dropped_total, recorder.queue_depth) == (8, 2, 0)
    assert recorder.write_failures_total >= 1


def test_close_flushes_without_start_is_idempotent_and_later_records_drop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    recorder = EventRecorder(url)
    recorder.record(make_events(4))  # accepted before start

    recorder.close()
    recorder.close()
    recorder.record(make_events(3))

    assert len(stored_request_ids(url)) == 4
    assert (recorder.written_total, recorder.dropped_total, recorder.queue_depth) == (4, 3, 0)


def test_record_survives_bad_input_and_keeps_working(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    recorder = EventRecorder(url, flush_interval=0.01)
    recorder.start()

    recorder.record(None)  # type: ignore[arg-type]
    recorder.record(make_events(2))
    recorder.close()

    assert recorder.written_total == 2


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"max_queue >= 1.*got 0"):
        EventRecorder("sqlite://", max_queue=0)
    with pytest.raises(ValueError, match="flush_interval > 0"):
        EventRecorder("sqlite://", flush_interval=0)
