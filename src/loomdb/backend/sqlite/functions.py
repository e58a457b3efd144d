"""The SQL functions and collation the SQLite dialect's output calls.

:mod:`.dialect` turns PostgreSQL's operators, casts and functions into calls
of these (``loom_*``), of sqlite-vec's (``vec_*``) and of SQLite's own JSON
functions; :func:`register` puts them on a connection. A name the dialect
emits must be registered here (``tests/test_backend_contract.py`` checks).
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import apsw
import numpy as np
import sqlite_vec

from ... import errors
from ...types import dump_json, load_json
from . import time_functions
from .numeric_functions import NUMERIC_AGGREGATES, NUMERIC_FUNCTIONS, cast_to
from .text_functions import INTEGER_TEXT, STRING_AGGREGATES, STRING_FUNCTIONS

if TYPE_CHECKING:
    from apsw import SQLiteValue

#: The collation of NUMERIC columns (stored as decimal text, compared as numbers).
NUMERIC_COLLATION = "loom_numeric"


def jsonb_contains(left: Any, right: Any) -> bool:
    """PostgreSQL's jsonb ``left @> right`` over parsed JSON values."""
    if isinstance(left, dict):
        return isinstance(right, dict) and all(
            key in left and jsonb_contains(left[key], value) for key, value in right.items()
        )
    if isinstance(left, list):
        if isinstance(right, list):
            return all(any(jsonb_contains(item, want) for item in left) for want in right)
        # A top-level array contains a primitive equal to one of its elements.
        return not isinstance(right, dict) and any(
            item == right and type(item) is type(right) for item in left
        )
    return type(left) is type(right) and left == right


def _as_json(value: Any) -> Any:
    """A stored JSON value (text or bytes) parsed; anything else as it is."""
    if isinstance(value, (str, bytes)):
        return load_json(value)
    return value


def _jsonb(value: Any) -> str | None:
    """``value::jsonb``: JSON text in jsonb's normal form (DataError for text that is not JSON)."""
    return None if value is None else dump_json(_parse_jsonb(value))


def _jsonb_concat(a: Any, b: Any) -> str | None:
    """jsonb's ``a || b``: two objects merge (b's value wins for a shared key);
    otherwise both sides, a non-array taken as a one-element array, are joined."""
    if a is None or b is None:
        return None
    left, right = _parse_jsonb(a), _parse_jsonb(b)
    if isinstance(left, dict) and isinstance(right, dict):
        return dump_json({**left, **right})
    items = (left if isinstance(left, list) else [left]) + (right if isinstance(right, list) else [right])
    return dump_json(items)


def _jsonb_delete(doc: Any, key: Any) -> str | None:
    """jsonb's ``doc - key``: an object without ``key``, an array without the
    string elements equal to ``key``, or (an integer ``key``) without that element."""
    if doc is None or key is None:
        return None
    value = _parse_jsonb(doc)
    if isinstance(key, int) and not isinstance(key, bool):
        if not isinstance(value, list):
            raise errors.DataError(
                "cannot delete from object using integer index"
                if isinstance(value, dict)
                else "cannot delete from scalar",
                sqlstate="22023",
            )
        index = key + len(value) if key < 0 else key
        return dump_json([item for i, item in enumerate(value) if i != index])
    if isinstance(value, dict):
        return dump_json({k: v for k, v in value.items() if k != key})
    if isinstance(value, list):
        return dump_json([item for item in value if not (isinstance(item, str) and item == key)])
    raise errors.DataError("cannot delete from scalar", sqlstate="22023")


def _parse_jsonb(value: Any) -> Any:
    """A jsonb operand parsed (DataError for text that is not JSON)."""
    try:
        return _as_json(value)
    except ValueError:
        raise errors.DataError(
            f"invalid input syntax for type json: {str(value)[:80]!r}", sqlstate="22P02"
        ) from None


def _to_int(bits: int) -> Callable[[Any, str], int | None]:
    """``value::smallint/integer/bigint`` as PostgreSQL casts, by ``mode`` (see the
    dialect's ``_int_cast_mode``): numerics rounded half away from zero, floats
    half to even, text only when it is an integer; DataError when the text is
    no integer or the result is out of the type's range."""
    name = {16: "smallint", 32: "integer", 64: "bigint"}[bits]
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def cast(value: Any, mode: str) -> int | None:
        """The cast of one value."""
        if value is None:
            return None
        if isinstance(value, str) and mode in ("t", "a"):
            text = value.strip()
            if not INTEGER_TEXT.fullmatch(text):
                raise errors.DataError(f'invalid input syntax for type {name}: "{value}"', sqlstate="22P02")
            number = int(text)
        elif isinstance(value, float) and mode != "n":
            if not math.isfinite(value):
                raise errors.DataError(f"{name} out of range", sqlstate="22003")
            number = round(value)  # half to even, as PostgreSQL's rint()
        elif isinstance(value, bytes):
            raise errors.ProgrammingError(f"cannot cast type bytea to {name}", sqlstate="42846")
        else:
            try:
                number = int(Decimal(str(value)).to_integral_value(ROUND_HALF_UP))
            except (InvalidOperation, ValueError):
                raise errors.DataError(
                    f'invalid input syntax for type {name}: "{value}"', sqlstate="22P02"
                ) from None
        if not low <= number <= high:
            raise errors.DataError(f"{name} out of range", sqlstate="22003")
        return number

    return cast


def _divisor(value: Any, no_dividend: int) -> Any:
    """The right side of ``/`` or ``%``: DataError for zero (PostgreSQL's
    "division by zero"; SQLite would return NULL), unless the dividend is NULL
    (``no_dividend``), which PostgreSQL does not divide."""
    if value == 0 and not no_dividend and not isinstance(value, (str, bytes)):
        raise errors.DataError("division by zero", sqlstate="22012")
    return value


def _contains(a: Any, b: Any) -> int | None:
    """``a @> b`` as SQL: NULL when either side is NULL, else 1 or 0."""
    return None if a is None or b is None else int(jsonb_contains(_as_json(a), _as_json(b)))


def _contained(a: Any, b: Any) -> int | None:
    """``a <@ b`` as SQL (``b @> a``)."""
    return _contains(b, a)


def _as_vector(value: Any) -> np.ndarray:
    """A stored vector (float32 bytes or JSON text) as a numpy array; DataError otherwise."""
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype="<f4")
    if isinstance(value, str):
        return np.asarray(load_json(value), dtype=np.float32)
    raise errors.DataError(f"expected a vector, got {type(value).__name__}")


def inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``inner_product(a, b)``: NULL for a NULL side, DataError for
    vectors of different dimensions."""
    if a is None or b is None:
        return None
    x, y = _as_vector(a), _as_vector(b)
    if x.shape != y.shape:
        raise errors.DataError(f"different vector dimensions {x.shape[0]} and {y.shape[0]}", sqlstate="22000")
    return float(np.dot(x.astype(np.float64), y.astype(np.float64)))


def _negative_inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``a <#> b``."""
    product = inner_product(a, b)
    return None if product is None else -product


def _vector_norm(a: Any) -> float | None:
    """pgvector's ``vector_norm(a)`` (Euclidean), NULL for NULL."""
    return None if a is None else float(np.linalg.norm(_as_vector(a).astype(np.float64)))


def _decimal_key(text: str) -> Decimal | None:
    """``text`` as a Decimal, or None when it is not a number."""
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


def numeric_collation(a: str, b: str) -> int:
    """Compare two NUMERIC texts as numbers (-1, 0, 1); as text when either is not a number."""
    x, y = _decimal_key(a), _decimal_key(b)
    if x is None or y is None:
        return (a > b) - (a < b)
    return (x > y) - (x < y)


def _scalar(
    conn: apsw.Connection, name: str, function: Callable[..., SQLiteValue], nargs: int, deterministic: bool
) -> None:
    """Register ``function`` as SQL function ``name`` taking ``nargs`` arguments."""
    conn.create_scalar_function(name, function, nargs, deterministic=deterministic)


def register(conn: apsw.Connection, now: Callable[[], str]) -> None:
    """Load sqlite-vec into ``conn`` and register loomdb's functions and
    collation; ``now`` answers ``loom_now()`` (SQL's NOW()). Raises
    OperationalError when sqlite-vec cannot be loaded."""
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
    except (apsw.Error, AttributeError) as exc:
        raise errors.OperationalError(f"cannot load sqlite-vec: {exc}") from None
    _scalar(conn, "loom_now", now, 0, deterministic=False)
    _scalar(conn, "gen_random_uuid", lambda: str(uuid.uuid4()), 0, deterministic=False)
    for name, function, nargs in FUNCTIONS:
        _scalar(conn, name, function, nargs, deterministic=True)
    time_functions.register(conn, now)
    for name, factory in STRING_AGGREGATES:
        conn.create_aggregate_function(name, factory)
    for name, window, nargs in NUMERIC_AGGREGATES:
        conn.create_window_function(name, window, nargs)
    conn.create_collation(NUMERIC_COLLATION, numeric_collation)


#: The deterministic functions: (SQL name, function, number of arguments).
FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_jsonb_contains", _contains, 2),
    ("loom_jsonb_contained", _contained, 2),
    ("loom_inner_product", inner_product, 2),
    ("loom_negative_inner_product", _negative_inner_product, 2),
    ("loom_vector_norm", _vector_norm, 1),
    ("loom_jsonb", _jsonb, 1),
    ("loom_int2", _to_int(16), 2),
    ("loom_int4", _to_int(32), 2),
    ("loom_int8", _to_int(64), 2),
    ("loom_divisor", _divisor, 2),
    ("loom_jsonb_concat", _jsonb_concat, 2),
    ("loom_jsonb_delete", _jsonb_delete, 2),
    # Casts to types SQLite lacks (see the dialect's cast rules).
    ("loom_bool", cast_to("BOOLEAN"), 1),
    ("loom_numeric", cast_to("NUMERIC"), 1),
    *NUMERIC_FUNCTIONS,
)
FUNCTIONS += STRING_FUNCTIONS  # PostgreSQL's string functions (see their section)


@functools.cache
def sqlite_function_names() -> frozenset[str]:
    """The names (lower case) of every function a loomdb SQLite connection has:
    SQLite's own, sqlite-vec's and loomdb's (read once from a scratch connection)."""
    conn = apsw.Connection(":memory:")
    try:
        register(conn, lambda: "2000-01-01 00:00:00.000000+00:00")
        return frozenset(row[0].lower() for row in conn.execute("SELECT name FROM pragma_function_list"))
    finally:
        conn.close()


#: Every SQL name :func:`register` defines (functions and the collation).
REGISTERED = frozenset(
    {
        "loom_now",
        "gen_random_uuid",
        NUMERIC_COLLATION,
        *(f[0] for f in FUNCTIONS),
        *time_functions.NAMES,
        *(a[0] for a in STRING_AGGREGATES),
        *(a[0] for a in NUMERIC_AGGREGATES),
    }
)
