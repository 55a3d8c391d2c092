"""A shared capacity (bytes in flight, pixels being decoded) that requests reserve and release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CapacityBudget:
    """A counted capacity shared by the requests of one event loop.

    ``try_reserve`` refuses at once when the amount does not fit (load shedding);
    ``held`` waits, without blocking the loop, until the amount fits, and an amount larger
    than the whole capacity waits until nothing else holds any (it then runs alone instead of
    never).
    """

    def __init__(self, capacity: int) -> None:
        """A budget of ``capacity`` units, none reserved."""
        if capacity < 1:
            raise ValueError(f"a budget needs a capacity >= 1, got {capacity}")
        self._capacity = capacity
        self._used = 0
        self._released: asyncio.Event | None = None

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
        if self._used + amount > self._capacity:
            return False
        self._used += amount
        return True

    def release(self, amount: int) -> None:
        """Give back ``amount`` units reserved earlier."""
        self._used -= amount
        if self._released is not None:
            self._released.set()

    @asynccontextmanager
    async def held(self, amount: int) -> AsyncIterator[None]:
        """Wait until ``amount`` units (at most the capacity) fit, hold them for the block."""
        amount = min(amount, self._capacity)
        while not self.try_reserve(amount):
            if self._released is None:
                self._released = asyncio.Event()
            self._released.clear()
            await self._released.wait()
        try:
            yield
        finally:
            self.release(amount)
