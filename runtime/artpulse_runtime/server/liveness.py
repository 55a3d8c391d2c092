"""Liveness that notices a model which was serving and is gone.

MLServer's ``/v2/health/live`` is always 200: a model unloaded (or left not ready by a
failed reload) leaves the pod alive but useless, and Kubernetes never restarts it. Here a
watcher polls the model registry once a second (and hears of every unload at once); a model
that has been ready at least once and has not been for longer than the grace period makes
the server not live. A model that
never loaded (the registry was unreachable at start-up) keeps the server live and unready:
its load is retried in the background, and a restart would not help.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

WATCH_INTERVAL_S = 1.0

ModelServing = Callable[[str], Awaitable[bool]]
"""Answers whether a named model has a ready instance now."""


class Liveness:
    """Tracks, per expected model, whether it has served and since when it has not."""

    def __init__(
        self,
        models: Sequence[str],
        serving: ModelServing,
        grace: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Watch ``models`` through ``serving``; ``grace`` seconds of absence are tolerated."""
        self._models = tuple(models)
        self._serving = serving
        self._grace = grace
        self._clock = clock
        self._has_served: set[str] = set()
        self._gone_since: dict[str, float] = {}

    async def observe(self) -> None:
        """Look at every model once and update what is known."""
        now = self._clock()
        for name in self._models:
            if await self._serving(name):
                self._has_served.add(name)
                self._gone_since.pop(name, None)
            elif name in self._has_served:
                self._gone_since.setdefault(name, now)

    def note_unloaded(self, name: str, was_ready: bool) -> None:
        """An instance of ``name`` is being unloaded (seen at once, between two looks)."""
        if was_ready:
            self._has_served.add(name)

    def problem(self) -> str | None:
        """Why the server is not live, or None when it is."""
        now = self._clock()
        for name, since in sorted(self._gone_since.items()):
            absent = now - since
            if absent > self._grace:
                return (
                    f"model {name!r} was serving and has not been for {absent:.0f} s "
                    f"(grace ARTPULSE_LIVENESS_GRACE_SECONDS={self._grace:g}); restart needed"
                )
        return None

    async def watch(self, interval: float = WATCH_INTERVAL_S) -> None:
        """Observe forever, every ``interval`` seconds (run as a background task)."""
        while True:
            await self.observe()
            await asyncio.sleep(interval)
