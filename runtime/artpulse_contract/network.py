"""Why a connection to a server (the registry, the event store, an ArtPulse server) failed, in
a few words: the cause one line of an error message names."""

from __future__ import annotations

import socket
from collections.abc import Iterator

CONNECTION_REFUSED = "connection refused"
"""Nothing listens at the address (the server is not running there)."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what caused it, and so on (``__cause__``, else ``__context__``)."""
    current: BaseException | None = error
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def _is_name_failure(error: BaseException) -> bool:
    return isinstance(error, socket.gaierror) or type(error).__name__ == "NameResolutionError"


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or "Timeout" in type(error).__name__


def connection_failure(error: BaseException) -> str | None:
    """The cause when ``error`` (or what caused it) is a failure to connect or to get an
    answer in time, e.g. ``connection refused``; None for anything else."""
    chain = list(causes(error))
    if any(isinstance(cause, ConnectionRefusedError) for cause in chain):
        return CONNECTION_REFUSED
    if any(_is_name_failure(cause) for cause in chain):
        return "host name not found"
    if any(_is_timeout(cause) for cause in chain):
        return "no answer in time"
    for cause in chain:
        if isinstance(cause, ConnectionError | OSError) and cause.strerror:
            return str(cause.strerror).lower()
    return None
