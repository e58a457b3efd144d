"""PostgreSQL's double precision (and real) semantics on SQLite, registered by
:mod:`.functions` and called by the SQL :mod:`.float_dialect` writes: float text
output, round() half to even, the errors of sqrt/ln/log and of float arithmetic
that overflows or underflows.

SQLite cannot hold a NaN (it stores and returns NULL instead): where PostgreSQL
would produce one, these functions raise NotSupportedError rather than let a
NULL stand for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import errors
from ...number_input import FloatNaN
from ...types import ColumnType, to_storage

if TYPE_CHECKING:
    from apsw import SQLiteValue

NAN_MESSAGE = "NaN is not supported by loomdb on SQLite (SQLite stores NaN as NULL)"


def refuse_nan(value: Any) -> Any:
    """``value``, or NotSupportedError when it is a float NaN (or its storage form)."""
    if (isinstance(value, float) and value != value) or isinstance(value, FloatNaN):
        raise errors.NotSupportedError(NAN_MESSAGE)
    return value


def float_cast(kind: str) -> Callable[[Any], Any]:
    """``CAST(value AS kind)`` to real or double precision: a float, DataError
    when the value does not convert, NotSupportedError for a NaN."""
    ctype = ColumnType.parse(kind)

    def cast(value: Any) -> Any:
        """``value`` as a float (NULL stays NULL)."""
        if value is None:
            return None
        try:
            number = to_storage(value, ctype, "value")
        except errors.Error as exc:
            raise errors.DataError(f"cannot cast {value!r} to {kind}: {exc}", sqlstate=exc.sqlstate) from None
        return refuse_nan(number)

    return cast


def float_text(value: Any, bits: int) -> Any:
    """A double precision (``bits`` 64) or real (32) value as PostgreSQL writes it:
    the shortest text that reads back as the same value, in positional notation
    for decimal exponents from -4 to 14 (real: 5), else as ``1e+300``; ``-0``,
    ``Infinity``, ``-Infinity``.

    >>> float_text(0.0, 64), float_text(1.5, 64), float_text(1e300, 64), float_text(-0.0, 64)
    ('0', '1.5', '1e+300', '-0')
    >>> float_text(1e15, 64), float_text(1e14, 64), float_text(1.5e-7, 64), float_text(1e6, 32)
    ('1e+15', '100000000000000', '1.5e-07', '1e+06')
    """
    if value is None or isinstance(value, (str, bytes)):
        return value
    number = float(value)
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    refuse_nan(number)
    shortest = repr(number) if bits == 64 else str(np.float32(number))
    dec = Decimal(shortest).normalize()
    exponent = dec.adjusted()
    if -4 <= exponent < (15 if bits == 64 else 6):
        return format(dec, "f")
    sign, digits, _ = dec.as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def float_round(value: Any) -> Any:
    """``round(double precision)``: to the nearest integer, ties to even (PostgreSQL's rint).

    >>> float_round(2.5), float_round(3.5), float_round(-0.4)
    (2.0, 4.0, -0.0)
    """
    if not isinstance(value, (int, float)):
        return value
    number = float(value)
    if not math.isfinite(number):
        return number
    return math.copysign(float(round(number)), number)


def _operand(value: Any) -> float:
    """A numeric argument as a float; 22P02 for text that is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.DataError(
            f'invalid input syntax for type double precision: "{value}"', sqlstate="22P02"
        ) from None


def sqrt_null(value: Any) -> None:
    """Why SQLite's ``sqrt(value)`` was NULL: NULL for a NULL ``value``, else
    PostgreSQL's error for a negative number (2201F)."""
    if value is None:
        return None
    if _operand(value) < 0:
        raise errors.DataError("cannot take square root of a negative number", sqlstate="2201F")
    return None


def log_null(value: Any) -> None:
    """Why SQLite's ``ln(value)`` or ``log(value)`` was NULL: NULL for a NULL
    ``value``, else PostgreSQL's error for zero or a negative number (2201E)."""
    if value is None:
        return None
    number = _operand(value)
    if number == 0:
        raise errors.DataError("cannot take logarithm of zero", sqlstate="2201E")
    if number < 0:
        raise errors.DataError("cannot take logarithm of a negative number", sqlstate="2201E")
    return None


def float8_op(a: Any, b: Any, op: str) -> float | None:
    """``a op b`` in double precision as PostgreSQL's float8 operators compute it:
    22012 for a division by zero, 22003 when finite operands overflow to infinity
    or (``*`` and ``/``) underflow to zero; NotSupportedError for a NaN result.

    >>> float8_op(1e308, 10, "*")
    Traceback (most recent call last):
    ...
    loomdb.errors.DataError: value out of range: overflow
    """
    if a is None or b is None:
        return None
    x, y = _operand(a), _operand(b)
    if op == "/" and y == 0:
        raise errors.DataError("division by zero", sqlstate="22012")
    if op == "+":
        result = x + y
    elif op == "-":
        result = x - y
    elif op == "*":
        result = x * y
    else:
        result = x / y
    if math.isinf(result) and not (math.isinf(x) or math.isinf(y)):
        raise errors.DataError("value out of range: overflow", sqlstate="22003")
    if result == 0 and x != 0 and ((op == "*" and y != 0) or (op == "/" and not math.isinf(y))):
        raise errors.DataError("value out of range: underflow", sqlstate="22003")
    return refuse_nan(result)


def float8_math(name: str, x: Any, y: Any = None) -> float | None:
    """``exp(x)`` or ``power(x, y)`` in double precision, as PostgreSQL's dexp and
    dpow check them (the dialect calls this only when SQLite's result is NULL,
    infinite or zero): 2201F for zero to a negative power and a negative number
    to a non-integer one, 22003 for an overflow or underflow.

    >>> float8_math("power", 0, -1)
    Traceback (most recent call last):
    ...
    loomdb.errors.DataError: zero raised to a negative power is undefined
    """
    if x is None or (name == "power" and y is None):
        return None
    a = _operand(x)
    if name == "exp":
        result = math.exp(a) if a < 710 else math.inf
        if math.isinf(result) and not math.isinf(a):
            raise errors.DataError("value out of range: overflow", sqlstate="22003")
        if result == 0 and not math.isinf(a):
            raise errors.DataError("value out of range: underflow", sqlstate="22003")
        return result
    b = _operand(y)
    if a == 0 and b < 0:
        raise errors.DataError("zero raised to a negative power is undefined", sqlstate="2201F")
    if a < 0 and math.isfinite(b) and b != math.floor(b):
        raise errors.DataError(
            "a negative number raised to a non-integer power yields a complex result", sqlstate="2201F"
        )
    try:
        result = math.pow(a, b)
    except OverflowError:
        result = math.inf
    if math.isinf(result) and math.isfinite(a) and math.isfinite(b):
        raise errors.DataError("value out of range: overflow", sqlstate="22003")
    if result == 0 and a != 0 and math.isfinite(a) and math.isfinite(b):
        raise errors.DataError("value out of range: underflow", sqlstate="22003")
    return refuse_nan(result)


#: The scalar functions: (SQL name, function, number of arguments).
FLOAT_FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_float_text", float_text, 2),
    ("loom_float_round", float_round, 1),
    ("loom_float8_op", float8_op, 3),
)
#: Functions the dialect calls only where SQLite's own result needs a second
#: look (a NULL or an infinity): registered as not deterministic so that SQLite
#: never evaluates one ahead of the CASE branch that calls it.
FLOAT_CHECKS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_sqrt_null", sqrt_null, 1),
    ("loom_log_null", log_null, 1),
    ("loom_float8_math", float8_math, -1),
)
