"""A recorder with an event spool keeps every event: through outages longer than its memory
(SQLite and PostgreSQL), a close during an outage, corrupt segments, a full spool and replays
(stored once), and a table from before event ids. The spool's own files are
``test_event_spool.py``'s.

Faults are real: a SQLite store whose folder is a file, a PostgreSQL server stopped and
started.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from test_event_recorder import T0, make_events, stored_request_ids
from test_event_spool import SPOOL_BYTES, blocked_sqlite, segment_files

from artpulse_contract.events import EventRecorder, EventStore, prediction_events
from artpulse_contract.events.ids import new_event_ids
from artpulse_contract.events.spool import CORRUPT_DIR
from support.polling import wait_for
from support.postgres import restartable_postgres


def test_an_outage_longer_than_memory_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    url, blocker = blocked_sqlite(tmp_path)
    recorder = EventRecorder(
        url,
        max_queue=100,
        batch_size=20,
        flush_interval=0.01,
        spool_dir=tmp_path / "spool",
        spool_max_bytes=SPOOL_BYTES,
    )
    recorder.start()
    events = make_events(1000)
    for start in range(0, 1000, 10):
        wait_for("room in memory", lambda: recorder.queue_depth <= 90)  # the spool keeps up
        recorder.record(events[start : start + 10])
    wait_for("everything spooled", lambda: recorder.spooled_events == 1000)
    assert recorder.dropped_total == 0 and recorder.written_total == 0
    assert len(segment_files(tmp_path / "spool")) > 1

    blocker.unlink()
    assert recorder.flush(timeout=60)
    recorder.close()
    assert stored_request_ids(url) == [event.request_id for event in events]
    assert (recorder.written_total, recorder.dropped_total, recorder.spool_bytes) == (1000, 0, 0)
    assert segment_files(tmp_path / "spool") == []


def test_close_during_an_outage_spools_memory_and_the_next_recorder_replays(
    tmp_path: Path,
) -> None:
    url, blocker = blocked_sqlite(tmp_path)
    options = {"spool_dir": tmp_path / "spool", "spool_max_bytes": SPOOL_BYTES}
    first = EventRecorder(url, batch_size=50, flush_interval=3600, **options)  # type: ignore[arg-type]
    first.start()
    first.record(make_events(30, prefix="before-close"))  # held in memory (long interval)
    first.close(timeout=30)  # the store is down: memory goes to the spool, close returns
    assert (first.dropped_total, first.written_total) == (0, 0)
    assert len(segment_files(tmp_path / "spool")) == 1

    blocker.unlink()
    second = EventRecorder(url, flush_interval=0.01, **options)  # type: ignore[arg-type]
    second.start()
    second.record(make_events(5, prefix="after-restart"))
    wait_for("the spool replayed", lambda: second.written_total == 35)
    second.close()
    assert stored_request_ids(url) == [
        *(f"before-close-{index}" for index in range(30)),
        *(f"after-restart-{index}" for index in range(5)),
    ]


def test_a_corrupt_segment_is_set_aside_and_the_rest_replayed(tmp_path: Path) -> None:
    url, blocker = blocked_sqlite(tmp_path)
    options = {"spool_dir": tmp_path / "spool", "spool_max_bytes": SPOOL_BYTES}
    first = EventRecorder(url, batch_size=10, flush_interval=0.01, **options)  # type: ignore[arg-type]
    first.start()
    for part in range(3):
        first.record(make_events(10, prefix=f"part{part}"))
        wait_for("a segment per part", lambda p=part: first.spooled_events == 10 * (p + 1))
    first.close()
    files = segment_files(tmp_path / "spool")
    assert len(files) == 3
    damaged = bytearray(files[1].read_bytes())
    damaged[-1] ^= 0xFF
    files[1].write_bytes(bytes(damaged))

    blocker.unlink()
    second = EventRecorder(url, flush_interval=0.01, **options)  # type: ignore[arg-type]
    second.start()
    wait_for("the good segments replayed", lambda: second.written_total == 20)
    wait_for("the corrupt one set aside", lambda: second.corrupt_segments_total == 1)
    second.close()
    assert stored_request_ids(url) == [
        *(f"part0-{index}" for index in range(10)),
        *(f"part2-{index}" for index in range(10)),
    ]
    assert len(list((tmp_path / "spool" / CORRUPT_DIR).iterdir())) == 1
    assert second.dropped_total == 0


def test_a_full_spool_drops_only_what_exceeds_it(tmp_path: Path) -> None:
    url, blocker = blocked_sqlite(tmp_path)
    recorder = EventRecorder(
        url,
        max_queue=50,
        batch_size=10,
        flush_interval=0.01,
        spool_dir=tmp_path / "spool",
        spool_max_bytes=3000,
    )
    recorder.start()
    for start in range(0, 400, 10):
        recorder.record(make_events(10, prefix=f"r{start}"))
        wait_for("memory spilled", lambda: recorder.queue_depth == 0)
    assert 0 < recorder.spooled_events < 400
    assert recorder.dropped_total == 400 - recorder.spooled_events
    assert recorder.spool_bytes <= 3000
    blocker.unlink()
    assert recorder.flush(timeout=60)
    recorder.close()
    assert len(stored_request_ids(url)) + recorder.dropped_total == 400


def test_a_segment_replayed_twice_is_stored_once(tmp_path: Path) -> None:
    url, blocker = blocked_sqlite(tmp_path)
    options = {"spool_dir": tmp_path / "spool", "spool_max_bytes": SPOOL_BYTES}
    first = EventRecorder(url, flush_interval=0.01, **options)  # type: ignore[arg-type]
    first.start()
    first.record(make_events(25))
    wait_for("the events spooled", lambda: first.spooled_events == 25)
    first.close()
    [segment] = segment_files(tmp_path / "spool")
    copy = segment.read_bytes()

    blocker.unlink()
    for _ in range(2):  # the second time as after a crash between the commit and the delete
        recorder = EventRecorder(url, flush_interval=0.01, **options)  # type: ignore[arg-type]
        recorder.start()
        wait_for("the segment replayed", lambda r=recorder: r.written_total == 25)
        recorder.close()
        segment.parent.mkdir(parents=True, exist_ok=True)
        segment.write_bytes(copy)
    assert stored_request_ids(url) == [f"req-{index}" for index in range(25)]


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_stopped_longer_than_memory_then_started_loses_nothing(tmp_path: Path) -> None:
    with restartable_postgres() as postgres:
        recorder = EventRecorder(
            postgres.url,
            max_queue=50,
            batch_size=20,
            flush_interval=0.02,
            spool_dir=tmp_path / "spool",
            spool_max_bytes=SPOOL_BYTES,
        )
        recorder.start()
        recorder.record(make_events(10, prefix="before"))
        wait_for("events written before the outage", lambda: recorder.written_total == 10)

        postgres.stop()
        during = make_events(600, prefix="during")
        for start in range(0, 600, 20):
            wait_for("room in memory", lambda: recorder.queue_depth <= 30)  # the spool keeps up
            recorder.record(during[start : start + 20])
        wait_for("all spooled", lambda: recorder.spooled_events == 600)
        assert recorder.dropped_total == 0 and recorder.write_failures_total >= 1

        postgres.start()
        assert recorder.flush(timeout=120)
        recorder.close()
        stored = stored_request_ids(postgres.url)
    assert stored == [f"before-{index}" for index in range(10)] + [e.request_id for e in during]
    assert recorder.dropped_total == 0


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_table_from_before_event_ids_gets_the_column_and_keeps_its_rows(
    tmp_path: Path, request: pytest.FixtureRequest, dialect: str
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if dialect == "sqlite"
        else str(request.getfixturevalue("fresh_postgres_url"))
    )
    old = sa.MetaData()
    old_table = sa.Table(
        prediction_events.name,
        old,
        *(
            sa.Column(
                column.name,
                column.type,
                primary_key=column.primary_key,
                nullable=column.nullable,
            )
            for column in prediction_events.columns
            if column.name != "event_id"
        ),
    )
    engine = sa.create_engine(url)
    old.create_all(engine)
    EventStore(url)  # nothing happens before first use
    with engine.begin() as connection:
        columns = [column.name for column in old_table.columns if column.name != "id"]
        connection.execute(
            old_table.insert(),
            [
                {name: value for name, value in zip(columns, row, strict=True)}
                for row in [
                    (
                        T0,
                        "legacy",
                        "artpulse-classifier",
                        "1",
                        "image",
                        *([0.5] * 5),
                        "minimal",
                        bytes(20),
                    )
                ]
            ],
        )
    engine.dispose()

    store = EventStore(url)
    events, ids = make_events(3), new_event_ids(3)
    store.write(events, ids)
    store.write(events, ids)  # the same events again: skipped by their ids
    assert store.count() == 4
    store.close()
    assert stored_request_ids(url) == ["legacy", "req-0", "req-1", "req-2"]


def test_the_recorder_without_a_spool_still_waits_and_drops_as_before(tmp_path: Path) -> None:
    url, _ = blocked_sqlite(tmp_path)
    recorder = EventRecorder(url, max_queue=10, flush_interval=0.01)
    recorder.start()
    recorder.record(make_events(15))
    recorder.close(timeout=0.2)
    assert (recorder.dropped_total, recorder.spooled_events) == (15, 0)
    assert not any(tmp_path.glob("**/*.seg"))
