"""How the SQLite dialect writes PostgreSQL's double precision: casts of floats,
booleans and number literals to text, round() half to even, the errors of
sqrt/ln/log and of float arithmetic that overflows, underflows or makes a NaN
(see :mod:`.float_functions`).

>>> from loomdb.sql.dialect import parse
>>> from sqlglot.optimizer.annotate_types import annotate_types
>>> from .dialect import LoomSQLite
>>> annotate_types(parse("SELECT sqrt(-1), 1e3::text")).sql(dialect=LoomSQLite)
"SELECT COALESCE(SQRT(-1), LOOM_SQRT_NULL(-1)), '1000'"
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp
from sqlglot.generators.sqlite import SQLiteGenerator

from ... import errors
from ...sql.tree import is_jsonb_concat, kind_of, numeric_literal_text
from ...types import numeric_text
from .integer_dialect import int_bits, integer_checked, param_checked
from .text_dialect import _is_float8

_Base = Callable[[SQLiteGenerator, Any], str]
_T = exp.DataType.Type
_TEXT_TYPES = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR}
_LEAVES = (exp.Column, exp.Literal, exp.Parameter, exp.Placeholder, exp.Null)
_OPERATORS: dict[type[exp.Expr], str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}
#: The largest finite double: SQLite's result outside +-this is an infinity.
_MAX = "1.7976931348623157e308"


def float_bits(node: exp.Expr) -> int | None:
    """64 when ``node`` is double precision in PostgreSQL, 32 for real, else None
    (a number literal such as 1.5 is numeric there, though sqlglot says float)."""
    kind = kind_of(node)
    if kind == _T.FLOAT:
        return 32
    if kind == _T.DOUBLE and _is_float8(node):
        return 64
    return None


def _literal_text(node: exp.Expr) -> str | None:
    """A number literal (under parentheses and signs) as PostgreSQL's numeric text, else None."""
    text = numeric_literal_text(node)
    if text is None:
        return None
    try:
        return numeric_text(Decimal(text))
    except InvalidOperation:
        return None


def text_cast(self: SQLiteGenerator, e: exp.Cast) -> str | None:
    """A cast to text of a float (PostgreSQL's shortest text: ``0``, ``1e+300``),
    a boolean (``true`` / ``false``) or a number literal (numeric text: 1e300 has
    301 digits); None for any other cast. ``varchar(n)`` then cuts the text."""
    if e.to.this not in _TEXT_TYPES:
        return None
    value = e.this
    literal = _literal_text(value)
    bits = float_bits(value)
    if literal is not None:
        text = self.sql(exp.Literal.string(literal))
    elif bits is not None:
        text = self.func("loom_float_text", value, exp.Literal.number(bits))
    elif kind_of(value) == _T.BOOLEAN:
        text = f"(CASE {self.sql(value)} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    else:
        return None
    params = e.to.expressions
    if params and isinstance(params[0].this, exp.Literal):
        return f"loom_varchar({text}, {self.sql(params[0].this)})"
    return text


def rounding(base: _Base) -> _Base:
    """``round(x)`` of a double precision or real ``x`` half to even (PostgreSQL's
    rint; SQLite rounds half away from zero); ``round(x, n)``, which PostgreSQL
    has for numeric only, is its 42883. Other rounds as ``base`` writes them."""

    def generate(self: SQLiteGenerator, e: exp.Round) -> str:
        """The round."""
        if float_bits(e.this) is None:
            return base(self, e)
        if e.args.get("decimals") is not None:
            raise errors.ProgrammingError(
                "function round(double precision, integer) does not exist", sqlstate="42883"
            )
        return self.func("loom_float_round", e.this)

    return generate


def null_checked(check: str, base: _Base) -> _Base:
    """``sqrt`` / ``ln`` / ``log`` as ``base`` writes them, where SQLite's NULL for
    an argument out of the domain becomes PostgreSQL's error: ``check(x)`` runs
    only when the result is NULL."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``COALESCE(f(x), check(x))``."""
        if isinstance(e, exp.Log) and e.expression is not None:
            return base(self, e)  # log(b, x) is numeric in PostgreSQL
        return f"COALESCE({base(self, e)}, {self.func(check, e.this)})"

    return generate


def _is_leaf(node: exp.Expr) -> bool:
    """Whether ``node`` is cheap to compute again (a column, literal or parameter)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, _LEAVES)


def float_checked(self: SQLiteGenerator, e: exp.Expr, sql: str) -> str:
    """``sql`` (the operation ``e`` as SQLite computes it) with PostgreSQL's float8
    checks when ``e`` is double precision arithmetic: an infinity from finite
    operands is 22003 overflow, a zero from non-zero ones (``*`` ``/``) underflow,
    a NaN refused. Column, literal and parameter operands are checked by a CASE
    that calls :func:`.float_functions.float8_op` only on a suspect result."""
    op = _OPERATORS.get(type(e))
    if op is None or float_bits(e) != 64:
        return sql
    left, right = e.this, e.expression
    divisor_literal = isinstance(right, exp.Literal) and right.is_number and float(right.this) != 0
    if not (_is_leaf(left) and _is_leaf(right)) or (op == "/" and not divisor_literal):
        return self.func("loom_float8_op", left, right, exp.Literal.string(op))
    test = f"{sql} BETWEEN -{_MAX} AND {_MAX}"
    if op in "*/":
        test += f" AND {sql} <> 0"
    fallback = self.func("loom_float8_op", left, right, exp.Literal.string(op))
    return f"(CASE WHEN {test} THEN {sql} ELSE {fallback} END)"


def text_concat(base: _Base) -> _Base:
    """``||`` (as ``base`` writes it) whose float, boolean and number-literal
    operands are first turned into PostgreSQL's text for them (see
    :func:`text_cast`): ``'score ' || 0.0::float`` is ``score 0``."""

    def generate(self: SQLiteGenerator, e: exp.DPipe) -> str:
        """The concatenation."""
        if not is_jsonb_concat(e):
            for arg in ("this", "expression"):
                side = e.args.get(arg)
                if side is not None and (
                    _literal_text(side) is not None
                    or float_bits(side) is not None
                    or kind_of(side) == _T.BOOLEAN
                ):
                    e.set(arg, exp.Cast(this=side, to=exp.DataType.build("TEXT")))
        return base(self, e)

    return generate


def float_modulo(base: _Base) -> _Base:
    """``%`` as ``base`` writes it; 42883 over a double precision or real operand,
    which PostgreSQL has no ``%`` for (SQLite would take the integer parts)."""

    def generate(self: SQLiteGenerator, e: exp.Mod) -> str:
        """The modulo, or ProgrammingError."""
        for side in (e.this, e.expression):
            bits = float_bits(side)
            if bits is not None:
                name = "double precision" if bits == 64 else "real"
                raise errors.ProgrammingError(f"operator does not exist: {name} % ...", sqlstate="42883")
        return base(self, e)

    return generate


def _float8_arguments(args: list[exp.Expr]) -> bool:
    """Whether PostgreSQL picks the double precision exp() or power() for ``args``:
    when one is a float, or all are integers (numerics, such as the literal 2.5,
    alone pick the numeric function)."""
    return any(float_bits(arg) is not None for arg in args) or all(int_bits(arg) is not None for arg in args)


def float8_math(name: str, base: _Base) -> _Base:
    """``exp(x)`` / ``power(x, y)`` of double precision as ``base`` writes them, where
    SQLite's NULL, infinity or zero is checked by :func:`.float_functions.float8_math`
    (PostgreSQL's overflow, underflow and domain errors)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``CASE WHEN <a normal result> THEN <it> ELSE <the check> END``."""
        args = [e.this] if name == "exp" else [e.this, e.expression]
        sql = base(self, e)
        if not _float8_arguments(args):
            return sql
        check = self.func("loom_float8_math", exp.Literal.string(name), *args)
        return f"(CASE WHEN {sql} BETWEEN -{_MAX} AND {_MAX} AND {sql} <> 0 THEN {sql} ELSE {check} END)"

    return generate


def checked(base: _Base) -> _Base:
    """The transform ``base`` of an arithmetic node, its result range checked
    (see :func:`.integer_dialect.integer_checked`, and :func:`float_checked`
    for double precision)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The checked operation."""
        sql = base(self, e)
        if int_bits(e) is not None:
            return integer_checked(self, e, sql)
        return param_checked(self, e, sql) or float_checked(self, e, sql)

    return generate
