"""Numbers stored into columns (shared by both engines): a value stored into a
smallint, integer or bigint column as PostgreSQL's assignment casts and integer
input turn it into one, the storage form of a float NaN (:data:`FLOAT_NAN`), a
real rounded to float32 (:func:`to_float4`, :func:`float4_value`) and a numeric
as PostgreSQL's text, fitted to NUMERIC(p, s) (:func:`numeric_text`).

* an int must fit the column's type (22003 "integer out of range");
* a numeric (a Decimal, or a number literal's text, :class:`NumberText`) is
  rounded half away from zero, a float half to even (PostgreSQL's rint);
* text must spell an integer (22P02 "invalid input syntax for type integer").

>>> int_input(NumberText("2.5"), 32, "n"), int_input(2.5, 32, "n"), int_input(" 12 ", 32, "n")
(3, 2, 12)
>>> int_input(3000000000, 32, "n")
Traceback (most recent call last):
...
loomdb.errors.DataError: integer out of range
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

import numpy as np

from .errors import DataError, NotSupportedError

#: PostgreSQL's name of the integer type of each width.
_NAMES = {16: "smallint", 32: "integer", 64: "bigint"}
_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


class NumberText(str):
    """The text of a number literal (``2.5``, ``-7``, ``1e3``) written in a
    statement: numeric in PostgreSQL, where a quoted ``'2.5'`` is text."""

    __slots__ = ()


class FloatNaN:
    """A NaN stored into a real or double precision column. PostgreSQL keeps it;
    SQLite cannot (it would store NULL), so the SQLite engine refuses to bind it
    and the PostgreSQL engine binds it as ``'NaN'::float8``."""

    __slots__ = ()

    def __float__(self) -> float:
        return math.nan

    def __repr__(self) -> str:
        return "nan"


#: The one :class:`FloatNaN`.
FLOAT_NAN = FloatNaN()


def int_bits(sql_type: str) -> int:
    """The width of an integer column type as written (``SMALLINT``, ``INT8``, ``BIGSERIAL``...).

    >>> int_bits("SMALLINT"), int_bits("INTEGER"), int_bits("BIGSERIAL")
    (16, 32, 64)
    """
    base = sql_type.strip().upper()
    if base.startswith(("BIGINT", "INT8", "BIGSERIAL", "SERIAL8")):
        return 64
    if base.startswith(("SMALLINT", "INT2", "SMALLSERIAL", "SERIAL2", "TINYINT")):
        return 16
    return 32


def _checked(number: int, bits: int, shown: Any = None) -> int:
    """``number`` when it fits ``bits``; DataError 22003 otherwise."""
    if -(1 << (bits - 1)) <= number < (1 << (bits - 1)):
        return number
    name = _NAMES[bits]
    if shown is not None:
        raise DataError(f'value "{shown}" is out of range for type {name}', sqlstate="22003")
    raise DataError(f"{name} out of range", sqlstate="22003")


def int_input(value: Any, bits: int, column: str) -> int:
    """``value`` (not None) stored into a ``bits``-wide integer column named ``column``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return _checked(value, bits)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{_NAMES[bits]} out of range", sqlstate="22003")
        return _checked(round(value), bits)  # half to even, as PostgreSQL's rint()
    if isinstance(value, (NumberText, Decimal)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_nan():
            raise NotSupportedError(f"cannot convert NaN to {_NAMES[bits]}")
        if number.is_infinite():
            raise DataError(f"{_NAMES[bits]} out of range", sqlstate="22003")
        return _checked(int(number.to_integral_value(ROUND_HALF_UP)), bits)
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            raise DataError(f'invalid input syntax for type {_NAMES[bits]}: "{value}"', sqlstate="22P02")
        return _checked(int(value), bits, shown=value)
    if hasattr(value, "__index__"):  # numpy's integers
        return _checked(int(value), bits)
    raise DataError(f"column {column!r} is {_NAMES[bits]}: {value!r} is not an integer")


def to_float4(number: float, value: Any = None) -> float:
    """``number`` rounded to PostgreSQL's ``real`` (float32), as a Python float;
    DataError 22003 when a finite value overflows or underflows float32.

    >>> to_float4(0.7)
    0.699999988079071
    """
    with np.errstate(over="ignore", under="ignore"):
        single = np.float32(number)
    if (np.isinf(single) and math.isfinite(number)) or (single == 0 and number != 0):
        shown = value if value is not None else number
        raise DataError(f'"{shown}" is out of range for type real', sqlstate="22003")
    return float(single)


def float4_value(value: float) -> float:
    """A float32 value as psycopg returns a ``real``: parsed from its shortest text.

    >>> float4_value(0.699999988079071)
    0.7
    """
    return float(str(np.float32(value)))


def numeric_text(dec: Decimal, modifiers: tuple[int, ...] = ()) -> str:
    """``dec`` as PostgreSQL's numeric text (never an exponent), rounded half away
    from zero to the scale of ``NUMERIC(precision, scale)`` when ``modifiers`` give
    one; DataError 22003 "numeric field overflow" when it then needs more digits
    before the point than the precision allows.

    >>> numeric_text(Decimal("12.345"), (10, 2)), numeric_text(Decimal("1E+3"))
    ('12.35', '1000')
    """
    if modifiers:
        precision = modifiers[0]
        scale = modifiers[1] if len(modifiers) > 1 else 0
        with localcontext() as ctx:
            ctx.prec = max(len(dec.as_tuple().digits), dec.adjusted() + 1) + abs(scale) + 2
            dec = dec.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
        digits = dec.adjusted() + 1 if dec != 0 else 0
        if digits > precision - scale:
            raise DataError(
                "numeric field overflow: a field with precision "
                f"{precision}, scale {scale} must round to an absolute value less than "
                f"{'10^' + str(precision - scale) if precision > scale else '1'}",
                sqlstate="22003",
            )
    elif dec.as_tuple().exponent > 0:  # type: ignore[operator]
        with localcontext() as ctx:
            ctx.prec = dec.adjusted() + 2
            dec = dec.quantize(Decimal(1))
    if dec.is_zero():
        dec = dec.copy_abs()
    return format(dec, "f")
