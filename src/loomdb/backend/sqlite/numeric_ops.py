"""PostgreSQL's numeric operators and functions on SQLite, in exact decimal
arithmetic with PostgreSQL's result scales (src/backend/utils/adt/numeric.c).

The SQLite dialect writes every numeric-typed ``+ - * / % ^``, unary minus,
``abs``, ``round``, ``trunc``, ``ceil``, ``floor``, ``sign``, ``sqrt``,
``greatest`` and ``least`` as calls of these functions (registered by
:mod:`.functions`). They take SQLite values (numeric text, integers) and
return numeric text, never an exponent, so the scale survives: ``1.50 + 1``
is ``'2.50'``. NULL in gives NULL out (``greatest``/``least`` skip NULLs).

>>> numeric_add("1.50", 1), numeric_mul("120.30", 2), numeric_div(7, "2.0")
('2.50', '240.60', '3.5000000000000000')
>>> numeric_round("2.5"), numeric_round("-2.5"), numeric_round("2.567", 2), numeric_trunc("-2.9")
('3', '-3', '2.57', '-2')
>>> numeric_pow("2.0", "0.5"), numeric_sqrt("2.0"), numeric_greatest("1.5", 2)
('1.4142135623730950', '1.414213562373095', '2')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    InvalidOperation,
)
from typing import TYPE_CHECKING, Any

from ... import errors
from ...types import numeric_text
from .numeric_functions import numeric_divide, sqrt_at

if TYPE_CHECKING:
    from apsw import SQLiteValue

#: PostgreSQL's NUMERIC_MIN_SIG_DIGITS, DEC_DIGITS and NUMERIC_MAX_DISPLAY_SCALE.
_MIN_SIG_DIGITS, _DEC_DIGITS, _MAX_DISPLAY_SCALE = 16, 4, 1000

# Exact arithmetic: sums, differences and products of finite decimals never round.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_UP)


def to_decimal(value: Any) -> Decimal | None:
    """A SQLite value as the numeric PostgreSQL would see (None for NULL): numeric
    text and integers exactly (a float, which only a parameter can be, refused);
    never a positive exponent (``1e3`` is ``1000``, scale 0).

    >>> to_decimal("1e3"), to_decimal(" 2.50 "), to_decimal(7)
    (Decimal('1000'), Decimal('2.50'), Decimal('7'))
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise errors.DataError(f"cannot use {value!r} as a numeric", sqlstate="42883")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Only a float parameter gets here (a numeric meeting a double precision is
        # double precision arithmetic): PostgreSQL would compute in double precision.
        raise errors.NotSupportedError(
            "a float parameter in numeric arithmetic is not supported by loomdb on SQLite"
            " (PostgreSQL computes numeric with a float in double precision); pass a Decimal or an int"
        )
    if isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise errors.DataError(
                f'invalid input syntax for type numeric: "{value}"', sqlstate="22P02"
            ) from None
        if not dec.is_finite():
            raise errors.NotSupportedError(
                "NaN and infinite numeric values are not supported by loomdb on SQLite"
            )
    else:
        raise errors.DataError(f"cannot use {type(value).__name__} as a numeric", sqlstate="42883")
    if int(dec.as_tuple().exponent) > 0:
        dec = dec.quantize(Decimal(1), context=_EXACT)
    return dec


def _scale(dec: Decimal) -> int:
    """A numeric's display scale (digits after the point)."""
    return max(0, -int(dec.as_tuple().exponent))


def _weight(dec: Decimal) -> int:
    """PostgreSQL's weight: the power of 10000 of the first base-10000 digit (0 for zero)."""
    return 0 if dec.is_zero() else dec.adjusted() // _DEC_DIGITS


def _out(dec: Decimal) -> str:
    """A result as numeric text."""
    return numeric_text(dec)


def _rounded(dec: Decimal, scale: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``dec`` rounded (half away from zero, as PostgreSQL's round_var) to ``scale``
    digits after the point; a negative scale rounds before the point."""
    return dec.quantize(Decimal(1).scaleb(-scale, _EXACT), rounding=rounding, context=_EXACT)


def _strict(function: Callable[..., Decimal]) -> Callable[..., str | None]:
    """``function`` over Decimals as a SQL function: NULL when an argument is NULL."""

    def call(*args: Any) -> str | None:
        """The result as numeric text."""
        values = [to_decimal(a) for a in args]
        if any(v is None for v in values):
            return None
        return _out(function(*values))

    call.__doc__ = function.__doc__
    call.__name__ = function.__name__
    return call


def _division_by_zero() -> errors.DataError:
    return errors.DataError("division by zero", sqlstate="22012")


@_strict
def numeric_add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b``: exact, scale the larger of the two."""
    return _EXACT.add(a, b)


@_strict
def numeric_sub(a: Decimal, b: Decimal) -> Decimal:
    """``a - b``: exact, scale the larger of the two."""
    return _EXACT.subtract(a, b)


@_strict
def numeric_mul(a: Decimal, b: Decimal) -> Decimal:
    """``a * b``: exact, scale the sum of the two."""
    return _EXACT.multiply(a, b)


@_strict
def numeric_div(a: Decimal, b: Decimal) -> Decimal:
    """``a / b`` with PostgreSQL's division scale; 22012 for a zero divisor."""
    if b.is_zero():
        raise _division_by_zero()
    return numeric_divide(a, b)


@_strict
def numeric_div_trunc(a: Decimal, b: Decimal) -> Decimal:
    """``div(a, b)``: the quotient truncated towards zero (scale 0); 22012 for a zero divisor."""
    if b.is_zero():
        raise _division_by_zero()
    return _EXACT.divide_int(a, b)


@_strict
def numeric_mod(a: Decimal, b: Decimal) -> Decimal:
    """``a % b`` (``mod``): the remainder of the truncated division, the dividend's
    sign, scale the larger of the two; 22012 for a zero divisor."""
    if b.is_zero():
        raise _division_by_zero()
    return _EXACT.remainder(a, b)


@_strict
def numeric_neg(a: Decimal) -> Decimal:
    """``-a``."""
    return _EXACT.minus(a)


@_strict
def numeric_abs(a: Decimal) -> Decimal:
    """``abs(a)``, keeping the scale."""
    return _EXACT.abs(a)


@_strict
def numeric_sign(a: Decimal) -> Decimal:
    """``sign(a)``: -1, 0 or 1 (scale 0)."""
    return Decimal((a > 0) - (a < 0))


@_strict
def numeric_ceil(a: Decimal) -> Decimal:
    """``ceil(a)`` (scale 0)."""
    return _rounded(a, 0, ROUND_CEILING)


@_strict
def numeric_floor(a: Decimal) -> Decimal:
    """``floor(a)`` (scale 0)."""
    return _rounded(a, 0, ROUND_FLOOR)


def _scale_arg(value: Decimal) -> int:
    """The integer scale argument of round/trunc (PostgreSQL's int4 argument)."""
    if value != value.to_integral_value():
        raise errors.NotSupportedError(
            "round()/trunc() of a numeric with a non-integer scale is not supported by loomdb on SQLite"
        )
    return max(min(int(value), 2000), -2000)


@_strict
def numeric_round(a: Decimal, scale: Decimal = Decimal(0)) -> Decimal:
    """``round(a[, scale])``: half away from zero; the result's scale is ``max(scale, 0)``."""
    digits = _scale_arg(scale)
    result = _rounded(a, digits)
    return result if digits >= 0 else _rounded(result, 0)


@_strict
def numeric_trunc(a: Decimal, scale: Decimal = Decimal(0)) -> Decimal:
    """``trunc(a[, scale])``: towards zero; the result's scale is ``max(scale, 0)``."""
    digits = _scale_arg(scale)
    result = _rounded(a, digits, ROUND_DOWN)
    return result if digits >= 0 else _rounded(result, 0)


@_strict
def numeric_sqrt(a: Decimal) -> Decimal:
    """``sqrt(a)`` correctly rounded to PostgreSQL's scale (at least 16 significant
    digits, at least the input's scale); 2201F for a negative number."""
    if a < 0:
        raise errors.DataError("cannot take square root of a negative number", sqlstate="2201F")
    sweight = (_weight(a) + 1) * _DEC_DIGITS // 2 - 1
    rscale = min(max(_MIN_SIG_DIGITS - sweight, _scale(a), 0), _MAX_DISPLAY_SCALE)
    return sqrt_at(a, rscale)


def _int_power_scale(base: Decimal, exponent: int, exp_scale: int) -> int:
    """power_var_int's result scale: 16 significant digits by a float estimate of the
    result's weight, at least either input's scale."""
    if base.is_zero():
        f = 0.0
    else:
        sign, digits, exp = base.as_tuple()
        # PostgreSQL estimates from the first 16 digits or so; float precision suffices.
        f = exponent * (math.log10(int("".join(map(str, digits[:17])))) + int(exp) + max(0, len(digits) - 17))
    rscale = _MIN_SIG_DIGITS - int(f)
    return min(max(rscale, _scale(base), exp_scale, 0), _MAX_DISPLAY_SCALE)


@_strict
def numeric_pow(base: Decimal, exponent: Decimal) -> Decimal:
    """``base ^ exponent`` / ``power(base, exponent)`` with PostgreSQL's result scale
    (power_var): exact integer powers rounded, else exp(exponent * ln(base))."""
    if exponent == exponent.to_integral_value() and abs(exponent) <= 2**31 - 1:
        n = int(exponent)
        rscale = _int_power_scale(base, n, _scale(exponent))
        if base.is_zero():
            if n < 0:
                raise errors.DataError("zero raised to a negative power is undefined", sqlstate="2201F")
            return _rounded(Decimal(1 if n == 0 else 0), rscale)
        if abs(n) * max(1, abs(base.adjusted()) + 1) > 200_000:
            raise errors.NotSupportedError(
                "numeric ^ with a result this large is not supported by loomdb on SQLite"
            )
        if n >= 0:
            return _rounded(_EXACT.power(base, n), rscale)
        return numeric_divide(Decimal(1), _EXACT.power(base, -n), rscale)
    if base.is_zero():
        if exponent < 0:
            raise errors.DataError("zero raised to a negative power is undefined", sqlstate="2201F")
        return Decimal(0).scaleb(-_MIN_SIG_DIGITS, _EXACT)
    if base < 0:
        raise errors.DataError(
            "a negative number raised to a non-integer power yields a complex result", sqlstate="2201F"
        )
    val = (
        float(exponent) * math.log(float(base))
        if base.adjusted() < 300
        else float(exponent * base.ln(Context(prec=20)))
    )
    if abs(val) > 2000 * 3.01:
        raise errors.NotSupportedError(
            "numeric ^ with a result this large or small is not supported by loomdb on SQLite"
        )
    val *= 0.434294481903252
    rscale = min(max(_MIN_SIG_DIGITS - int(val), _scale(base), _scale(exponent), 0), _MAX_DISPLAY_SCALE)
    sig_digits = max(rscale + int(val), 0)
    ctx = Context(prec=sig_digits + 30, rounding=ROUND_HALF_UP, Emax=MAX_EMAX, Emin=MIN_EMIN)
    result = ctx.exp(ctx.multiply(exponent, ctx.ln(base)))
    return _rounded(result, rscale)


def _ln_dweight(x: Decimal) -> int:
    """PostgreSQL's estimate_ln_dweight: the decimal weight of ln(x), from x - 1 near 1,
    else from the first two base-10000 digits."""
    if x <= 0:
        return 0
    if Decimal("0.9") <= x <= Decimal("1.1"):
        d = _EXACT.subtract(x, Decimal(1))
        return 0 if d.is_zero() else d.adjusted()
    weight = _weight(x)
    digits = int(_EXACT.scaleb(x, -weight * _DEC_DIGITS).to_integral_value(rounding=ROUND_DOWN))
    dweight = weight * _DEC_DIGITS
    rest = _EXACT.subtract(_EXACT.scaleb(x, -weight * _DEC_DIGITS), Decimal(digits))
    if not rest.is_zero():
        digits = digits * 10000 + int(_EXACT.scaleb(rest, _DEC_DIGITS).to_integral_value(rounding=ROUND_DOWN))
        dweight -= _DEC_DIGITS
    ln_x = math.log(digits) + dweight * 2.302585092994046
    return int(math.log10(abs(ln_x))) if ln_x else 0


def _clamp_scale(rscale: int, *scales: int) -> int:
    """A result scale at least the inputs' scales and 0, at most 1000."""
    return min(max(rscale, *scales, 0), _MAX_DISPLAY_SCALE)


def _ln_at(x: Decimal, rscale: int) -> Decimal:
    """ln(x) correctly rounded to ``rscale`` digits after the point."""
    if x.is_zero():
        raise errors.DataError("cannot take logarithm of zero", sqlstate="2201E")
    if x < 0:
        raise errors.DataError("cannot take logarithm of a negative number", sqlstate="2201E")
    ctx = Context(prec=rscale + abs(_ln_dweight(x)) + 25, Emax=MAX_EMAX, Emin=MIN_EMIN)
    return _rounded(ctx.ln(x), rscale)


@_strict
def numeric_ln(x: Decimal) -> Decimal:
    """``ln(x)``: at least 16 significant digits, at least the input's scale."""
    return _ln_at(x, _clamp_scale(_MIN_SIG_DIGITS - _ln_dweight(x), _scale(x)))


@_strict
def numeric_log(base: Decimal, x: Decimal) -> Decimal:
    """``log(base, x)`` (``log(x)`` is ``log(10, x)``): ln(x) / ln(base) at PostgreSQL's scale."""
    for value in (base, x):
        if value.is_zero():
            raise errors.DataError("cannot take logarithm of zero", sqlstate="2201E")
        if value < 0:
            raise errors.DataError("cannot take logarithm of a negative number", sqlstate="2201E")
    rscale = _clamp_scale(_MIN_SIG_DIGITS - (_ln_dweight(x) - _ln_dweight(base)), _scale(base), _scale(x))
    if base == 1:
        raise _division_by_zero()
    ctx = Context(prec=rscale + 60, Emax=MAX_EMAX, Emin=MIN_EMIN)
    return _rounded(ctx.divide(ctx.ln(x), ctx.ln(base)), rscale)


@_strict
def numeric_exp(x: Decimal) -> Decimal:
    """``exp(x)``: at least 16 significant digits, at least the input's scale."""
    val = max(min(float(x) * 0.434294481903252, 2000.0), -2000.0)
    if val > 1000:
        raise errors.NotSupportedError("exp() of a numeric this large is not supported by loomdb on SQLite")
    rscale = _clamp_scale(_MIN_SIG_DIGITS - int(val), _scale(x))
    ctx = Context(prec=rscale + max(int(val), 0) + 25, Emax=MAX_EMAX, Emin=MIN_EMIN)
    return _rounded(ctx.exp(x), rscale)


def numeric_scale(value: Any) -> int | None:
    """``scale(x)``: the digits after the point."""
    dec = to_decimal(value)
    return None if dec is None else _scale(dec)


def numeric_min_scale(value: Any) -> int | None:
    """``min_scale(x)``: the fewest digits after the point that keep the value."""
    dec = to_decimal(value)
    return None if dec is None else (0 if dec.is_zero() else _scale(dec.normalize(_EXACT)))


@_strict
def numeric_trim_scale(a: Decimal) -> Decimal:
    """``trim_scale(x)``: the value without trailing zeros after the point."""
    return Decimal(0) if a.is_zero() else _rounded(a, _scale(a.normalize(_EXACT)))


def _pick(larger: bool) -> Callable[..., str | None]:
    """``greatest`` (``larger``) or ``least``: the winning value as it is (its scale
    kept), NULLs skipped, NULL when every argument is NULL."""

    def pick(*args: Any) -> str | None:
        """The greatest or least non-NULL argument, as numeric text."""
        best: Decimal | None = None
        for arg in args:
            value = to_decimal(arg)
            if value is not None and (best is None or (value > best if larger else value < best)):
                best = value
        return None if best is None else _out(best)

    return pick


numeric_greatest = _pick(larger=True)
numeric_least = _pick(larger=False)


#: The scalar functions: (SQL name, function, number of arguments; -1 any).
NUMERIC_OPERATORS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_num_add", numeric_add, 2),
    ("loom_num_sub", numeric_sub, 2),
    ("loom_num_mul", numeric_mul, 2),
    ("loom_num_div", numeric_div, 2),
    ("loom_num_mod", numeric_mod, 2),
    ("loom_num_div_trunc", numeric_div_trunc, 2),
    ("loom_num_pow", numeric_pow, 2),
    ("loom_num_neg", numeric_neg, 1),
    ("loom_num_abs", numeric_abs, 1),
    ("loom_num_sign", numeric_sign, 1),
    ("loom_num_ceil", numeric_ceil, 1),
    ("loom_num_floor", numeric_floor, 1),
    ("loom_num_round", numeric_round, -1),
    ("loom_num_trunc", numeric_trunc, -1),
    ("loom_num_sqrt", numeric_sqrt, 1),
    ("loom_num_ln", numeric_ln, 1),
    ("loom_num_log", numeric_log, 2),
    ("loom_num_exp", numeric_exp, 1),
    ("loom_num_greatest", numeric_greatest, -1),
    ("loom_num_scale", numeric_scale, 1),
    ("loom_num_min_scale", numeric_min_scale, 1),
    ("loom_num_trim_scale", numeric_trim_scale, 1),
    ("loom_num_least", numeric_least, -1),
)
