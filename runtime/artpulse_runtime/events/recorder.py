"""Record prediction events off the request path: a bounded queue and one writer thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence

import sqlalchemy as sa

from artpulse_runtime.events.model import PredictionEvent
from artpulse_runtime.events.store import EventStore

logger = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.1
"""Wait after the first failed write; it doubles with each further failure..."""
MAX_BACKOFF_S = 5.0
"""...up to this cap, so a recovered database is noticed within a few seconds."""
LOG_INTERVAL_S = 10.0
"""At most one warning per kind of trouble (drops, failed writes) in this interval."""


class _RateLimitedWarning:
    """A warning logged at most once per interval, saying how many were held back."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last = -interval
        self._suppressed = 0
        self._lock = threading.Lock()

    def warn(self, message: str, *args: object) -> None:
        """Log ``message`` unless one was logged less than ``interval`` seconds ago."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        suffix = f" ({suppressed} similar warnings suppressed)" if suppressed else ""
        logger.warning(message + suffix, *args)


def _describe(error: BaseException) -> str:
    # SQLAlchemy's own message repeats the statement and every parameter of the batch.
    cause = error.orig if isinstance(error, sa.exc.DBAPIError) and error.orig else error
    return f"{type(cause).__name__}: {cause}"


def _is_data_error(error: BaseException) -> bool:
    # The database refused the rows themselves: retrying the same batch cannot help.
    return isinstance(error, sa.exc.IntegrityError | sa.exc.DataError)


class EventRecorder:
    """Accepts events without blocking and writes them to an ``EventStore`` in batches.

    ``record`` only appends to a bounded in-memory queue (it never blocks on I/O and never
    raises); one background thread writes batches of ``batch_size`` events, or whatever is
    queued once the oldest event has waited ``flush_interval`` seconds. While the database
    is unreachable the batch in hand is retried with capped exponential backoff and new
    events keep queueing up to ``max_queue`` (the batch in hand counts towards it); beyond
    that they are dropped, counted and logged. ``close`` writes out everything accepted.
    """

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
    ) -> None:
        """Prepare a recorder writing to the store at ``url``; call ``start`` to begin."""
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError(
                "EventRecorder needs max_queue >= 1, batch_size >= 1 and flush_interval > 0, "
                f"got {max_queue}, {batch_size}, {flush_interval}"
            )
        self._store = EventStore(url)
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue: deque[PredictionEvent] = deque()
        # record() takes the bare lock (a C call); the writer waits on a condition over it.
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._pending = 0  # accepted, neither written nor given up: queue + batch in hand
        self._dropped = 0
        self._written = 0
        self._failures = 0
        self._flush_requested = False
        self._closing = False
        self._close_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._drop_warning = _RateLimitedWarning(LOG_INTERVAL_S)
        self._failure_warning = _RateLimitedWarning(LOG_INTERVAL_S)

    @property
    def store(self) -> EventStore:
        """The store this recorder writes to."""
        return self._store

    @property
    def queue_depth(self) -> int:
        """Events accepted and not yet written (including a batch being retried)."""
        return self._pending

    @property
    def dropped_total(self) -> int:
        """Events given up since creation: queue full, closed, or refused by the database."""
        return self._dropped

    @property
    def written_total(self) -> int:
        """Events written to the store since creation."""
        return self._written

    @property
    def write_failures_total(self) -> int:
        """Failed write attempts since creation (one per attempt, not per event)."""
        return self._failures

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._condition:
            if self._thread is None and not self._closing:
                self._spawn_writer()

    def record(self, events: Sequence[PredictionEvent]) -> None:
        """Queue ``events`` for writing; never blocks on I/O and never raises.

        Events beyond the queue bound, or recorded after ``close``, are dropped and counted.
        """
        try:
            offered = len(events)
            with self._lock:
                room = 0 if self._closing else self._max_queue - self._pending
                accepted = offered if offered <= room else max(room, 0)
                self._queue.extend(events if accepted == offered else events[:accepted])
                self._pending += accepted
                dropped = offered - accepted
                self._dropped += dropped
                depth = len(self._queue)
                if depth == accepted or depth - accepted < self._batch_size <= depth:
                    # The queue just became non-empty, or just reached a full batch.
                    self._condition.notify_all()
        except Exception:
            logger.exception(
                "EventRecorder.record failed on a %s; not recorded", type(events).__name__
            )
            return
        if dropped:
            self._drop_warning.warn(
                "event queue full or closed: dropped %d events (%d in total); queue depth %d",
                dropped,
                self._dropped,
                self._pending,
            )

    def flush(self, timeout: float) -> bool:
        """Ask for an immediate write and wait until nothing accepted is pending.

        Returns False when events are still pending after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            self._flush_requested = True
            self._condition.notify_all()
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._condition.wait(remaining)
            return True

    def close(self, timeout: float = 30.0) -> None:
        """Write out everything accepted, then stop the writer thread (idempotent).

        Events that still cannot be written when ``timeout`` seconds have passed (the
        database is down) are dropped, counted and logged as an error.
        """
        with self._condition:
            if not self._closing:
                self._closing = True
                self._close_deadline = time.monotonic() + timeout
            self._condition.notify_all()
        with self._condition:
            if self._thread is None and self._pending:
                self._spawn_writer()  # never started: write out what was accepted
        if self._thread is not None:
            self._thread.join(max(self._close_deadline - time.monotonic(), 0.0) + 1.0)
            if self._thread.is_alive():
                logger.error("event writer still busy after close(timeout=%s)", timeout)
                return
        self._store.close()

    def _spawn_writer(self) -> None:
        # Daemon: a writer stuck on an unreachable database never holds up interpreter exit.
        self._thread = threading.Thread(target=self._run, name="artpulse-event-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._write(batch)

    def _next_batch(self) -> list[PredictionEvent] | None:
        # Wait for a full batch, the flush interval of the oldest event, a flush or close.
        with self._condition:
            while not self._queue:
                if self._closing:
                    return None
                self._condition.wait()
            deadline = time.monotonic() + self._flush_interval
            while len(self._queue) < self._batch_size and not (
                self._closing or self._flush_requested
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            size = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(size)]
            if not self._queue:
                self._flush_requested = False
            return batch

    def _write(self, batch: list[PredictionEvent]) -> None:
        backoff = INITIAL_BACKOFF_S
        while True:
            try:
                self._store.write(batch)
            except Exception as error:
                with self._condition:
                    self._failures += 1
                if _is_data_error(error):
                    self._isolate_refused(batch, error)
                    return
                self._failure_warning.warn(
                    "cannot write %d events to %s (retrying in %.1fs, %d queued): %s",
                    len(batch),
                    self._store.display_url,
                    backoff,
                    self._pending,
                    _describe(error),
                )
                if not self._wait_before_retry(backoff):
                    self._give_up(batch)
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            else:
                self._settle(written=len(batch), dropped=0)
                return

    def _isolate_refused(self, batch: list[PredictionEvent], error: Exception) -> None:
        # The database refused the rows: write them one at a time so only the bad ones drop.
        if len(batch) == 1:
            self._settle(written=0, dropped=1)
            logger.error("event store refused event %r: %s", batch[0], _describe(error))
            return
        for event in batch:
            self._write([event])

    def _wait_before_retry(self, backoff: float) -> bool:
        # Sleep out the backoff (new events do not cut it short); False once closing and
        # past the close deadline, when the batch must be given up.
        with self._condition:
            end = time.monotonic() + backoff
            while True:
                if self._closing:
                    end = min(end, self._close_deadline)
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            return not (self._closing and time.monotonic() >= self._close_deadline)

    def _give_up(self, batch: list[PredictionEvent]) -> None:
        with self._condition:
            lost = len(batch) + len(self._queue)
            self._queue.clear()
        self._settle(written=0, dropped=lost)
        logger.error(
            "event store %s still unreachable at close: %d accepted events lost",
            self._store.display_url,
            lost,
        )

    def _settle(self, *, written: int, dropped: int) -> None:
        with self._condition:
            self._written += written
            self._dropped += dropped
            self._pending -= written + dropped
            self._condition.notify_all()
