"""Exponential backoff with jitter: the one retry schedule of every ArtPulse retry loop.

Each wait doubles from ``initial`` up to ``maximum``, then a random share of up to ``jitter``
of it is taken off, so replicas that failed together (a registry or database restart) do not
retry in lockstep. With ``jitter=0`` the schedule is the plain doubling one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

MAX_DOUBLINGS = 32
"""Doublings beyond this cannot raise a wait any further below any sensible cap."""


@dataclass(frozen=True)
class Backoff:
    """A retry schedule: ``initial`` seconds, doubling per attempt, capped at ``maximum``."""

    initial: float
    maximum: float
    jitter: float = 0.5
    """Largest share of a wait taken off at random (0: none, 1: anywhere down to zero)."""

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum, got initial={self.initial}, "
                f"maximum={self.maximum}"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff jitter {self.jitter} must lie in [0, 1]")

    def ceiling(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1, 2, ...) without jitter."""
        doublings = min(max(attempt - 1, 0), MAX_DOUBLINGS)
        return min(self.maximum, self.initial * 2**doublings)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt``: its ceiling less a random share."""
        draw = (rng or _RNG).random()
        return self.ceiling(attempt) * (1.0 - self.jitter * draw)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits before retry 1, 2, 3, ... (endless)."""
        attempt = 1
        while True:
            yield self.delay(attempt, rng)
            attempt += 1


_RNG = random.Random()
"""Seeded from the OS per process, so two replicas draw different jitter."""
