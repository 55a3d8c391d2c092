"""The event store's tables (SQLAlchemy Core) and their idempotent, race-safe creation:
``prediction_events`` (one row per prediction) and ``serving_outcomes`` (requests answered
and failed per model version and period, see ``outcomes.py``).

``event_id`` (16 bytes, unique) makes writes idempotent: a batch written twice is stored
once. Tables created before it existed get the column (NULL for their old rows, which the
unique index allows), and stores made before ``serving_outcomes`` existed get that table,
the first time a store opens them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from artpulse_contract.constants import FEATURE_NAMES
from artpulse_contract.events.ids import EVENT_ID_BYTES

EVENTS_TABLE_NAME = "prediction_events"

SCHEMA_LOCK_KEY = 0x41525450  # "ARTP": PostgreSQL advisory lock serialising schema creation


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite keeps naive UTC text, whose order is time order.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive for SQLite); refuse naive ones."""
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware, got naive {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored instant as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _id_type() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid), not BIGINT.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


metadata = sa.MetaData()

prediction_events = sa.Table(
    EVENTS_TABLE_NAME,
    metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("timestamp", UTCDateTime(), nullable=False),
    sa.Column("request_id", sa.String(), nullable=False),
    sa.Column("model_name", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("input_kind", sa.String(), nullable=False),
    *(sa.Column(name, sa.REAL(), nullable=False) for name in FEATURE_NAMES),
    sa.Column("label", sa.String(), nullable=False),
    # Five little-endian float32 values in LABELS order (20 bytes); see store.py.
    sa.Column("probabilities", sa.LargeBinary(), nullable=False),
    # Nullable only for rows written before the column existed; the writer always sets it.
    sa.Column("event_id", sa.LargeBinary(EVENT_ID_BYTES), nullable=True),
)
"""One row per prediction; features as five REAL columns so SQL can aggregate them."""

sa.Index(
    "ix_prediction_events_timestamp",
    prediction_events.c.timestamp,
    prediction_events.c.id,
)
sa.Index("ux_prediction_events_event_id", prediction_events.c.event_id, unique=True)
sa.Index(
    "ix_prediction_events_model_version",
    prediction_events.c.model_version,
    prediction_events.c.timestamp,
    prediction_events.c.id,
)

LATENCY_BOUNDS: tuple[float, ...] = tuple(0.0005 * 1.25**k for k in range(52))
"""Upper bounds (seconds) of the finite latency buckets: 0.5 ms to about 54 s."""
LATENCY_BUCKETS = len(LATENCY_BOUNDS) + 1
"""The finite buckets and one for anything slower."""

serving_outcomes = sa.Table(
    "serving_outcomes",
    metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime(), nullable=False),
    sa.Column("instance", sa.String(), nullable=False),
    sa.Column("model_name", sa.String(), nullable=False),
    sa.Column("model_version", sa.String(), nullable=False),
    sa.Column("answered", sa.Integer(), nullable=False),
    sa.Column("server_errors", sa.Integer(), nullable=False),
    # LATENCY_BUCKETS little-endian uint32 counts of answered requests; see outcomes.py.
    sa.Column("latency_counts", sa.LargeBinary(), nullable=False),
)
"""One row per serving process, model version and period (written every few seconds)."""

sa.Index(
    "ix_serving_outcomes_model_version",
    serving_outcomes.c.model_version,
    serving_outcomes.c.period_end,
)

FEATURE_COLUMNS: tuple[sa.Column[Any], ...] = tuple(prediction_events.c[n] for n in FEATURE_NAMES)
"""The feature columns, in ``FEATURE_NAMES`` order."""


def _add_missing_event_id(connection: Connection) -> None:
    columns = {column["name"] for column in sa.inspect(connection).get_columns(EVENTS_TABLE_NAME)}
    if "event_id" in columns:
        return
    column = prediction_events.c.event_id
    column_type = column.type.compile(dialect=connection.dialect)
    table = connection.dialect.identifier_preparer.format_table(prediction_events)
    try:
        connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN event_id {column_type}")
    except sa.exc.OperationalError as error:
        # SQLite: another process added it between the look and the ALTER.
        if "duplicate column" not in str(error):
            raise


def create_schema(connection: Connection) -> None:
    """Create the tables and their indexes if absent (or add ``event_id`` to an older
    prediction table), inside the caller's transaction.

    Safe when several processes start at once: ``IF NOT EXISTS`` on SQLite (DDL runs under
    its database write lock) and, on PostgreSQL, a transaction-scoped advisory lock, since
    concurrent ``CREATE ... IF NOT EXISTS`` can still collide in its catalog.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
    connection.execute(CreateTable(prediction_events, if_not_exists=True))
    connection.execute(CreateTable(serving_outcomes, if_not_exists=True))
    _add_missing_event_id(connection)
    indexes = [*prediction_events.indexes, *serving_outcomes.indexes]
    for index in sorted(indexes, key=lambda item: str(item.name)):
        connection.execute(CreateIndex(index, if_not_exists=True))
