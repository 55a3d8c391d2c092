"""A bounded on-disk spool of prediction events: segment files, oldest first.

When the event store cannot take events, the recorder moves them here instead of dropping
them, and replays them (oldest first) when the store is back. Each recorder owns one
folder under the spool root, locked with ``flock`` for its lifetime; a folder whose lock is
free belongs to a process that is gone (stopped, killed, or an instance replaced by a
reload), and its segments are adopted by the next recorder that looks: that is how a
restarted container replays what the previous one left. A segment is written whole to a
temporary name and renamed, so a kill mid-write leaves no half segment; one that is
corrupt anyway (a damaged disk, a hand edit) is moved to ``corrupt/`` and reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from artpulse_contract.events.model import PredictionEvent
from artpulse_contract.events.spool_format import (
    HEADER,
    decode_segment,
    encode_event,
    encode_segment,
    segment_count,
)

logger = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".seg"
LOCK_NAME = "owner.lock"
CORRUPT_DIR = "corrupt"


@dataclass(frozen=True)
class Segment:
    """One segment file and the number of events its header declares."""

    path: Path
    events: int
    size: int


def _read_header_count(path: Path) -> int:
    with path.open("rb") as handle:
        return segment_count(handle.read(HEADER.size)) or 0


def _oldest_data(folder: Path) -> float:
    # Orphans are replayed oldest data first: by the time their first segment was written.
    oldest = float("inf")
    for path in folder.glob(f"*{SEGMENT_SUFFIX}"):
        with contextlib.suppress(OSError):  # adopted by another recorder meanwhile
            oldest = min(oldest, path.stat().st_mtime)
    return oldest


class Spool:
    """The segments of one recorder, bounded by ``max_bytes`` in all."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        """Create and lock this recorder's folder under ``root``, adopting orphaned ones."""
        self._root = root
        self._max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._dir = root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._dir.mkdir()
        self._lock_fd = os.open(self._dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._segments: deque[Segment] = deque()
        self._next = 0
        self._bytes = 0
        self._events = 0
        self.adopt_orphans()

    @property
    def root(self) -> Path:
        """The spool root (shared by every recorder using it)."""
        return self._root

    @property
    def size_bytes(self) -> int:
        """Bytes of segments held."""
        return self._bytes

    @property
    def events(self) -> int:
        """Events held, as the segment headers declare."""
        return self._events

    def oldest(self) -> Segment | None:
        """The segment to replay next, or None when the spool is empty."""
        return self._segments[0] if self._segments else None

    def append(self, events: Sequence[PredictionEvent], ids: Sequence[bytes]) -> int:
        """Write ``events`` as one new segment, as many as fit the byte bound, in order.

        Returns how many were written (the rest did not fit and are the caller's to count).
        """
        records: list[bytes] = []
        size = HEADER.size
        for event, event_id in zip(events, ids, strict=True):
            record = encode_event(event, event_id)
            if self._bytes + size + len(record) > self._max_bytes:
                break
            records.append(record)
            size += len(record)
        if not records:
            return 0
        path = self._dir / f"{self._next:012d}{SEGMENT_SUFFIX}"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(encode_segment(records))
        temporary.replace(path)
        self._add(Segment(path, len(records), size))
        return len(records)

    def read(self, segment: Segment) -> tuple[list[PredictionEvent], list[bytes]]:
        """The events and ids of ``segment``; raises ``CorruptSegmentError``."""
        return decode_segment(segment.path.read_bytes())

    def remove(self, segment: Segment) -> None:
        """Forget ``segment`` (replayed) and delete its file."""
        self._forget(segment)
        segment.path.unlink(missing_ok=True)

    def set_aside(self, segment: Segment) -> Path:
        """Move a corrupt ``segment`` to ``<root>/corrupt/`` and return where it went."""
        self._forget(segment)
        target_dir = self._root / CORRUPT_DIR
        target_dir.mkdir(exist_ok=True)
        target = target_dir / f"{self._dir.name}-{segment.path.name}"
        segment.path.replace(target)
        return target

    def adopt_orphans(self) -> int:
        """Take over the segments of folders no live recorder holds; returns how many."""
        folders = [
            folder
            for folder in self._root.iterdir()
            if folder != self._dir and folder.name != CORRUPT_DIR and folder.is_dir()
        ]
        adopted = 0
        for folder in sorted(folders, key=_oldest_data):
            adopted += self._adopt(folder)
        if adopted:
            logger.warning(
                "event spool: adopted %d segment(s) (%d events) left by stopped processes; "
                "replaying them",
                adopted,
                self._events,
            )
        return adopted

    def close(self) -> None:
        """Release the folder's lock (its segments stay for the next recorder to adopt)."""
        if self._lock_fd < 0:
            return
        if not self._segments:
            with contextlib.suppress(OSError):
                (self._dir / LOCK_NAME).unlink()
                self._dir.rmdir()
        os.close(self._lock_fd)
        self._lock_fd = -1

    def _adopt(self, folder: Path) -> int:
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a live recorder owns it
            count = 0
            for path in sorted(folder.glob(f"*{SEGMENT_SUFFIX}")):
                target = self._dir / f"{self._next:012d}{SEGMENT_SUFFIX}"
                path.replace(target)
                self._add(Segment(target, _read_header_count(target), target.stat().st_size))
                count += 1
            for leftover in folder.glob("*.tmp"):
                leftover.unlink(missing_ok=True)  # a write cut short: never renamed, never counted
            with contextlib.suppress(OSError):
                (folder / LOCK_NAME).unlink()
                folder.rmdir()
            return count
        finally:
            os.close(fd)

    def _add(self, segment: Segment) -> None:
        self._segments.append(segment)
        self._next += 1
        self._bytes += segment.size
        self._events += segment.events

    def _forget(self, segment: Segment) -> None:
        self._segments.remove(segment)
        self._bytes -= segment.size
        self._events -= segment.events
