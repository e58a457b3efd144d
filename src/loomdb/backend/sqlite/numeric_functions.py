"""PostgreSQL's numeric aggregates and casts on SQLite (exact decimal sum and avg,
real, double precision, numeric(p, s) and varchar(n) casts), registered by
:mod:`.functions`."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import errors
from ...types import ColumnType, numeric_text, to_storage
from .float_functions import float_cast

if TYPE_CHECKING:
    from apsw import SQLiteValue


def cast_to(kind: str) -> Callable[[Any], Any]:
    """``CAST(value AS kind)`` for a type SQLite lacks: the value in loomdb's
    storage form, or DataError when it does not convert."""
    ctype = ColumnType.parse(kind)

    def cast(value: Any) -> Any:
        """``value`` in ``kind``'s storage form (NULL stays NULL)."""
        if value is None:
            return None
        try:
            return to_storage(value, ctype, "value")
        except errors.NotSupportedError:
            raise
        except errors.Error as exc:
            raise errors.DataError(f"cannot cast {value!r} to {kind}: {exc}", sqlstate=exc.sqlstate) from None

    return cast


# -- PostgreSQL's numeric aggregates ------------------------------------------------------
# sum() of NUMERIC and avg() of integers and NUMERIC as PostgreSQL computes them:
# in exact decimal arithmetic (SQLite sums decimal text as floats), avg with the
# scale of PostgreSQL's numeric division. They return numeric text; the dialect
# calls them where the value becomes a result column. Also the casts to real,
# double precision, numeric(p, s) and varchar(n) as PostgreSQL casts.

#: PostgreSQL's NUMERIC_MIN_SIG_DIGITS and DEC_DIGITS (src/backend/utils/adt/numeric.c).
_MIN_SIG_DIGITS, _DEC_DIGITS = 16, 4
#: A context in which scaling by a power of ten never rounds.
WIDE = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _as_decimal(value: Any) -> Decimal:
    """An aggregate's input (numeric text, integer or float) as a Decimal; DataError otherwise."""
    if isinstance(value, bytes):
        raise errors.DataError(f"cannot add {value!r} to a numeric sum", sqlstate="42883")
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise errors.DataError(
            f'invalid input syntax for type numeric: "{value}"', sqlstate="22P02"
        ) from None


def _weight_and_first_digit(value: Decimal) -> tuple[int, int]:
    """A numeric's weight (the power of 10000 of its first base-10000 digit) and that digit."""
    if value.is_zero():
        return 0, 0
    weight = value.adjusted() // _DEC_DIGITS
    first = int(abs(value).scaleb(-weight * _DEC_DIGITS, WIDE))
    return weight, first


def div_scale(dividend: Decimal, divisor: Decimal) -> int:
    """The result scale of PostgreSQL's ``numeric / numeric`` (``select_div_scale``).

    >>> div_scale(Decimal(6218), Decimal(23)), div_scale(Decimal(31305), Decimal(30))
    (16, 16)
    """
    weight1, first1 = _weight_and_first_digit(dividend)
    weight2, first2 = _weight_and_first_digit(divisor)
    qweight = weight1 - weight2
    if first1 <= first2:
        qweight -= 1
    scale1 = max(0, -int(dividend.as_tuple().exponent))
    scale2 = max(0, -int(divisor.as_tuple().exponent))
    rscale = max(_MIN_SIG_DIGITS - qweight * _DEC_DIGITS, scale1, scale2, 0)
    return min(rscale, 1000)


def numeric_divide(dividend: Decimal, divisor: Decimal, rscale: int | None = None) -> Decimal:
    """PostgreSQL's ``numeric / numeric``: exact, rounded half away from zero to
    ``rscale`` (by default :func:`div_scale`) digits after the point.

    >>> numeric_divide(Decimal(6218), Decimal(23))
    Decimal('270.3478260869565217')
    """
    if rscale is None:
        rscale = div_scale(dividend, divisor)
    sign = -1 if (dividend < 0) != (divisor < 0) else 1
    # num / den == |dividend / divisor| * 10**rscale, in integers.
    n_sign, n_digits, n_exp = dividend.as_tuple()
    d_sign, d_digits, d_exp = divisor.as_tuple()
    num = int("".join(map(str, n_digits)) or "0")
    den = int("".join(map(str, d_digits)) or "0")
    shift = int(n_exp) - int(d_exp) + rscale
    if shift >= 0:
        num *= 10**shift
    else:
        den *= 10**-shift
    quotient, remainder = divmod(num, den)
    if 2 * remainder >= den:
        quotient += 1
    return Decimal(sign * quotient).scaleb(-rscale, WIDE)


class _NumericSum:
    """``loom_numeric_sum`` / ``loom_numeric_avg`` (aggregates and window functions):
    the exact sum and count of the values in the frame."""

    __slots__ = ("average", "count", "total")

    def __init__(self, average: bool) -> None:
        self.average = average
        self.total = Decimal(0)
        self.count = 0

    def _add(self, value: Any, sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) one value; NULLs are skipped."""
        if value is not None:
            with localcontext() as ctx:
                ctx.prec = 2000
                self.total += sign * _as_decimal(value)
            self.count += sign

    def step(self, value: Any) -> None:
        """A value enters the frame."""
        self._add(value, 1)

    def inverse(self, value: Any) -> None:
        """A value leaves the frame."""
        self._add(value, -1)

    def value(self) -> str | None:
        """The result as numeric text (NULL over no values)."""
        if not self.count:
            return None
        total = numeric_divide(self.total, Decimal(self.count)) if self.average else self.total
        return numeric_text(total)

    def final(self) -> str | None:
        """The result at the end."""
        return self.value()


def sqrt_at(value: Decimal, rscale: int) -> Decimal:
    """The square root of ``value`` (>= 0) correctly rounded, half up, to ``rscale``
    digits after the point, as PostgreSQL's sqrt_var.

    >>> sqrt_at(Decimal(2), 15)
    Decimal('1.414213562373095')
    """
    if value.is_zero():
        return Decimal(0).scaleb(-rscale, WIDE)
    # isqrt(value * 10^(2 * (rscale + 1))) has rscale + 1 digits after the point,
    # truncated; the last one rounds half up.
    _, digits, exponent = value.as_tuple()
    n = int("".join(map(str, digits)))
    shift = 2 * (rscale + 1) + int(exponent)
    n = n * 10**shift if shift >= 0 else n // 10**-shift
    quotient, last = divmod(math.isqrt(n), 10)
    return Decimal(quotient + (last >= 5)).scaleb(-rscale, WIDE)


class _NumericVariance:
    """``loom_numeric_var_samp`` & co. (aggregates and window functions): PostgreSQL's
    numeric_stddev_internal over integers and numerics, from the exact count, sum
    and sum of squares of the values in the frame."""

    __slots__ = ("count", "root", "sample", "sum", "sum2")

    def __init__(self, sample: bool, root: bool) -> None:
        self.sample, self.root = sample, root
        self.count, self.sum, self.sum2 = 0, Decimal(0), Decimal(0)

    def _add(self, value: Any, sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) one value; NULLs are skipped."""
        if value is not None:
            dec = _as_decimal(value)
            move = WIDE.add if sign > 0 else WIDE.subtract
            self.sum = move(self.sum, dec)
            self.sum2 = move(self.sum2, WIDE.multiply(dec, dec))
            self.count += sign

    def step(self, value: Any) -> None:
        """A value enters the frame."""
        self._add(value, 1)

    def inverse(self, value: Any) -> None:
        """A value leaves the frame."""
        self._add(value, -1)

    def value(self) -> str | None:
        """The variance or standard deviation as numeric text (NULL with too few values)."""
        n = self.count
        if n <= (1 if self.sample else 0):
            return None
        numerator = WIDE.subtract(WIDE.multiply(Decimal(n), self.sum2), WIDE.multiply(self.sum, self.sum))
        if numerator <= 0:
            return "0"  # PostgreSQL's guard against a negative numerator from roundoff
        denominator = Decimal(n * (n - 1) if self.sample else n * n)
        rscale = div_scale(numerator, denominator)
        result = numeric_divide(numerator, denominator, rscale)
        return numeric_text(sqrt_at(result, rscale) if self.root else result)

    def final(self) -> str | None:
        """The result at the end."""
        return self.value()


def _numeric_aggregate(average: bool) -> Callable[[], _NumericSum]:
    """The factory of the numeric sum, or (``average``) the average."""
    return lambda: _NumericSum(average)


class _Float4Sum:
    """``loom_float4_sum``: sum() of a real as PostgreSQL's float4pl adds, rounding
    to float32 at each step (a window recomputes its frame, as PostgreSQL does)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: deque[float] = deque()

    def step(self, value: Any) -> None:
        """A value enters the frame (NULLs are skipped)."""
        if value is not None:
            self.values.append(float(value))

    def inverse(self, value: Any) -> None:
        """The oldest value leaves the frame."""
        if value is not None:
            self.values.popleft()

    def value(self) -> float | None:
        """The float32 sum, as a Python float (NULL over no values)."""
        if not self.values:
            return None
        total = np.float32(0)
        with np.errstate(over="ignore"):
            for item in self.values:
                total = np.float32(total + np.float32(item))
        return float(total)

    def final(self) -> float | None:
        """The result at the end."""
        return self.value()


def _numeric_typmod(value: Any, precision: int, scale: int) -> str | None:
    """``value::numeric(precision, scale)``: rounded to the scale, 22003 on overflow."""
    if value is None:
        return None
    return numeric_text(_as_decimal(value), (precision, scale))


def _float_numeric(value: Any, digits: int) -> Any:
    """A float as PostgreSQL turns real (6 significant digits, FLT_DIG) or double
    precision (15, DBL_DIG) into numeric text; other values as they are."""
    if isinstance(value, float) and math.isfinite(value):
        return numeric_text(Decimal(f"{value:.{digits}g}"))
    return value


def _varchar_cast(value: Any, length: int) -> str | None:
    """``value::varchar(n)``: the text cut to ``n`` characters (an explicit cast truncates)."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text[:length]


NUMERIC_FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_float4", float_cast("REAL"), 1),  # NaN refused: SQLite would make it NULL
    ("loom_float8", float_cast("DOUBLE PRECISION"), 1),
    ("loom_numeric_typmod", _numeric_typmod, 3),
    ("loom_float_numeric", _float_numeric, 2),
    ("loom_varchar", _varchar_cast, 2),
)

#: The aggregates (window functions too): (SQL name, factory, number of arguments).
NUMERIC_AGGREGATES = (
    ("loom_numeric_sum", _numeric_aggregate(average=False), 1),
    ("loom_numeric_avg", _numeric_aggregate(average=True), 1),
    ("loom_float4_sum", _Float4Sum, 1),
    ("loom_numeric_var_samp", lambda: _NumericVariance(sample=True, root=False), 1),
    ("loom_numeric_var_pop", lambda: _NumericVariance(sample=False, root=False), 1),
    ("loom_numeric_stddev_samp", lambda: _NumericVariance(sample=True, root=True), 1),
    ("loom_numeric_stddev_pop", lambda: _NumericVariance(sample=False, root=True), 1),
)
