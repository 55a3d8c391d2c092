"""The on-disk event spool itself: its segment files (every field, damage detected, the byte
bound), live and closed spools, and a killed process's segments adopted by the next spool. A
recorder replaying through outages is ``test_event_spool_replay.py``'s.

Faults are real: a process killed with SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from test_event_recorder import T0, make_events

from artpulse_contract.events.ids import new_event_ids
from artpulse_contract.events.spool import CORRUPT_DIR, Spool
from artpulse_contract.events.spool_format import CorruptSegmentError, decode_segment

SPOOL_BYTES = 10_000_000


def blocked_sqlite(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite store that cannot be written until the returned blocker file is removed."""
    blocker = tmp_path / "state"
    blocker.write_text("a file where the store's folder should be")
    return f"sqlite:///{blocker / 'events.db'}", blocker


def segment_files(root: Path) -> list[Path]:
    return sorted(path for path in root.glob("*/*.seg") if path.parent.name != CORRUPT_DIR)


def test_a_segment_round_trips_every_field_exactly(tmp_path: Path) -> None:
    events = make_events(5, prefix="réq-ü")
    ids = new_event_ids(5)
    spool = Spool(tmp_path / "spool", SPOOL_BYTES)
    assert spool.append(events, ids) == 5
    segment = spool.oldest()
    assert segment is not None and segment.events == 5
    read_events, read_ids = spool.read(segment)
    assert read_events == events and read_ids == ids
    assert read_events[0].timestamp == T0 and read_events[0].timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:-3], "payload is"),
        (lambda data: data[:10], "shorter than a header"),
        (lambda data: b"XXXXXXXX" + data[8:], "bad magic"),
        (lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:], "checksum"),
    ],
)
def test_damaged_segments_are_detected(tmp_path: Path, damage: object, message: str) -> None:
    spool = Spool(tmp_path / "spool", SPOOL_BYTES)
    spool.append(make_events(3), new_event_ids(3))
    segment = spool.oldest()
    assert segment is not None
    data = segment.path.read_bytes()
    with pytest.raises(CorruptSegmentError, match=message):
        decode_segment(damage(data))  # type: ignore[operator]


def test_the_byte_bound_keeps_a_prefix_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1000)
    events = make_events(50)
    kept = spool.append(events, new_event_ids(50))
    assert 0 < kept < 50
    assert spool.size_bytes <= 1000
    segment = spool.oldest()
    assert segment is not None
    assert [event.request_id for event in spool.read(segment)[0]] == [
        event.request_id for event in events[:kept]
    ]
    assert spool.append(make_events(1), new_event_ids(1)) == 0


def test_a_live_spool_is_left_alone_and_a_closed_one_is_adopted_in_order(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    first = Spool(root, SPOOL_BYTES)
    for start in range(3):
        first.append(make_events(4, prefix=f"s{start}"), new_event_ids(4))
    second = Spool(root, SPOOL_BYTES)
    assert second.oldest() is None, "adopted the segments of a live spool"
    first.close()
    assert second.adopt_orphans() == 3
    replayed = []
    while (segment := second.oldest()) is not None:
        replayed += [event.request_id for event in second.read(segment)[0]]
        second.remove(segment)
    assert replayed == [f"s{start}-{index}" for start in range(3) for index in range(4)]


def test_a_killed_process_leaves_its_segments_to_the_next_spool(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from artpulse_contract.events.ids import new_event_ids
        from artpulse_contract.events.spool import Spool
        from test_event_recorder import make_events
        spool = Spool(Path({str(root)!r}), {SPOOL_BYTES})
        spool.append(make_events(7, prefix="killed"), new_event_ids(7))
        print("spooled", flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "spooled"
    assert Spool(root, SPOOL_BYTES).oldest() is None  # the child is alive and holds its lock
    child.send_signal(signal.SIGKILL)
    child.wait()
    heir = Spool(root, SPOOL_BYTES)
    segment = heir.oldest()
    assert segment is not None
    assert [event.request_id for event in heir.read(segment)[0]] == [
        f"killed-{index}" for index in range(7)
    ]
