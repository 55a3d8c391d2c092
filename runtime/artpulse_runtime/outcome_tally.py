"""Counts what the runtime did with each request, per model version, for the event store's
``serving_outcomes`` table (see ``artpulse_contract.events.outcomes``).

The tally lives on the server's event loop: ``observe`` wraps a request, and once per period
``OutcomeWriter`` ``take``s the counts as rows and writes them off the loop; rows whose write
failed are ``put_back`` and go out with the next period's, so an outage loses nothing and
memory stays one set of counts per model version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from artpulse_contract.events.outcomes import ServingOutcome, latency_bucket, write_outcomes
from artpulse_contract.events.schema import LATENCY_BUCKETS
from artpulse_contract.events.store import EventStore
from artpulse_contract.log_limits import RateLimitedWarning

logger = logging.getLogger(__name__)


def is_server_error(error: BaseException) -> bool:
    """True for a failure that is the server's fault (5xx); a client error has a 4xx status."""
    return int(getattr(error, "status_code", 500)) >= 500


@dataclass
class _Counts:
    answered: int = 0
    server_errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)


class OutcomeTally:
    """Requests answered and failed with a server error, per (model name, version)."""

    def __init__(self, instance: str, clock: Callable[[], datetime] | None = None) -> None:
        """Count for the serving process ``instance`` (e.g. the pod's host name)."""
        self._instance = instance
        self._clock = clock or (lambda: datetime.now(UTC))
        self._since = self._clock()
        self._counts: dict[tuple[str, str], _Counts] = {}

    def _entry(self, model_name: str, version: str) -> _Counts:
        entry = self._counts.get((model_name, version))
        if entry is None:
            entry = self._counts[(model_name, version)] = _Counts()
        return entry

    def answered(self, model_name: str, version: str, seconds: float) -> None:
        """Count one request answered in ``seconds``."""
        entry = self._entry(model_name, version)
        entry.answered += 1
        entry.latency[latency_bucket(seconds)] += 1

    def failed(self, model_name: str, version: str) -> None:
        """Count one request that failed with a server error."""
        self._entry(model_name, version).server_errors += 1

    @contextmanager
    def observe(self, model_name: str, version: str) -> Iterator[None]:
        """Count the request run inside the block: answered (with its latency) when it
        returns, a server error when it raises one; a client error is not counted."""
        started = time.perf_counter()
        try:
            yield
        except Exception as error:
            if is_server_error(error):
                self.failed(model_name, version)
            raise
        self.answered(model_name, version, time.perf_counter() - started)

    def take(self) -> list[ServingOutcome]:
        """The counts since the last ``take`` as rows (one per version), and start afresh."""
        now = self._clock()
        rows = [
            ServingOutcome(
                period_start=self._since,
                period_end=now,
                instance=self._instance,
                model_name=name,
                model_version=version,
                answered=counts.answered,
                server_errors=counts.server_errors,
                latency_counts=tuple(counts.latency),
            )
            for (name, version), counts in self._counts.items()
        ]
        self._counts = {}
        self._since = now
        return rows

    def put_back(self, rows: Sequence[ServingOutcome]) -> None:
        """Merge rows that could not be written into the current counts; the next period
        then starts where the earliest of them did."""
        for row in rows:
            entry = self._entry(row.model_name, row.model_version)
            entry.answered += row.answered
            entry.server_errors += row.server_errors
            entry.latency = [a + b for a, b in zip(entry.latency, row.latency_counts, strict=True)]
            self._since = min(self._since, row.period_start)


class OutcomeWriter:
    """Writes a tally's rows to the event store every ``interval`` seconds, and once more at
    ``close`` (which then closes the store); a failed write is retried with the next
    period's rows."""

    def __init__(self, tally: OutcomeTally, store: EventStore, interval: float) -> None:
        self.tally = tally
        self._store = store
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failure_warning = RateLimitedWarning(logger)

    def start(self) -> None:
        """Begin writing periodically on the running event loop."""
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        """Write what the tally counted since the last write (nothing when it is empty)."""
        rows = self.tally.take()
        if not rows:
            return
        try:
            await asyncio.to_thread(write_outcomes, self._store, rows)
        except Exception as error:  # the store is down or refuses: keep the counts
            self.tally.put_back(rows)
            self._failure_warning.warn(
                "serving outcomes not written to %s (kept for the next try): %s",
                self._store.display_url,
                error,
            )

    async def close(self) -> None:
        """Stop the periodic writes, write the last counts and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        await asyncio.to_thread(self._store.close)
