"""Both sides' event windows of a canary step, read incrementally between decisions.

A step's window runs from its start to now and grows with every poll. Reading all of it each
poll costs time in proportion to its events (``bench/canary.py``), so each resource keeps
what earlier polls read of the part older than ``SETTLE_SECONDS``, and a poll reads only
what is newer than that. Events arrive within a second of their prediction (the runtime's
queue) unless the store was down: an event written later than ``SETTLE_SECONDS`` after its
prediction is missed by these running totals. So they only tell when a decision may be due;
the decision itself is taken on an exact read of the whole window (``exact=True``), which
counts every event, however late it arrived, and starts the running totals afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from artpulse_contract.events import EventStore
from artpulse_contract.events.version_window import VersionWindow, read_version_window

SETTLE_SECONDS = 30.0
"""Events older than this when a poll reads them are taken as complete until the decision."""


@dataclass
class _Settled:
    """What earlier polls read of one step: each version's events in ``[since, until)``."""

    since: datetime
    until: datetime
    windows: dict[str, VersionWindow] = field(default_factory=dict)


class StepWindows:
    """Each resource's running totals of its current step (one operator process, all
    resources; each resource's polls run one at a time)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._settled: dict[str, _Settled] = {}
        self._lock = threading.Lock()

    def read(
        self,
        owner: str,
        model_name: str,
        versions: Sequence[str],
        since: datetime,
        now: datetime,
        *,
        exact: bool = False,
    ) -> dict[str, VersionWindow]:
        """Each of ``versions``' events in ``[since, now)`` for the resource ``owner`` (its
        uid): running totals, or with ``exact`` the whole window read afresh."""
        with self._lock:
            settled = self._settled.pop(owner, None)
        fresh = settled is None or settled.since != since or set(settled.windows) != set(versions)
        if exact or fresh or settled is None:
            settled = _Settled(since, since, {v: VersionWindow.empty(v) for v in versions})
        cut = max(settled.until, now - timedelta(seconds=SETTLE_SECONDS))
        windows = {}
        for version in versions:
            older = settled.windows[version]
            if cut > settled.until:
                older = older + self._window(model_name, version, settled.until, cut)
            settled.windows[version] = older
            windows[version] = older + self._window(model_name, version, cut, now)
        settled.until = cut
        with self._lock:
            self._settled[owner] = settled
        return windows

    def forget(self, owner: str) -> None:
        """Drop the running totals of ``owner`` (its canary ended)."""
        with self._lock:
            self._settled.pop(owner, None)

    def _window(
        self, model_name: str, version: str, since: datetime, until: datetime
    ) -> VersionWindow:
        return read_version_window(self.store, model_name, version, since, until)
