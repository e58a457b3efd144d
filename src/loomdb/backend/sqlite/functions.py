"""The SQL functions and collation the SQLite dialect's output calls.

:mod:`.dialect` turns PostgreSQL's operators, casts and functions into calls
of these (``loom_*``), of sqlite-vec's (``vec_*``) and of SQLite's own JSON
functions; :func:`register` puts them on a connection. A name the dialect
emits must be registered here (``tests/test_backend_contract.py`` checks).
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import apsw
import sqlite_vec

from ... import errors
from . import time_fields, time_functions
from .float_functions import FLOAT_CHECKS, FLOAT_FUNCTIONS
from .integer_functions import INTEGER_FUNCTIONS
from .json_functions import JSON_FUNCTIONS, jsonb_collation
from .numeric_functions import NUMERIC_AGGREGATES, NUMERIC_FUNCTIONS, cast_to
from .numeric_ops import NUMERIC_OPERATORS
from .ordered_set_functions import ORDERED_SET_AGGREGATES
from .text_functions import INTEGER_TEXT, STRING_AGGREGATES, STRING_FUNCTIONS
from .vector_functions import VECTOR_AGGREGATES, VECTOR_FUNCTIONS

if TYPE_CHECKING:
    from apsw import SQLiteValue

#: The collation of NUMERIC columns (stored as decimal text, compared as numbers).
NUMERIC_COLLATION = "loom_numeric"
#: The collation ordering jsonb values as PostgreSQL does (see :mod:`.json_functions`).
JSONB_COLLATION = "loom_jsonb"


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


def _bigint(value: Any) -> Any:
    """A LIMIT/OFFSET count as PostgreSQL casts it to bigint: a float rounded
    half to even (NaN or infinity is out of range); others as they are."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise errors.DataError("bigint out of range", sqlstate="22003")
        return round(value)
    return value


def _limit(value: Any) -> Any:
    """A LIMIT given at run time: DataError when negative (PostgreSQL's 2201W),
    no limit (-1 for SQLite) when NULL."""
    if value is None:
        return -1
    value = _bigint(value)
    if isinstance(value, int) and value < 0:
        raise errors.DataError("LIMIT must not be negative", sqlstate="2201W")
    return value


def _offset(value: Any) -> Any:
    """An OFFSET given at run time: DataError when negative (PostgreSQL's 2201X), 0 when NULL."""
    if value is None:
        return 0
    value = _bigint(value)
    if isinstance(value, int) and value < 0:
        raise errors.DataError("OFFSET must not be negative", sqlstate="2201X")
    return value


def _cardinality_violation() -> Any:
    """Raise PostgreSQL's 21000: a scalar subquery returned a second row."""
    raise errors.ProgrammingError(
        "more than one row returned by a subquery used as an expression", sqlstate="21000"
    )


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
    # Not deterministic: SQLite would evaluate a constant call once up front.
    _scalar(conn, "loom_cardinality_violation", _cardinality_violation, 0, deterministic=False)
    for name, function, nargs in FUNCTIONS:
        _scalar(conn, name, function, nargs, deterministic=True)
    time_functions.register(conn, now)
    for name, function, nargs in INTEGER_FUNCTIONS + FLOAT_CHECKS:
        _scalar(conn, name, function, nargs, deterministic=False)
    for name, factory in (*STRING_AGGREGATES, *ORDERED_SET_AGGREGATES, *VECTOR_AGGREGATES):
        conn.create_aggregate_function(name, factory)
    for name, window, nargs in NUMERIC_AGGREGATES:
        conn.create_window_function(name, window, nargs)
    conn.create_collation(NUMERIC_COLLATION, numeric_collation)
    conn.create_collation(JSONB_COLLATION, jsonb_collation)


#: The deterministic functions: (SQL name, function, number of arguments).
FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_int2", _to_int(16), 2),
    ("loom_int4", _to_int(32), 2),
    ("loom_int8", _to_int(64), 2),
    ("loom_divisor", _divisor, 2),
    ("loom_limit", _limit, 1),
    ("loom_offset", _offset, 1),
    # Casts to types SQLite lacks (see the dialect's cast rules).
    ("loom_bool", cast_to("BOOLEAN"), 1),
    ("loom_numeric", cast_to("NUMERIC"), 1),
    *NUMERIC_FUNCTIONS,
    *JSON_FUNCTIONS,
    *NUMERIC_OPERATORS,
    *FLOAT_FUNCTIONS,
)
FUNCTIONS += STRING_FUNCTIONS  # PostgreSQL's string functions (see their section)
FUNCTIONS += VECTOR_FUNCTIONS  # pgvector's (see vector_functions)
FUNCTIONS += time_fields.FUNCTIONS  # date_trunc, EXTRACT, date_part


_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


class _Recorder:
    """Stands in for a connection while :func:`register` runs: keeps each
    function's registration for later (by lower-case name) and applies the
    collations at once (a column declared with one needs it to be read)."""

    def __init__(self, conn: apsw.Connection, pending: dict[str, list[Callable[[], None]]], vec: list[str]):
        self._conn, self._pending, self._vec = conn, pending, vec

    def _later(self, name: str, thunk: Callable[[], None]) -> None:
        self._pending.setdefault(name.lower(), []).append(thunk)

    def create_scalar_function(self, name: str, function: Any, nargs: int, *, deterministic: bool) -> None:
        self._later(
            name,
            lambda: self._conn.create_scalar_function(name, function, nargs, deterministic=deterministic),
        )

    def create_aggregate_function(self, name: str, factory: Any) -> None:
        self._later(name, lambda: self._conn.create_aggregate_function(name, factory))

    def create_window_function(self, name: str, factory: Any, nargs: int) -> None:
        self._later(name, lambda: self._conn.create_window_function(name, factory, nargs))

    def create_collation(self, name: str, compare: Any) -> None:
        self._conn.create_collation(name, compare)

    def enable_load_extension(self, enable: bool) -> None:
        pass

    def load_extension(self, path: str) -> None:
        self._vec.append(path)


class FunctionRegistry:
    """loomdb's SQL functions for one connection, registered when a statement
    first names them (:meth:`ensure`), and sqlite-vec loaded when one names
    ``vec_...``.

    SQLite steps some statements more slowly the more functions their
    connection has: the resume query's view took 2.4 µs more with 100
    functions and 4 µs more with 300 (loomdb defines over 300). A connection
    carries only what its statements use, so the common reads pay nothing.
    """

    def __init__(self, conn: apsw.Connection, now: Callable[[], str]):
        self._conn = conn
        self._pending: dict[str, list[Callable[[], None]]] = {}
        self._vec: list[str] = []
        self._checked: set[str] = set()
        register(_Recorder(conn, self._pending, self._vec), now)  # type: ignore[arg-type]

    def ensure(self, sql: str) -> None:
        """Register every function ``sql`` calls that is not registered yet
        (once per distinct statement text)."""
        if sql in self._checked:
            return
        if len(self._checked) >= 4096:  # bounded: ad-hoc statements are many
            self._checked.clear()
        if self._vec and "vec_" in sql.lower():
            self._load_vec()
        for name in _CALL.findall(sql):
            for thunk in self._pending.pop(name.lower(), ()):
                thunk()
        self._checked.add(sql)

    def _load_vec(self) -> None:
        path = self._vec.pop()
        try:
            self._conn.enable_load_extension(True)
            self._conn.load_extension(path)
            self._conn.enable_load_extension(False)
        except (apsw.Error, AttributeError) as exc:
            raise errors.OperationalError(f"cannot load sqlite-vec: {exc}") from None


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
        "loom_cardinality_violation",
        NUMERIC_COLLATION,
        JSONB_COLLATION,
        *(f[0] for f in FUNCTIONS),
        *(f[0] for f in INTEGER_FUNCTIONS + FLOAT_CHECKS),
        *time_functions.NAMES,
        *(a[0] for a in STRING_AGGREGATES),
        *(a[0] for a in ORDERED_SET_AGGREGATES),
        *(a[0] for a in VECTOR_AGGREGATES),
        *(a[0] for a in NUMERIC_AGGREGATES),
    }
)
