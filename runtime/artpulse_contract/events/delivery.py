"""Writing a batch to the store, with the accounting and the one-line warnings around it."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from artpulse_contract.backoff import Backoff
from artpulse_contract.events.model import PredictionEvent
from artpulse_contract.events.queue import EventQueue
from artpulse_contract.events.store import EventStore
from artpulse_contract.log_limits import RateLimitedWarning

logger = logging.getLogger("artpulse_contract.events.recorder")

WRITE_RETRY = Backoff(initial=0.1, maximum=5.0)
"""Waits between attempts to write a batch: 0.1 s doubling to 5 s (a recovered database is
noticed within a few seconds), with jitter so replicas do not hammer it together."""


def describe(error: BaseException) -> str:
    """An error in one line (SQLAlchemy's own message repeats the statement and every
    parameter of the batch)."""
    cause = error.orig if isinstance(error, sa.exc.DBAPIError) and error.orig else error
    return f"{type(cause).__name__}: {' '.join(str(cause).split())}"


def is_data_error(error: BaseException) -> bool:
    """True when the database refused the rows themselves (retrying cannot help)."""
    return isinstance(error, sa.exc.IntegrityError | sa.exc.DataError)


class Delivery:
    """Writes batches to one store and settles them in the queue's accounting."""

    def __init__(self, store: EventStore, queue: EventQueue) -> None:
        """Deliver to ``store``, accounting in ``queue``."""
        self.store = store
        self.queue = queue
        self._failure_warning = RateLimitedWarning(logger)

    def write(
        self, events: list[PredictionEvent], ids: list[bytes], *, in_memory: bool
    ) -> Exception | None:
        """Write ``events`` and account for them; rows the database refuses are found one
        at a time and dropped alone.

        Returns the error of a failure worth retrying; nothing is accounted then (rows
        already written are skipped by their ids when the batch is retried).
        """
        try:
            self.store.write(events, ids)
        except Exception as batch_error:
            self.queue.count_failure()
            if not is_data_error(batch_error):
                return batch_error
        else:
            self.queue.settle(written=len(events), dropped=0, in_memory=in_memory)
            return None
        refused: list[tuple[PredictionEvent, Exception]] = []
        for event, event_id in zip(events, ids, strict=True):
            try:
                self.store.write([event], [event_id])
            except Exception as single:
                self.queue.count_failure()
                if not is_data_error(single):
                    return single
                refused.append((event, single))
        written = len(events) - len(refused)
        self.queue.settle(written=written, dropped=len(refused), in_memory=in_memory)
        for event, refusal in refused:
            logger.error("event store refused event %r: %s", event, describe(refusal))
        return None

    def warn_failure(self, count: int, action: str, error: BaseException, spooled: int) -> None:
        """Log a failed write (at most once per interval)."""
        self._failure_warning.warn(
            "cannot write %d events to %s (%s; %d in memory, %d spooled): %s",
            count,
            self.store.display_url,
            action,
            self.queue.pending,
            spooled,
            describe(error),
        )
