"""loomdb's column types as PostgreSQL's, and values across the boundary.

Columns are PostgreSQL's native types (jsonb, timestamp, timestamptz, numeric,
boolean, uuid, pgvector's ``vector(n)``), so the store can be queried,
indexed and backed up with PostgreSQL's own tools. Values cross the boundary
in loomdb's storage forms (see :mod:`loomdb.types`): the adapters registered
by :func:`register_adapters` return JSON text, little-endian float32 bytes
and fixed-width UTC timestamp text, exactly as the SQLite engine does, so
every layer above behaves the same on both engines.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo
from psycopg.types.datetime import TimestampBinaryLoader, TimestamptzBinaryLoader

from ... import errors
from ...number_input import FloatNaN
from ...time_values import format_timestamp
from ...types import ColumnType, VectorBlob

# Native column types by loomdb kind. Text compares bytewise (COLLATE "C"),
# as on SQLite, so ORDER BY and comparisons agree across engines.
_NATIVE = {
    "text": 'text COLLATE "C"',
    "int": "bigint",
    "serial": "bigint",
    "float": "double precision",
    "numeric": "numeric",
    "bool": "boolean",
    "json": "jsonb",
    "timestamp": "timestamptz",
    "date": "date",
    "bytes": "bytea",
    "uuid": "uuid",
}

# Integer widths the user may declare, as PostgreSQL has them.
_SIZED = {
    "smallint": "smallint",
    "int2": "smallint",
    "smallserial": "smallint",
    "int": "integer",
    "integer": "integer",
    "int4": "integer",
    "serial": "integer",
}


def native_type(ctype: ColumnType, has_vector: bool) -> str:
    """The PostgreSQL type of a column of ``ctype`` (with its collation).
    Raises NotSupportedError for a VECTOR without pgvector (``has_vector``)."""
    if ctype.kind == "vector":
        if not has_vector:
            raise errors.NotSupportedError(
                "VECTOR columns need the pgvector extension, which this PostgreSQL server does not"
                " have enabled: install pgvector and run CREATE EXTENSION vector (as a superuser)"
                " in this database"
            )
        return f"vector({ctype.dim})"
    if ctype.kind in ("int", "serial"):
        # The width the user declared, as PostgreSQL has it: sum() of an
        # INT column is a bigint, of a BIGINT column a numeric.
        base = ctype.sql.split("(")[0].strip().lower()
        return _SIZED.get(base, _NATIVE[ctype.kind])
    if ctype.kind == "timestamp" and not ctype.with_tz:
        return "timestamp"  # PostgreSQL's timestamp without time zone, as declared
    if ctype.is_float4:
        return "real"  # PostgreSQL's float4: its sums, casts and text are float4's
    return _NATIVE[ctype.kind]


def cast_type(ctype: ColumnType, has_vector: bool) -> str:
    """The type to CAST a parameter to for a column of ``ctype`` (no collation)."""
    return native_type(ctype, has_vector).split(" COLLATE ")[0]


# -- adapting loomdb's storage forms to PostgreSQL's binary formats ------------------------


class _VectorDumper(Dumper):
    """VectorBlob (little-endian float32) -> pgvector's binary ``vector``."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        """Dimension count, a zero word, then the values as big-endian float32."""
        values = np.frombuffer(obj, dtype="<f4")
        return struct.pack(">HH", len(values), 0) + values.astype(">f4").tobytes()


class _VectorLoader(Loader):
    """pgvector's binary ``vector`` -> little-endian float32 bytes (a VectorBlob,
    so that a value read and written back stays a vector)."""

    format = Format.BINARY

    def load(self, data: Any) -> bytes:
        """The values after the 4-byte header, as a VectorBlob."""
        return VectorBlob(np.frombuffer(data, dtype=">f4", offset=4).astype("<f4").tobytes())


class _JsonbLoader(Loader):
    """Binary jsonb (a version byte, then the text) -> the JSON text, unparsed."""

    format = Format.BINARY

    def load(self, data: Any) -> str:
        """The text after the version byte."""
        return bytes(data[1:]).decode()


class _JsonLoader(Loader):
    """Binary json -> the JSON text, unparsed."""

    format = Format.BINARY

    def load(self, data: Any) -> str:
        """The text as it is."""
        return bytes(data).decode()


class _TimestampLoader(TimestamptzBinaryLoader):
    """timestamptz -> loomdb's fixed-width UTC text."""

    def load(self, data: Any) -> Any:
        """psycopg's datetime, formatted as loomdb stores timestamps."""
        return format_timestamp(super().load(data))


class _NaiveTimestampLoader(TimestampBinaryLoader):
    """timestamp -> loomdb's fixed-width text of its wall time (as the SQLite engine stores it)."""

    def load(self, data: Any) -> Any:
        """psycopg's naive datetime, formatted as loomdb stores timestamps."""
        return format_timestamp(super().load(data))


class _BoolDumper(Dumper):
    """Python bool as PostgreSQL boolean (psycopg's default; kept explicit)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        """One byte, 1 or 0."""
        return b"\x01" if obj else b"\x00"


class _NaNDumper(Dumper):
    """A NaN stored into a float column (:class:`~loomdb.number_input.FloatNaN`) as float8's NaN."""

    oid = 701  # float8

    def dump(self, obj: Any) -> bytes:
        """PostgreSQL's text for it."""
        return b"NaN"


def register_adapters(conn: psycopg.Connection[Any], has_vector: bool) -> None:
    """Make ``conn`` return and take values in loomdb's storage forms (vectors
    only when ``has_vector``: pgvector is installed)."""
    adapters = conn.adapters
    adapters.register_dumper(bool, _BoolDumper)
    adapters.register_dumper(FloatNaN, _NaNDumper)
    for name, loader in (
        ("jsonb", _JsonbLoader),
        ("json", _JsonLoader),
        ("timestamptz", _TimestampLoader),
        ("timestamp", _NaiveTimestampLoader),
    ):
        info = TypeInfo.fetch(conn, name)
        assert info is not None  # built-in types
        adapters.register_loader(info.oid, loader)
    if has_vector:
        info = TypeInfo.fetch(conn, "vector")
        assert info is not None  # the extension is installed
        _VectorDumper.oid = info.oid
        adapters.register_dumper(VectorBlob, _VectorDumper)
        adapters.register_loader(info.oid, _VectorLoader)
