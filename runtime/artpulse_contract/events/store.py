"""The prediction event store: one interface over SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from artpulse_contract.events.columnar import (
    as_utc_datetime,
    chunk_columns,
    concatenate,
    rows_to_chunk,
)
from artpulse_contract.events.engine import create_engine, parse_url, sqlite_file
from artpulse_contract.events.ids import new_event_ids
from artpulse_contract.events.model import EventChunk, PredictionEvent
from artpulse_contract.events.schema import create_schema, prediction_events
from artpulse_contract.events.writing import insert_events

DEFAULT_CHUNK_SIZE = 100_000
"""Events per chunk ``iter_chunks`` yields unless told otherwise."""

READ_PARTITION = 10_000
"""Default rows fetched from the driver at a time while reading a chunk."""


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


def _require_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _key_values(timestamp: datetime, event_id: int) -> sa.Tuple:
    """The bound (timestamp, id) pair that keyset pagination compares against."""
    table = prediction_events.c
    return sa.tuple_(
        sa.literal(timestamp, table.timestamp.type), sa.literal(event_id, table.id.type)
    )


class EventStore:
    """Prediction events in one SQL database, written in batches and read in chunks.

    The schema is created on first use. Thread-safe: each call borrows a pooled connection.
    """

    def __init__(self, url: str, *, read_partition: int = READ_PARTITION) -> None:
        """Prepare a store for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

        Nothing is connected yet; an unsupported URL raises ``UnsupportedEventStoreURL``.
        ``read_partition`` is how many rows a read takes from the driver at a time.
        """
        _require_positive("read_partition", read_partition)
        self._read_partition = read_partition
        self._url = parse_url(url)
        self._engine = create_engine(self._url)
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    @property
    def display_url(self) -> str:
        """The store URL with any password hidden, for logs and messages."""
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for callers that aggregate ``schema.prediction_events`` in SQL."""
        return self._engine

    def ensure_schema(self) -> None:
        """Create the table and indexes if they do not exist yet (idempotent, race-safe)."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            path = sqlite_file(self._url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            with self._engine.begin() as connection:
                create_schema(connection)
            self._schema_ready = True

    def write(
        self, events: Sequence[PredictionEvent], event_ids: Sequence[bytes] | None = None
    ) -> None:
        """Insert ``events`` in one transaction (all or none).

        ``event_ids`` (16 bytes each, see ``events.ids``) make the write idempotent: an
        event whose id is already stored is skipped. Without them, fresh ids are drawn.
        """
        if not events:
            return
        ids = new_event_ids(len(events)) if event_ids is None else event_ids
        self.ensure_schema()
        try:
            with self._engine.begin() as connection:
                insert_events(connection, events, ids)
        except Exception:
            # The database may have been replaced by an empty one: check the schema again.
            self._schema_ready = False
            raise

    def count(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_version: str | None = None,
        other_than: Sequence[str] = (),
    ) -> int:
        """Number of events with ``since <= timestamp < until`` (and of ``model_version``,
        and of none of the versions ``other_than``)."""
        conditions = self._conditions(since, until, model_version, other_than)
        self.ensure_schema()
        query = sa.select(sa.func.count()).select_from(prediction_events).where(*conditions)
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def iter_chunks(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_version: str | None = None,
        other_than: Sequence[str] = (),
        last_n: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        probabilities: bool = True,
    ) -> Iterator[EventChunk]:
        """Yield the matching events oldest first, at most ``chunk_size`` per chunk.

        Filters as in ``count``; ``last_n`` keeps only the newest ``last_n`` matching events;
        ``probabilities=False`` leaves that column unread (``EventChunk.probabilities`` None).
        Each chunk is one keyset-paginated query (``(timestamp, id) > last seen``), so memory
        stays bounded by the chunk size and no transaction stays open between chunks.
        """
        _require_positive("chunk_size", chunk_size)
        _require_positive("last_n", last_n)
        conditions = self._conditions(since, until, model_version, other_than)
        columns = chunk_columns(self._engine.dialect, probabilities=probabilities)
        return self._chunks(conditions, last_n, chunk_size, columns)

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    @staticmethod
    def _conditions(
        since: datetime | None,
        until: datetime | None,
        model_version: str | None,
        other_than: Sequence[str],
    ) -> list[sa.ColumnElement[bool]]:
        _require_aware("since", since)
        _require_aware("until", until)
        table = prediction_events.c
        conditions: list[sa.ColumnElement[bool]] = []
        if since is not None:
            conditions.append(table.timestamp >= since)
        if until is not None:
            conditions.append(table.timestamp < until)
        if model_version is not None:
            conditions.append(table.model_version == model_version)
        if other_than:
            conditions.append(table.model_version.not_in(list(other_than)))
        return conditions

    def _chunks(
        self,
        conditions: list[sa.ColumnElement[bool]],
        last_n: int | None,
        chunk_size: int,
        columns: list[sa.ColumnElement[Any]],
    ) -> Iterator[EventChunk]:
        self.ensure_schema()
        key = sa.tuple_(prediction_events.c.timestamp, prediction_events.c.id)
        remaining = last_n
        position: sa.ColumnElement[bool] | None = None
        if last_n is not None:
            with self._engine.connect() as connection:
                start = self._start_of_last_n(connection, conditions, last_n)
            if start is not None:
                position = key >= _key_values(*start)
        while remaining is None or remaining > 0:
            limit = chunk_size if remaining is None else min(chunk_size, remaining)
            query = sa.select(*columns).where(*conditions).order_by(*key.clauses).limit(limit)
            if position is not None:
                query = query.where(position)
            read = self._read_chunk(query)
            if read is None:
                return
            chunk, last_id = read
            yield chunk
            if len(chunk) < limit:
                return
            if remaining is not None:
                remaining -= len(chunk)
            position = key > _key_values(as_utc_datetime(chunk.timestamps[-1]), last_id)

    def _read_chunk(self, query: sa.Select[Any]) -> tuple[EventChunk, int] | None:
        # Rows arrive in partitions (a server-side cursor on PostgreSQL) and become numpy
        # columns as they come, so a chunk never holds all its rows as Python objects.
        dialect = self._engine.dialect
        parts: list[EventChunk] = []
        last_id = 0
        with self._engine.connect() as connection:
            result = connection.execute(query.execution_options(yield_per=self._read_partition))
            for rows in result.partitions():
                parts.append(rows_to_chunk(rows, dialect))
                last_id = rows[-1][1]
        return (concatenate(parts), last_id) if parts else None

    @staticmethod
    def _start_of_last_n(
        connection: Connection, conditions: list[sa.ColumnElement[bool]], last_n: int
    ) -> tuple[datetime, int] | None:
        # One index-ordered probe for the (timestamp, id) of the last_n-th newest event;
        # None when there are fewer, i.e. read from the start.
        table = prediction_events.c
        query = (
            sa.select(table.timestamp, table.id)
            .where(*conditions)
            .order_by(table.timestamp.desc(), table.id.desc())
            .offset(last_n - 1)
            .limit(1)
        )
        row = connection.execute(query).first()
        return None if row is None else (row[0], row[1])
