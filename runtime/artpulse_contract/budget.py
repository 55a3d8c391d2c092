"""A shared capacity (bytes in flight, pixels being decoded) that requests reserve and release."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CapacityBudget:
    """A counted capacity shared by threads and the event loop.

    ``try_reserve`` refuses at once when the amount does not fit (load shedding);
    ``hold`` waits until it fits, and an amount larger than the whole capacity waits until
    nothing else holds any (it then runs alone instead of never).
    """

    def __init__(self, capacity: int) -> None:
        """A budget of ``capacity`` units, none reserved."""
        if capacity < 1:
            raise ValueError(f"a budget needs a capacity >= 1, got {capacity}")
        self._capacity = capacity
        self._used = 0
        self._condition = threading.Condition()

    @property
    def capacity(self) -> int:
        """Units the budget holds in all."""
        return self._capacity

    @property
    def used(self) -> int:
        """Units reserved now."""
        return self._used

    def try_reserve(self, amount: int) -> bool:
        """Reserve ``amount`` units if they fit now; False (nothing reserved) otherwise."""
        with self._condition:
            if self._used + amount > self._capacity:
                return False
            self._used += amount
            return True

    def release(self, amount: int) -> None:
        """Give back ``amount`` units reserved earlier."""
        with self._condition:
            self._used -= amount
            self._condition.notify_all()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        """Wait until ``amount`` units (at most the capacity) fit, hold them for the block."""
        amount = min(amount, self._capacity)
        with self._condition:
            self._condition.wait_for(lambda: self._used + amount <= self._capacity)
            self._used += amount
        try:
            yield
        finally:
            self.release(amount)
