"""PostgreSQL's integer semantics on SQLite: the range checks of smallint, integer
and bigint arithmetic and the exact sum of bigints, registered by :mod:`.functions`
and called by the SQL :mod:`.integer_dialect` writes.

SQLite computes every integer in 64 bits and turns a 64-bit overflow into a
REAL; PostgreSQL computes ``int2 op int2`` as int2, ``int4 op int4`` as int4
(mixed widths as the wider) and raises 22003 when the result leaves the type.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ... import errors
from ...types import numeric_text

if TYPE_CHECKING:
    from apsw import SQLiteValue

#: PostgreSQL's name of the integer type of each width.
INT_NAMES = {16: "smallint", 32: "integer", 64: "bigint"}


def int_range(bits: int) -> tuple[int, int]:
    """The smallest and largest value of the ``bits``-wide integer type.

    >>> int_range(16)
    (-32768, 32767)
    """
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def out_of_range(bits: int) -> Any:
    """Raise PostgreSQL's "integer out of range" (22003) for the ``bits``-wide type.

    >>> out_of_range(32)
    Traceback (most recent call last):
    ...
    loomdb.errors.DataError: integer out of range
    """
    raise errors.DataError(f"{INT_NAMES.get(int(bits), 'integer')} out of range", sqlstate="22003")


def int_check(value: Any, bits: int) -> Any:
    """``value`` (the result of an integer operation, computed by SQLite in 64
    bits) when it fits the ``bits``-wide type; DataError 22003 otherwise. A REAL
    is what SQLite makes of a 64-bit overflow; NULL stays NULL.

    >>> int_check(32767, 16), int_check(None, 16)
    (32767, None)
    >>> int_check(9.223372036854776e18, 64)
    Traceback (most recent call last):
    ...
    loomdb.errors.DataError: bigint out of range
    """
    if isinstance(value, int):
        low, high = int_range(bits)
        if low <= value <= high:
            return value
        out_of_range(bits)
    if isinstance(value, float) and abs(value) >= 9.2e18:
        out_of_range(bits)
    return value


def _param_bits(value: Any) -> int | None:
    """The width of the integer type psycopg binds ``value`` as (the smallest that
    holds it); None for anything else (a float, text, a numeric past 64 bits)."""
    if not isinstance(value, int):
        return None
    for bits in (16, 32, 64):
        low, high = int_range(bits)
        if low <= value <= high:
            return bits
    return None


def int_param_check(value: Any, bits: int, *params: Any) -> Any:
    """``value``, the result of integer arithmetic on ``params`` (and on an operand
    ``bits`` wide), checked at the width PostgreSQL computes it in: that of the
    widest operand, a parameter's being the type it is bound as (smallint,
    integer or bigint by its value). Not integer arithmetic (a float or text
    parameter): ``value`` as it is.

    >>> int_param_check(32768, 16, 1)
    Traceback (most recent call last):
    ...
    loomdb.errors.DataError: smallint out of range
    >>> int_param_check(32768, 16, 100000), int_param_check(2.5, 32, 1.5)
    (32768, 2.5)
    """
    if value is None:
        return None
    widest = int(bits)
    for param in params:
        width = _param_bits(param)
        if width is None:
            return value
        widest = max(widest, width)
    return int_check(value, widest)


def int8_sum(high: Any, low: Any, as_text: int) -> Any:
    """``sum(bigint)`` from two SQLite sums that cannot overflow: of each value's
    high 32 bits (arithmetic shift) and of its low 32 bits. PostgreSQL's sum of
    bigints is numeric: as numeric text when ``as_text`` (a result column), else
    as an integer, NotSupportedError when that leaves the bigint range (SQLite
    has no larger integer to compare with).

    >>> int8_sum(2 * 2147483647, 2 * 4294967295, 1)
    '18446744073709551614'
    """
    if high is None or low is None:
        return None
    total = (int(high) << 32) + int(low)
    if as_text:
        return numeric_text(Decimal(total))
    if -(1 << 63) <= total < (1 << 63):
        return total
    raise errors.NotSupportedError(
        "sum(bigint) beyond the bigint range is not supported by loomdb on SQLite"
        " outside a result column (it has no larger integer to compare it with)"
    )


#: The scalar functions: (SQL name, function, number of arguments). They are
#: registered as not deterministic so that SQLite never evaluates one ahead of
#: the CASE branch that calls it (a constant call could otherwise be factored out).
INTEGER_FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_int_out_of_range", out_of_range, 1),
    ("loom_int_check", int_check, 2),
    ("loom_int_param_check", int_param_check, -1),
    ("loom_int8_sum", int8_sum, 3),
)
