"""Column types: how each SQL type is declared, stored and returned.

A value crosses three representations:

* the Python value a user passes or receives (``dict``, ``datetime``,
  ``numpy.ndarray``, ``Decimal``...);
* the storage value loomdb's layers pass around and bind: JSON as compact
  text, VECTOR as little-endian float32 bytes (:class:`VectorBlob`),
  TIMESTAMP and TIMESTAMPTZ as fixed-width UTC text that sorts chronologically
  (see :mod:`loomdb.time_values`), NUMERIC as
  exact decimal text, BOOLEAN as ``bool``. SQLite keeps exactly these; the
  PostgreSQL engine stores native types (jsonb, pgvector's vector,
  timestamptz, numeric, boolean) and hands results back in these forms;
* the backend's own result value, decoded back by :func:`from_storage`.

>>> t = ColumnType.parse("VECTOR(3)")
>>> t.kind, t.dim
('vector', 3)
>>> from_storage(to_storage([1, 2, 3], t, "e"), t).tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import orjson

from .errors import DataError, NotSupportedError
from .jsonb_text import dump_jsonb, load_jsonb
from .number_input import FLOAT_NAN, float4_value, int_bits, int_input, numeric_text, to_float4
from .pg_input import parse_bytea, parse_uuid
from .time_values import format_timestamp, parse_date_input, parse_input, timestamp_storage

UTC = dt.UTC

# SQL type name (lower case, as sqlglot prints it for Postgres) -> kind.
_KINDS: dict[str, str] = {
    "text": "text",
    "varchar": "text",
    "char": "text",
    "character": "text",
    "character varying": "text",
    "name": "text",
    "citext": "text",
    "smallint": "int",
    "int": "int",
    "integer": "int",
    "bigint": "int",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "tinyint": "int",
    "serial": "serial",
    "bigserial": "serial",
    "smallserial": "serial",
    "real": "float",
    "float": "float",
    "float4": "float",
    "float8": "float",
    "double": "float",
    "double precision": "float",
    "numeric": "numeric",
    "decimal": "numeric",
    "boolean": "bool",
    "bool": "bool",
    "json": "json",
    "jsonb": "json",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "timestamp with time zone": "timestamp",
    "timestamp without time zone": "timestamp",
    "datetime": "timestamp",
    "date": "date",
    "bytea": "bytes",
    "blob": "bytes",
    "varbinary": "bytes",
    "uuid": "uuid",
    "vector": "vector",
}

# The SQLite type affinity each kind is stored with.
_AFFINITY = {
    "text": "TEXT",
    "int": "INTEGER",
    "serial": "INTEGER",
    "float": "REAL",
    "numeric": "NUMERIC_TEXT",
    "bool": "INTEGER",
    "json": "TEXT",
    "timestamp": "TEXT",
    "date": "TEXT",
    "bytes": "BLOB",
    "uuid": "TEXT",
    "vector": "BLOB",
}


@dataclass(frozen=True)
class ColumnType:
    """A declared column type: its ``kind`` (one of the keys of the storage
    rules), the SQL spelling the user wrote, and the vector dimension."""

    kind: str
    sql: str
    dim: int | None = None

    @classmethod
    def parse(cls, sql_type: str) -> ColumnType:
        """Parse a type as written in CREATE TABLE (``VARCHAR(20)``, ``VECTOR(1536)``).

        Raises NotSupportedError naming the type when loomdb has no rule for it.
        """
        text = " ".join(sql_type.strip().lower().split())
        base, _, rest = text.partition("(")
        base = base.strip()
        if base.endswith("[]"):
            raise NotSupportedError(f"array type {sql_type!r} is not supported; use JSONB")
        kind = _KINDS.get(base)
        if kind is None:
            raise NotSupportedError(f"column type {sql_type!r} is not supported")
        dim = None
        if kind == "vector":
            digits = rest.rstrip(")").strip()
            if not digits.isdigit() or int(digits) <= 0:
                raise DataError(
                    f"VECTOR needs a positive dimension, as in VECTOR(1536): got {sql_type!r}",
                    sqlstate="22023",
                )
            dim = int(digits)
        return cls(kind, sql_type.strip().upper(), dim)

    @property
    def affinity(self) -> str:
        """The SQLite column affinity used for the physical column."""
        return _AFFINITY[self.kind]

    @property
    def modifiers(self) -> tuple[int, ...]:
        """The integers in the type's parentheses: ``NUMERIC(10, 2)`` -> (10, 2), ``VARCHAR(20)`` -> (20,).

        >>> ColumnType.parse("NUMERIC(10, 2)").modifiers, ColumnType.parse("TEXT").modifiers
        ((10, 2), ())
        """
        _, _, rest = self.sql.partition("(")
        parts = [p.strip() for p in rest.rstrip(")").split(",") if p.strip()]
        return tuple(int(p) for p in parts if p.lstrip("-").isdigit())

    @property
    def is_float4(self) -> bool:
        """Whether a float type is PostgreSQL's ``real`` (float4), whose values are float32.

        >>> ColumnType.parse("REAL").is_float4, ColumnType.parse("DOUBLE PRECISION").is_float4
        (True, False)
        """
        if self.kind != "float":
            return False
        base = self.sql.partition("(")[0].strip()
        if base in ("REAL", "FLOAT4"):
            return True
        return base == "FLOAT" and bool(self.modifiers) and self.modifiers[0] <= 24

    @functools.cached_property
    def int_bounds(self) -> tuple[int, int]:
        """The smallest and largest value of an integer type."""
        bits = int_bits(self.sql)
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    @functools.cached_property
    def with_tz(self) -> bool:
        """Whether a timestamp type is TIMESTAMPTZ (aware UTC datetimes), not TIMESTAMP (naive ones).

        >>> ColumnType.parse("TIMESTAMPTZ").with_tz, ColumnType.parse("TIMESTAMP").with_tz
        (True, False)
        """
        return self.kind == "timestamp" and self.sql.startswith(("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"))

    @property
    def max_length(self) -> int | None:
        """The length limit of ``VARCHAR(n)`` / ``CHAR(n)`` (None when there is none)."""
        if self.kind != "text" or not self.modifiers:
            return None
        return self.modifiers[0]


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dump_json(value: Any) -> str:
    """Compact JSON with sorted keys (as jsonb normalises objects).

    Raises ValueError for NaN or infinity (JSON has no such numbers) and
    TypeError for values JSON cannot hold.
    """
    try:
        out = orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:  # e.g. integers beyond 64 bits: the standard library handles them
        out = None
    if out is None or b"null" in out:
        # orjson writes NaN and infinity as null; the standard library refuses them.
        return json.dumps(
            value,
            separators=(",", ":"),
            sort_keys=True,
            allow_nan=False,
            ensure_ascii=False,
            default=_json_default,
        )
    return out.decode()


def load_json(text: str | bytes) -> Any:
    """Parse JSON text (raises ValueError when it is not JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # big integers, NaN tokens: let the standard library decide


_FRACTION = re.compile(r"[0-9][.eE]")


class VectorBlob(bytes):
    """A VECTOR value in storage form: little-endian float32 bytes.

    SQLite stores it as a BLOB; the PostgreSQL engine recognises the type
    and binds it as pgvector's ``vector`` (plain ``bytes`` stay BYTEA).
    """

    __slots__ = ()


def _vector_bytes(value: Any, ctype: ColumnType | None, column: str) -> VectorBlob:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) % 4:
            raise DataError(f"column {column!r}: a VECTOR blob must hold float32 values", sqlstate="22P03")
        arr = np.frombuffer(raw, dtype="<f4")
    elif isinstance(value, str):
        try:
            arr = np.asarray(load_json(value), dtype="<f4")
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"column {column!r}: {value[:40]!r} is not a vector literal", sqlstate="22P02"
            ) from exc
    else:
        try:
            arr = np.asarray(value, dtype="<f4")
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"column {column!r}: expected a list of numbers for VECTOR, got {type(value).__name__}"
            ) from exc
    if arr.ndim != 1:
        raise DataError(
            f"column {column!r}: a vector must be one-dimensional, got shape {arr.shape}", sqlstate="22P02"
        )
    if ctype is not None and ctype.dim is not None and arr.shape[0] != ctype.dim:
        raise DataError(
            f"column {column!r} is VECTOR({ctype.dim}) but the value has {arr.shape[0]} dimensions",
            sqlstate="22000",
        )
    if not np.isfinite(arr).all():
        raise DataError(f"column {column!r}: a vector may not contain NaN or infinity", sqlstate="22000")
    return VectorBlob(arr.tobytes())


def _json_text(value: Any, column: str) -> str:
    if isinstance(value, str):
        # A str bound to JSON is JSON text, as in PostgreSQL, its numbers numerics:
        # read exactly (slower) only when it may hold a fraction or an exponent.
        try:
            if _FRACTION.search(value):
                return dump_jsonb(load_jsonb(value))
            value = load_json(value)
        except ValueError as exc:
            raise DataError(
                f"column {column!r}: {value[:60]!r} is not valid JSON ({exc})", sqlstate="22P02"
            ) from exc
    try:
        return dump_json(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"column {column!r}: value is not JSON-serialisable ({exc})") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def to_storage(
    value: Any, ctype: ColumnType, column: str, now: Callable[[], dt.datetime] | None = None
) -> Any:
    """Convert a Python (or already stored) value into the column's storage form;
    ``now`` answers the time inputs 'now', 'today'... (NotSupportedError for
    them without it).

    Raises DataError naming the column when the value does not fit.
    """
    if value is None:
        return None
    kind = ctype.kind
    try:
        if kind == "text":
            if isinstance(value, (bytes, bytearray)):
                raise DataError(f"column {column!r} is TEXT; bytes need a BYTEA column")
            if isinstance(value, str):
                text = value if type(value) is str else str(value)
            elif isinstance(value, (dict, list)):
                text = json.dumps(value)
            elif isinstance(value, Decimal) and value.is_finite():
                text = numeric_text(value)  # as PostgreSQL writes a numeric: never an exponent
            else:
                text = str(value)
            return _fit_length(text, ctype) if ctype.max_length is not None else text
        if kind in ("int", "serial"):
            low, high = ctype.int_bounds
            if type(value) is int and low <= value <= high:
                return value
            return int_input(value, int_bits(ctype.sql), column)
        if kind == "float":
            number = float(value)
            if number != number:
                return FLOAT_NAN
            return to_float4(number, value) if ctype.is_float4 else number
        if kind == "numeric":
            if isinstance(value, float):
                # PostgreSQL's float8 -> numeric keeps 15 significant digits (DBL_DIG).
                value = Decimal(f"{value:.15g}") if math.isfinite(value) else value
            dec = value if isinstance(value, Decimal) else Decimal(str(value).strip())
            if not dec.is_finite():
                raise NotSupportedError(f"NUMERIC {value!r} (NaN or infinity) is not supported by loomdb")
            return numeric_text(dec, ctype.modifiers)
        if kind == "bool":
            if isinstance(value, (bool, int, np.bool_)):
                return bool(value)
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("t", "true", "yes", "on", "1", "y"):
                    return True
                if low in ("f", "false", "no", "off", "0", "n"):
                    return False
            raise DataError(
                f"column {column!r} is BOOLEAN: {value!r} is not a boolean",
                sqlstate="22P02" if isinstance(value, str) else None,
            )
        if kind == "json":
            return _json_text(value, column)
        if kind == "timestamp":
            stored = timestamp_storage(value, ctype.with_tz, now)
            if stored is not None:
                return stored
            raise DataError(f"column {column!r} is {ctype.sql}: {value!r} is not a timestamp")
        if kind == "date":
            if isinstance(value, dt.datetime):
                return value.date().isoformat()
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, str):
                return parse_date_input(value, now).isoformat()
            raise DataError(f"column {column!r} is DATE: {value!r} is not a date")
        if kind == "bytes":
            if isinstance(value, (bytes, bytearray, memoryview)):
                return bytes(value)
            if isinstance(value, str):
                return parse_bytea(value)
            raise DataError(f"column {column!r} is BYTEA: expected bytes, got {type(value).__name__}")
        if kind == "uuid":
            return str(value) if isinstance(value, uuid.UUID) else parse_uuid(str(value))
        if kind == "vector":
            return _vector_bytes(value, ctype, column)
    except DataError:
        raise
    except (ValueError, TypeError, InvalidOperation, OverflowError) as exc:
        raise DataError(
            f"column {column!r} is {ctype.sql}: cannot store {value!r} ({exc})",
            sqlstate=_input_sqlstate(kind, exc),
        ) from exc
    raise NotSupportedError(f"column type {ctype.sql} is not supported")  # pragma: no cover


def _fit_length(text: str, ctype: ColumnType) -> str:
    """``text`` for a ``VARCHAR(n)`` / ``CHAR(n)`` column: as it is when it fits,
    cut when only spaces are over (as PostgreSQL does), else DataError 22001."""
    limit = ctype.max_length or 0
    if len(text) <= limit:
        return text
    if not text[limit:].strip(" "):
        return text[:limit]
    name = "character varying" if ctype.sql.startswith(("VARCHAR", "CHARACTER VARYING")) else "character"
    raise DataError(f"value too long for type {name}({limit})", sqlstate="22001")


def _input_sqlstate(kind: str, exc: Exception) -> str:
    """PostgreSQL's SQLSTATE for input of type ``kind`` that ``exc`` refused:
    out of range, a malformed date or time, or invalid text."""
    if isinstance(exc, OverflowError):
        return "22003"  # numeric_value_out_of_range
    if kind in ("timestamp", "date"):
        return "22007"  # invalid_datetime_format
    return "22P02"  # invalid_text_representation


def from_storage(value: Any, ctype: ColumnType | None) -> Any:
    """Decode a backend value into the Python value users receive."""
    if value is None or ctype is None:
        return value
    kind = ctype.kind
    if kind == "json":
        if isinstance(value, (bytes, str)):
            try:
                return load_json(value)
            except ValueError:
                return value
        return value
    if kind == "vector":
        if isinstance(value, (bytes, memoryview)):
            return np.frombuffer(value, dtype="<f4").copy()
        if isinstance(value, str):
            return np.asarray(load_json(value), dtype=np.float32)
        return value
    if kind == "timestamp":
        if isinstance(value, str):
            try:  # the storage form, or a literal PostgreSQL would have read as the type
                stored = len(value) == 32 and value.endswith("+00:00")
                value = dt.datetime.fromisoformat(value) if stored else parse_input(value, ctype.with_tz)
            except (ValueError, DataError, NotSupportedError):
                return value
        if isinstance(value, dt.datetime) and not ctype.with_tz:
            return value.replace(tzinfo=None)  # a TIMESTAMP's wall time, as psycopg returns it
        return value
    if kind == "interval":  # SQLite's timestamp difference: microseconds (psycopg's timedelta as is)
        return dt.timedelta(microseconds=value) if isinstance(value, int) else value
    if kind == "date":
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                return value
        return value
    if kind == "bool":
        if isinstance(value, (int, float)):
            return bool(value)
        return value
    if kind == "numeric":
        if isinstance(value, (str, int)):
            try:
                return Decimal(value)
            except InvalidOperation:
                return value
        # A float is what PostgreSQL computed in double precision (a numeric with a
        # float parameter): returned as the float it is.
        return value
    if kind == "uuid":
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                return value
        return value
    if kind in ("int", "serial"):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if kind == "float":
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if ctype.is_float4 and isinstance(value, float) and math.isfinite(value):
            return float4_value(value)
        return value
    return value


def adapt_untyped(value: Any) -> Any:
    """Bind a parameter whose column type is unknown by its Python type (a NaN
    as :data:`FLOAT_NAN`, which the SQLite engine refuses rather than read as NULL)."""
    if value is None or isinstance(value, (str, int, float, bytes)):
        return FLOAT_NAN if value != value else value
    if isinstance(value, (dict, list, tuple)):
        try:
            return dump_json(value)
        except (TypeError, ValueError) as exc:
            raise DataError(f"cannot bind parameter as JSON: {exc}") from None
    if isinstance(value, np.ndarray):
        return _vector_bytes(value, None, "parameter")
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise DataError(f"cannot bind a parameter of type {type(value).__name__}")


def adapt_param(value: Any, ctype: ColumnType | None) -> Any:
    """Bind a parameter by the type of the column or operator it meets."""
    if ctype is None or value is None:
        return adapt_untyped(value)
    if ctype.kind == "vector":
        blob = _vector_bytes(value, None, "parameter")
        if ctype.dim and len(blob) != 4 * ctype.dim:
            raise DataError(
                f"the query vector has {len(blob) // 4} dimensions; the column is VECTOR({ctype.dim})",
                sqlstate="22000",
            )
        return blob
    if ctype.kind == "json" and not isinstance(value, str):
        return _json_text(value, "parameter")
    if ctype.is_float4 and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return to_float4(float(value))  # a parameter meeting a real is a real, as in PostgreSQL
        except DataError:
            return adapt_untyped(value)
    if ctype.kind == "numeric" and ctype.modifiers:
        # PostgreSQL types such a parameter numeric, without the column's precision and scale.
        ctype = ColumnType("numeric", "NUMERIC")
    if ctype.kind in ("timestamp", "date", "numeric", "uuid", "bool"):
        try:
            return to_storage(value, ctype, "parameter")
        except (DataError, NotSupportedError):
            return adapt_untyped(value)
    return adapt_untyped(value)


VECTOR_ANY = ColumnType("vector", "VECTOR")
#: PostgreSQL's interval, a result type only (the difference of two timestamps).
INTERVAL_ANY = ColumnType("interval", "INTERVAL")
JSON_ANY = ColumnType("json", "JSONB")
