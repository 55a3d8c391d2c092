"""Decide whether a test that needs an outside service skips or fails when it is absent."""

from __future__ import annotations

import os
import socket

import pytest


def require_or_skip(flag: str, reason: str) -> None:
    """Fail when the environment variable ``flag`` is set (CI), else skip with ``reason``."""
    if os.environ.get(flag):
        pytest.fail(f"{flag}=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
