"""Events through an outage of the store: memory moves to the spool tail, the spool is
replayed oldest first, and nothing is held in memory longer than the flush interval."""

from __future__ import annotations

import logging
import time

from artpulse_contract.events.delivery import WRITE_RETRY, Delivery
from artpulse_contract.events.ids import new_event_ids
from artpulse_contract.events.model import PredictionEvent
from artpulse_contract.events.spool import Spool
from artpulse_contract.events.spool_format import CorruptSegmentError
from artpulse_contract.log_limits import RateLimitedWarning

logger = logging.getLogger("artpulse_contract.events.recorder")


class SpoolDelivery:
    """Moves events between memory, the spool and the store while the spool is not empty.

    Order is kept: the spool only ever holds events older than those in memory, so memory
    goes to its tail and the store takes segments from its head.
    """

    def __init__(self, spool: Spool, delivery: Delivery, max_bytes: int) -> None:
        """Spool to ``spool`` (bounded by ``max_bytes``), deliver through ``delivery``."""
        self.spool = spool
        self._delivery = delivery
        self._queue = delivery.queue
        self._max_bytes = max_bytes
        self._failed_attempts = 0
        self.corrupt_segments = 0
        self._drop_warning = RateLimitedWarning(logger)

    @property
    def has_backlog(self) -> bool:
        """True while segments wait to be replayed."""
        return self.spool.oldest() is not None

    def take_over(self, batch: list[PredictionEvent], ids: list[bytes], error: Exception) -> None:
        """The store failed ``batch``: move it, then the rest of memory, to the spool."""
        self._delivery.warn_failure(
            len(batch), "moving them to the spool", error, self.spool.events
        )
        self.spill(batch, ids)
        self.spill_memory()

    def step(self) -> bool:
        """Move memory to the spool when due, then try the oldest segment once.

        Returns False when the writer should stop: closing while the store is down, or past
        the close deadline (the spool stays for the next recorder).
        """
        queue = self._queue
        self.spill_memory(only_if_due=True)
        segment = self.spool.oldest()
        if segment is None:
            return True
        try:
            events, ids = self.spool.read(segment)
        except (CorruptSegmentError, OSError) as problem:
            target = self.spool.set_aside(segment)
            self.corrupt_segments += 1
            logger.error(
                "event spool: segment %s (%d events by its header) is corrupt (%s); moved to "
                "%s and not replayed",
                segment.path.name,
                segment.events,
                problem,
                target,
            )
            return True
        error = self._delivery.write(events, ids, in_memory=False)
        if error is None:
            self.spool.remove(segment)
            self._failed_attempts = 0
            if queue.past_close_deadline():
                self.spill_memory()
                return False
            return True
        if queue.closing:
            self.spill_memory()
            return False
        self._failed_attempts += 1
        delay = WRITE_RETRY.delay(self._failed_attempts)
        action = f"kept in the spool, next try in {delay:.1f}s"
        self._delivery.warn_failure(len(events), action, error, self.spool.events)
        self._wait(delay)
        return True

    def spill_memory(self, *, only_if_due: bool = False) -> None:
        """Move the queued events to the spool tail (``only_if_due``: see ``EventQueue.take``)."""
        events = self._queue.take(only_if_due=only_if_due)
        if events:
            self.spill(events, new_event_ids(len(events)))

    def spill(self, events: list[PredictionEvent], ids: list[bytes]) -> None:
        """Append events from memory to the spool; what does not fit is dropped and counted."""
        try:
            kept = self.spool.append(events, ids)
        except OSError as error:
            logger.error("event spool: cannot write %d events: %s", len(events), error)
            kept = 0
        lost = len(events) - kept
        self._queue.settle(written=0, dropped=lost, in_memory=True, spooled=kept)
        if lost:
            self._drop_warning.warn(
                "event spool full (%d of %d bytes used): dropped %d events (%d in total)",
                self.spool.size_bytes,
                self._max_bytes,
                lost,
                self._queue.dropped,
            )

    def _wait(self, seconds: float) -> None:
        # Sleep out the backoff, moving memory to the spool every flush interval meanwhile;
        # closing cuts it short.
        queue = self._queue
        end = time.monotonic() + seconds
        while True:
            self.spill_memory(only_if_due=True)
            with queue.condition:
                remaining = end - time.monotonic()
                if queue.closing or remaining <= 0:
                    return
                queue.condition.wait(min(remaining, queue.flush_interval))
