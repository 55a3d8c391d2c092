"""Event store URLs and their SQLAlchemy engines: SQLite in WAL mode with a busy timeout,
PostgreSQL (psycopg) failing fast on an unreachable host."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from artpulse_contract.backoff import Backoff

SQLITE_BUSY_TIMEOUT_S = 10.0
"""How long a SQLite connection waits for another writer's lock before failing (default)."""

POSTGRES_CONNECT_TIMEOUT_S = 5
"""How long a PostgreSQL connection attempt may take, so an unreachable host fails fast."""

SUPPORTED_SCHEMES = ("sqlite:///<path>", "postgresql+psycopg://<user>@<host>:<port>/<db>")


class UnsupportedEventStoreURL(ValueError):
    """The event store URL names a database this store does not support."""


def parse_url(url: str) -> URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise UnsupportedEventStoreURL(
            f"event store URL {url!r} is not a SQLAlchemy URL; use one of {SUPPORTED_SCHEMES}"
        ) from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        shown = parsed.render_as_string(hide_password=True)
        raise UnsupportedEventStoreURL(
            f"event store URL {shown!r} uses driver {parsed.drivername!r}; "
            f"use one of {SUPPORTED_SCHEMES}"
        )
    return parsed


def sqlite_file(url: URL) -> Path | None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


WAL_RETRY = Backoff(initial=0.01, maximum=0.2)
"""Waits between attempts to switch a new SQLite file to WAL while another connection does."""


def _enable_wal(cursor: sqlite3.Cursor, timeout: float) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite reports "locked" at once
    # (no busy wait) when another connection races to do the same: retry until the timeout.
    # (An in-memory database answers "memory" and stays so.)
    deadline = time.monotonic() + timeout
    for delay in WAL_RETRY.delays():
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)


def _create_sqlite_engine(url: URL) -> Engine:
    # The busy timeout (``?timeout=<seconds>`` in the URL, else SQLITE_BUSY_TIMEOUT_S) makes
    # a second writer wait for the lock instead of failing at once; WAL lets the drift job
    # read while the server writes.
    timeout = float(url.query.get("timeout", SQLITE_BUSY_TIMEOUT_S))  # type: ignore[arg-type]
    engine = sa.create_engine(url, connect_args={"timeout": timeout})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        _enable_wal(cursor, timeout)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return engine


def create_engine(url: URL) -> Engine:
    if url.drivername.startswith("sqlite"):
        return _create_sqlite_engine(url)
    # Fail fast on an unreachable host, and notice a silently dead peer (keepalives) instead
    # of blocking the writer thread for the kernel's TCP timeout; the URL may override these.
    defaults: dict[str, Any] = {
        "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    connect_args = {key: value for key, value in defaults.items() if key not in url.query}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
