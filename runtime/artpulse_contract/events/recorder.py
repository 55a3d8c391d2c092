"""Record prediction events off the request path: a bounded queue, one writer thread and,
when configured, an on-disk spool that holds events through an outage of the store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from artpulse_contract.events.delivery import WRITE_RETRY, Delivery
from artpulse_contract.events.ids import new_event_ids
from artpulse_contract.events.model import PredictionEvent
from artpulse_contract.events.outage import SpoolDelivery
from artpulse_contract.events.queue import EventQueue
from artpulse_contract.events.spool import Spool
from artpulse_contract.events.store import EventStore
from artpulse_contract.log_limits import RateLimitedWarning

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 10_000
"""Events held in memory by default (``ARTPULSE_EVENT_QUEUE_SIZE``)."""
DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_INTERVAL = 0.5
"""Seconds an event may wait in memory by default (``ARTPULSE_EVENT_FLUSH_INTERVAL``)."""

ADOPT_INTERVAL_S = 30.0
"""How often an idle writer looks for spool folders left by stopped recorders."""


class EventRecorder:
    """Accepts events without blocking and writes them to an ``EventStore`` in batches.

    ``record`` only appends to a bounded in-memory queue (it never blocks on I/O and never
    raises); one background thread writes batches of ``batch_size`` events, or whatever is
    queued once the oldest event has waited ``flush_interval`` seconds. Every write carries
    event ids, so a batch written twice is stored once.

    Without a spool, a batch that cannot be written is retried with capped exponential
    backoff while new events queue up to ``max_queue``; beyond that they are dropped,
    counted and logged, and ``close`` waits up to its timeout for the store.

    With a spool (``spool_dir``, bounded by ``spool_max_bytes``), a failed write moves the
    batch and the queue to disk at once; from then on memory goes to the spool tail every
    ``flush_interval`` while the oldest segment is retried, and once the store takes it the
    segments are replayed oldest first until the spool is empty. ``close`` during an outage
    moves memory to the spool and returns; the next recorder on the same spool root (the
    restarted server) replays it. Only events that fit neither memory nor spool are dropped.
    """

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 0,
    ) -> None:
        """Prepare a recorder writing to the store at ``url``; call ``start`` to begin.

        A spool is used when ``spool_dir`` is set and ``spool_max_bytes`` is positive.
        """
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError(
                "EventRecorder needs max_queue >= 1, batch_size >= 1 and flush_interval > 0, "
                f"got {max_queue}, {batch_size}, {flush_interval}"
            )
        self._store = EventStore(url)
        self._queue = EventQueue(max_queue, batch_size, flush_interval)
        self._delivery = Delivery(self._store, self._queue)
        self._spool_dir = spool_dir if spool_max_bytes > 0 else None
        self._spool_max_bytes = spool_max_bytes
        self._outage: SpoolDelivery | None = None
        self._thread: threading.Thread | None = None
        self._drop_warning = RateLimitedWarning(logger)

    @property
    def queue_depth(self) -> int:
        """Events accepted and held in memory (including a batch being written)."""
        return self._queue.pending

    @property
    def spooled_events(self) -> int:
        """Events waiting in the on-disk spool."""
        return self._outage.spool.events if self._outage is not None else 0

    @property
    def spool_bytes(self) -> int:
        """Bytes of the on-disk spool in use."""
        return self._outage.spool.size_bytes if self._outage is not None else 0

    @property
    def dropped_total(self) -> int:
        """Events given up since creation: memory and spool full, closed, or refused."""
        return self._queue.dropped

    @property
    def written_total(self) -> int:
        """Events written to the store since creation (replayed ones included)."""
        return self._queue.written

    @property
    def write_failures_total(self) -> int:
        """Failed write attempts since creation (one per attempt, not per event)."""
        return self._queue.failures

    @property
    def corrupt_segments_total(self) -> int:
        """Spool segments found corrupt and set aside since creation."""
        return self._outage.corrupt_segments if self._outage is not None else 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._queue.condition:
            if self._thread is None and not self._queue.closing:
                self._spawn_writer()

    def record(self, events: Sequence[PredictionEvent]) -> None:
        """Queue ``events`` for writing; never blocks on I/O and never raises.

        Events beyond the queue bound, or recorded after ``close``, are dropped and counted.
        """
        try:
            dropped = self._queue.offer(events)
        except Exception:
            logger.exception(
                "EventRecorder.record failed on a %s; not recorded", type(events).__name__
            )
            return
        if dropped:
            self._drop_warning.warn(
                "event queue full or closed: dropped %d events (%d in total); queue depth %d",
                dropped,
                self._queue.dropped,
                self._queue.pending,
            )

    def flush(self, timeout: float) -> bool:
        """Ask for an immediate write and wait until memory and spool are both empty.

        Returns False when events are still pending after ``timeout`` seconds.
        """
        queue = self._queue
        deadline = time.monotonic() + timeout
        with queue.condition:
            queue.flush_requested = True
            queue.condition.notify_all()
            while queue.pending or self.spooled_events:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                queue.condition.wait(min(remaining, queue.flush_interval))
            return True

    def close(self, timeout: float = 30.0) -> None:
        """Write out everything accepted, then stop the writer thread (idempotent).

        With a spool, what the store cannot take now stays in the spool. Without one,
        events that still cannot be written when ``timeout`` seconds have passed (the
        database is down) are dropped, counted and logged as an error.
        """
        queue = self._queue
        queue.start_closing(timeout)
        with queue.condition:
            if self._thread is None and queue.pending:
                self._spawn_writer()  # never started: write out what was accepted
        if self._thread is not None:
            self._thread.join(max(queue.close_deadline - time.monotonic(), 0.0) + 1.0)
            if self._thread.is_alive():
                logger.error("event writer still busy after close(timeout=%s)", timeout)
                return
        self._store.close()

    def _spawn_writer(self) -> None:
        # Daemon: a writer stuck on an unreachable database never holds up interpreter exit.
        self._thread = threading.Thread(target=self._run, name="artpulse-event-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._open_spool()
        outage = self._outage
        adopted_at = time.monotonic()
        try:
            while True:
                if outage is not None and outage.has_backlog:
                    if not outage.step():
                        return
                    continue
                if outage is not None and time.monotonic() - adopted_at > ADOPT_INTERVAL_S:
                    outage.spool.adopt_orphans()
                    adopted_at = time.monotonic()
                batch = self._queue.next_batch(ADOPT_INTERVAL_S)
                if batch is None:
                    return
                if batch:
                    self._write_fresh(batch)
        finally:
            if outage is not None:
                outage.spool.close()

    def _open_spool(self) -> None:
        if self._spool_dir is None:
            return
        try:
            spool = Spool(self._spool_dir, self._spool_max_bytes)
        except OSError as error:
            logger.error(
                "event spool at %s unusable (%s); events beyond the memory queue will be "
                "dropped during an outage",
                self._spool_dir,
                error,
            )
            return
        self._outage = SpoolDelivery(spool, self._delivery, self._spool_max_bytes)

    def _write_fresh(self, batch: list[PredictionEvent]) -> None:
        ids = new_event_ids(len(batch))
        for delay in WRITE_RETRY.delays():
            error = self._delivery.write(batch, ids, in_memory=True)
            if error is None:
                return
            if self._outage is not None:
                self._outage.take_over(batch, ids, error)
                return
            self._delivery.warn_failure(len(batch), f"retrying in {delay:.1f}s", error, 0)
            if not self._wait_before_retry(delay):
                self._give_up(batch)
                return

    def _wait_before_retry(self, backoff: float) -> bool:
        # Sleep out the backoff (new events do not cut it short); False once closing and
        # past the close deadline, when the batch must be given up.
        queue = self._queue
        with queue.condition:
            end = time.monotonic() + backoff
            while True:
                if queue.closing:
                    end = min(end, queue.close_deadline)
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                queue.condition.wait(remaining)
            return not queue.past_close_deadline()

    def _give_up(self, batch: list[PredictionEvent]) -> None:
        lost = len(batch) + len(self._queue.take())
        self._queue.settle(written=0, dropped=lost, in_memory=True)
        logger.error(
            "event store %s still unreachable at close: %d accepted events lost",
            self._store.display_url,
            lost,
        )
