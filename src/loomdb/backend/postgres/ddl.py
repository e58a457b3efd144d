"""The DDL the PostgreSQL engine writes for loomdb's physical tables: the versioned
table with its sequences and indexes, added columns, user and vector indexes, and
the INSERT that takes a version id from the table's sequence. Pure text builders."""

from __future__ import annotations

from collections.abc import Sequence

from ...layout import (
    IDENTITY_INDEX_COLUMNS,
    IDENTITY_INDEX_WHERE,
    VERSION_COLUMNS,
    covering_columns,
    identity_index,
    version_insert_sql,
)
from ...types import ColumnType
from .types import cast_type, native_type

_VERSION_TYPES = {
    "_vid": "bigint PRIMARY KEY",
    "_rid": "bigint NOT NULL",
    "_bid": "bigint NOT NULL",
    "_seq": "bigint NOT NULL",
    "_end": "bigint NOT NULL",
    "_del": "smallint NOT NULL",
}


def serial_sequence(table: str, column: str) -> str:
    """The quoted name of the sequence behind SERIAL column ``column`` of ``table``.

    >>> serial_sequence("loom_t1", "c1")
    '"loom_t1__c1__serial"'
    """
    return f'"{table}__{column}__serial"'


def physical_table(table: str, columns: Sequence[tuple[str, ColumnType]], has_vector: bool) -> list[str]:
    """The statements creating versioned table ``table`` with user columns
    ``(physical name, type)``: the SERIAL columns' sequences, the version-id
    sequence, the table, its identity index and its (_seq, _bid) index."""
    version = ", ".join(f"{c} {_VERSION_TYPES[c]}" for c in VERSION_COLUMNS)
    user = "".join(f', "{phys}" {native_type(ctype, has_vector)}' for phys, ctype in columns)
    statements = [
        f"CREATE SEQUENCE {serial_sequence(table, phys)}" for phys, ctype in columns if ctype.kind == "serial"
    ]
    statements += [
        f'CREATE SEQUENCE "{table}__vid"',
        f'CREATE TABLE "{table}" ({version}{user})',
        f'CREATE INDEX "{identity_index(table)}" ON "{table}"'
        f" ({', '.join(IDENTITY_INDEX_COLUMNS)}) WHERE {IDENTITY_INDEX_WHERE}",
        # A branch's changes since a commit (merge, diff) are found by this index. It
        # leads with _seq: led by _bid it would lure the planner into "_bid = 1" scans.
        f'CREATE INDEX "{table}__seq" ON "{table}" (_seq, _bid)',
    ]
    return statements


def added_column(table: str, column: str, ctype: ColumnType, has_vector: bool) -> list[str]:
    """ALTER TABLE ... ADD COLUMN, after the sequence of a SERIAL column."""
    statements = [f"CREATE SEQUENCE {serial_sequence(table, column)}"] if ctype.kind == "serial" else []
    statements.append(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {native_type(ctype, has_vector)}')
    return statements


def index(table: str, name: str, columns: Sequence[str], method: str | None, opclass: str | None) -> str:
    """A covering B-tree index on ``columns``, or a pgvector index (``method`` hnsw
    or ivfflat, with ``opclass``) on its one column."""
    if method in ("hnsw", "ivfflat"):
        (column,) = columns
        ops = f" {opclass}" if opclass else ""
        return f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING {method} ("{column}"{ops})'
    cols = covering_columns([f'"{c}"' for c in columns])
    return f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({cols})'


def allocating_insert(table: str, columns: Sequence[tuple[str, ColumnType]], has_vector: bool) -> str:
    """The INSERT of one version that takes its _vid from the table's sequence
    and returns it; parameters: _rid (None: the new _vid), _bid, _seq, _end,
    _del, then the user columns. Typed casts, because an INSERT ... SELECT
    does not give untyped parameters the target column's type."""
    values = "".join(
        f", CAST(?{i + 6} AS {cast_type(ctype, has_vector)})" for i, (_, ctype) in enumerate(columns)
    )
    return (
        version_insert_sql(table, [phys for phys, _ in columns])
        + " SELECT n.v, COALESCE(CAST(?1 AS bigint), n.v), CAST(?2 AS bigint), CAST(?3 AS bigint),"
        f" CAST(?4 AS bigint), CAST(?5 AS smallint){values}"
        f" FROM (SELECT nextval('\"{table}__vid\"') AS v) AS n RETURNING _vid"
    )


def timestamp_upgrade(table: str, column: str) -> str:
    """The ALTER that turns a format-1 TIMESTAMP column (a timestamptz) into
    PostgreSQL's timestamp holding each value's UTC wall time.

    >>> timestamp_upgrade("loom_t1", "c2")
    'ALTER TABLE "loom_t1" ALTER COLUMN "c2" TYPE timestamp USING "c2" AT TIME ZONE \'UTC\''
    """
    return (
        f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE timestamp USING "{column}" AT TIME ZONE \'UTC\''
    )
