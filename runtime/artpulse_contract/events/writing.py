"""Idempotent bulk inserts of events: the table is SQLAlchemy Core's, the fast path the driver's.

SQLAlchemy's generic ``executemany`` spends most of its time building per-row parameter
dicts; the writer thread shares the server's cores, so rows go to the driver as plain
tuples instead: ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL (psycopg).
Every row carries its event id and a row whose id is already stored is skipped
(``ON CONFLICT (event_id) DO NOTHING``): on PostgreSQL the batch is copied into a
session-local temporary table, then inserted from it with that clause, since ``COPY``
itself cannot skip. Both run inside the caller's transaction; the timestamp is converted by
the column's own SQLAlchemy type, so stored values are exactly what a Core insert would store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from artpulse_contract.events.columnar import PROBABILITIES
from artpulse_contract.events.model import PredictionEvent
from artpulse_contract.events.schema import prediction_events

INCOMING_TABLE = "artpulse_incoming_events"
"""PostgreSQL temporary table (per session, emptied at each commit) a batch is copied into."""

INSERT_COLUMNS: tuple[sa.Column[Any], ...] = tuple(
    column for column in prediction_events.columns if column.name != "id"
)
"""Columns an insert fills, in the order ``_values`` produces them."""


def _values(
    event: PredictionEvent, event_id: bytes, timestamp: Callable[[Any], Any]
) -> tuple[Any, ...]:
    return (
        timestamp(event.timestamp),
        event.request_id,
        event.model_name,
        event.model_version,
        event.input_kind,
        *event.features,
        event.label,
        PROBABILITIES.pack(*event.probabilities),
        event_id,
    )


def _timestamp_converter(dialect: Dialect) -> Callable[[Any], Any]:
    column_type = prediction_events.c.timestamp.type
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    # UTCDateTime defines process_bind_param, so SQLAlchemy always gives a processor.
    assert processor is not None
    return processor


def _copy_rows(connection: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    driver_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except driver_error as error:
        # Raise what a Core insert would: SQLAlchemy's IntegrityError, OperationalError, ...
        raise sa.exc.DBAPIError.instance(statement, None, error, driver_error) from error


def insert_events(
    connection: Connection, events: Sequence[PredictionEvent], event_ids: Sequence[bytes]
) -> None:
    """Insert ``events`` (with their ``event_ids``) within the connection's current
    transaction, skipping any whose id is already stored."""
    dialect = connection.dialect
    convert = _timestamp_converter(dialect)
    rows = [
        _values(event, event_id, convert) for event, event_id in zip(events, event_ids, strict=True)
    ]
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.format_column(column) for column in INSERT_COLUMNS)
    table = preparer.format_table(prediction_events)
    skip = "ON CONFLICT (event_id) DO NOTHING"
    if dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {INCOMING_TABLE} ON COMMIT DELETE ROWS "
            f"AS SELECT {names} FROM {table} WITH NO DATA"
        )
        _copy_rows(connection, f"COPY {INCOMING_TABLE} ({names}) FROM STDIN", rows)
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {INCOMING_TABLE} {skip}"
        )
        return
    placeholders = ", ".join("?" for _ in INSERT_COLUMNS)
    connection.exec_driver_sql(
        f"INSERT INTO {table} ({names}) VALUES ({placeholders}) {skip}", rows
    )
