"""Bringing a store written by an older loomdb to :data:`loomdb.layout.FORMAT_VERSION`.

Format 1 -> 2: a TIMESTAMP column becomes PostgreSQL's timestamp without time
zone. On PostgreSQL format 1 made it a timestamptz; the column is altered to a
timestamp holding each value's UTC wall time (what PostgreSQL with TimeZone UTC
gives). SQLite stored that wall time as text already, so only the format
record changes there.
"""

from __future__ import annotations

from ...backend.protocol import Backend
from ...catalog import TableSchema
from ...layout import FORMAT_VERSION


def _format(backend: Backend) -> int | None:
    row = next(backend.execute("SELECT value FROM loom_meta WHERE key = 'format'"), None)
    return None if row is None else int(row[0])


def timestamp_columns(backend: Backend) -> list[tuple[str, str]]:
    """``(physical table, physical column)`` of every TIMESTAMP (not TIMESTAMPTZ)
    column any branch's schema ever declared."""
    found = set()
    for (definition,) in backend.execute("SELECT definition FROM loom_schema WHERE definition IS NOT NULL"):
        schema = TableSchema.from_json(definition)
        for column in schema.columns:
            if column.type.kind == "timestamp" and not column.type.with_tz:
                found.add((schema.physical, column.phys))
    return sorted(found)


def upgrade_format(backend: Backend) -> None:
    """Upgrade the store behind ``backend`` to :data:`FORMAT_VERSION` in one write
    transaction: all of it or, when anything fails, nothing. Another process may
    have upgraded it first: the format is read again under the catalog lock."""
    backend.begin_write()
    try:
        backend.lock_catalog()
        fmt = _format(backend)
        if fmt is not None and fmt < FORMAT_VERSION:
            if fmt < 2:
                backend.upgrade_timestamp_columns(timestamp_columns(backend))
            backend.execute("UPDATE loom_meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))
            # Cached plans and schemas of other connections hold the old column types.
            backend.execute(
                "UPDATE loom_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'epoch'"
            )
        backend.commit()
    except BaseException:
        backend.rollback()
        raise
