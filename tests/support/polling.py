"""Wait for an outcome by polling it with a deadline: no test sleeps for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = probe()
    while not last:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = probe()
    return last
