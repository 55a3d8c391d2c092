"""The recorder's bounded in-memory queue and its accounting, shared by the request path
(``offer``) and the writer thread (everything else)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from artpulse_contract.events.model import PredictionEvent


class EventQueue:
    """Events accepted and not yet written or spooled, with the recorder's counters.

    ``offer`` takes the bare lock (a C call) and never waits; the writer waits on a
    condition over the same lock. ``pending`` counts the queue plus a batch in hand.
    """

    def __init__(self, max_events: int, batch_size: int, flush_interval: float) -> None:
        """A queue holding at most ``max_events`` accepted events."""
        self.max_events = max_events
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.lock = threading.Lock()
        self.condition = threading.Condition(self.lock)
        self._events: deque[PredictionEvent] = deque()
        self._queued_since = 0.0  # when the queue last became non-empty (monotonic)
        self.pending = 0
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self.flush_requested = False
        self.closing = False
        self.close_deadline = 0.0

    def offer(self, events: Sequence[PredictionEvent]) -> int:
        """Accept what fits of ``events``; returns how many were dropped (full or closed)."""
        offered = len(events)
        with self.lock:
            room = 0 if self.closing else self.max_events - self.pending
            accepted = offered if offered <= room else max(room, 0)
            self._events.extend(events if accepted == offered else events[:accepted])
            self.pending += accepted
            dropped = offered - accepted
            self.dropped += dropped
            depth = len(self._events)
            if depth == accepted or depth - accepted < self.batch_size <= depth:
                # The queue just became non-empty, or just reached a full batch.
                if depth == accepted:
                    self._queued_since = time.monotonic()
                self.condition.notify_all()
        return dropped

    def next_batch(self, idle_timeout: float) -> list[PredictionEvent] | None:
        """Wait for a full batch, the flush interval of the oldest event, a flush or close.

        None once closing with nothing queued; [] after ``idle_timeout`` with nothing queued.
        """
        with self.condition:
            while not self._events:
                if self.closing:
                    return None
                if not self.condition.wait(idle_timeout):
                    return []
            deadline = self._queued_since + self.flush_interval
            while len(self._events) < self.batch_size and not (
                self.closing or self.flush_requested
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.condition.wait(remaining)
            size = min(self.batch_size, len(self._events))
            batch = [self._events.popleft() for _ in range(size)]
            self._queued_since = time.monotonic()
            if not self._events:
                self.flush_requested = False
            return batch

    def take(self, *, only_if_due: bool = False) -> list[PredictionEvent]:
        """Everything queued (they stay ``pending`` until settled); with ``only_if_due``,
        nothing unless a batch is full, the oldest has waited the flush interval, or closing."""
        with self.lock:
            if not self._events:
                return []
            due = (
                len(self._events) >= self.batch_size
                or self.closing
                or time.monotonic() - self._queued_since >= self.flush_interval
            )
            if only_if_due and not due:
                return []
            events = list(self._events)
            self._events.clear()
            return events

    def settle(self, *, written: int, dropped: int, in_memory: bool, spooled: int = 0) -> None:
        """Account for events leaving memory (written, dropped or spooled) or the spool."""
        with self.condition:
            self.written += written
            self.dropped += dropped
            if in_memory:
                self.pending -= written + dropped + spooled
            self.condition.notify_all()

    def count_failure(self) -> None:
        """Count one failed write attempt."""
        with self.lock:
            self.failures += 1

    def start_closing(self, timeout: float) -> None:
        """Refuse new events from now on; the writer has until ``timeout`` from now."""
        with self.condition:
            if not self.closing:
                self.closing = True
                self.close_deadline = time.monotonic() + timeout
            self.condition.notify_all()

    def past_close_deadline(self) -> bool:
        """True once closing and the close deadline has passed."""
        return self.closing and time.monotonic() >= self.close_deadline
