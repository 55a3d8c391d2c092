"""Logs that cannot flood: one line per kind of trouble per interval, the rest counted.

A server answering bad requests, or an event writer facing a database that is down, meets
the same problem thousands of times a minute. Each kind of trouble gets a
``RateLimitedWarning``: the first occurrence is logged, later ones within the interval are
only counted and the next line says how many were held back. Metrics carry the totals.
"""

from __future__ import annotations

import logging
import threading
import time

DEFAULT_INTERVAL_S = 10.0
"""At most one line per kind of trouble in this interval."""


class RateLimitedWarning:
    """A warning logged at most once per interval, saying how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL_S) -> None:
        self._logger = logger
        self._interval = interval
        self._last = -interval
        self._suppressed = 0
        self._lock = threading.Lock()

    def warn(self, message: str, *args: object) -> None:
        """Log ``message`` unless one was logged less than ``interval`` seconds ago."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        suffix = f" ({suppressed} similar warnings suppressed)" if suppressed else ""
        self._logger.warning(message + suffix, *args)


class RateLimitedWarnings:
    """One ``RateLimitedWarning`` per key (e.g. per refusal reason), made on first use."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL_S) -> None:
        self._logger = logger
        self._interval = interval
        self._by_key: dict[str, RateLimitedWarning] = {}
        self._lock = threading.Lock()

    def warn(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` unless a line with the same ``key`` was logged within the interval."""
        with self._lock:
            warning = self._by_key.get(key)
            if warning is None:
                warning = self._by_key[key] = RateLimitedWarning(self._logger, self._interval)
        warning.warn(message, *args)
