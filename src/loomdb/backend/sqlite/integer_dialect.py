"""How the SQLite dialect writes PostgreSQL's integer arithmetic and sum(bigint).

``+ - * /``, unary minus and ``abs`` over smallint, integer and bigint are range
checked at the width PostgreSQL computes them in (the wider operand's; an
integer literal is an integer when it fits 32 bits, else a bigint), raising
22003 as PostgreSQL does, where SQLite would widen to 64 bits or, past those,
turn the value into a REAL. The check costs no Python call per row where the
operands are columns, literals or parameters (a ``CASE`` repeats the cheap
operation); deeper expressions go through :func:`.integer_functions.int_check`.

>>> from loomdb.sql.dialect import parse
>>> from sqlglot.optimizer.annotate_types import annotate_types
>>> from .dialect import LoomSQLite
>>> annotate_types(parse("SELECT 2147483647 + 1, 1 + 1")).sql(dialect=LoomSQLite)
'SELECT (CASE WHEN 2147483647 + 1 NOT BETWEEN -2147483648 AND 2147483647 THEN loom_int_out_of_range(32) ELSE 2147483647 + 1 END), 1 + 1'
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.generators.sqlite import SQLiteGenerator

from ...sql.tree import numeric_literal_text
from .integer_functions import int_range

_T = exp.DataType.Type
#: The width of each integer type sqlglot annotates.
INT_BITS = {_T.SMALLINT: 16, _T.INT: 32, _T.BIGINT: 64}
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
#: Operands cheap enough to compute twice (in the CASE's test and its value).
_LEAVES = (exp.Column, exp.Literal, exp.Parameter, exp.Placeholder, exp.Null)


def integer_literal(node: exp.Expr) -> int | None:
    """The value of an integer literal (under parentheses and signs: PostgreSQL
    folds a minus into the constant), else None.

    >>> integer_literal(exp.Neg(this=exp.Literal.number(5))), integer_literal(exp.Literal.number("2.5"))
    (-5, None)
    """
    text = numeric_literal_text(node)
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def int_bits(node: exp.Expr) -> int | None:
    """The width of PostgreSQL's integer type of ``node``'s value (16, 32 or 64),
    or None when PostgreSQL's type is not an integer (or not known).

    >>> int_bits(exp.Literal.number(3000000000)), int_bits(exp.Literal.number("99999999999999999999"))
    (64, None)
    """
    while isinstance(node, exp.Paren):
        node = node.this
    literal = integer_literal(node)
    if literal is not None:
        for bits in (32, 64):
            low, high = int_range(bits)
            if low <= literal <= high:
                return bits
        return None
    if isinstance(node, exp.Cast):
        return INT_BITS.get(node.to.this)
    if isinstance(node, _ARITHMETIC):
        left, right = int_bits(node.this), int_bits(node.expression)
        return None if left is None or right is None else max(left, right)
    if isinstance(node, (exp.Neg, exp.Abs)):
        return int_bits(node.this)
    if isinstance(node, (exp.Literal, exp.Parameter, exp.Placeholder)):
        return None
    dtype = node.type if isinstance(node, exp.Expression) else None
    return None if dtype is None else INT_BITS.get(dtype.this)


def _operands(node: exp.Expr) -> list[exp.Expr]:
    """The operands of an arithmetic node."""
    if isinstance(node, _ARITHMETIC):
        return [node.this, node.expression]
    return [node.this]


def _is_leaf(node: exp.Expr) -> bool:
    """Whether ``node`` is cheap to compute twice (a column, literal or parameter)."""
    while isinstance(node, (exp.Paren, exp.Neg)) and integer_literal(node) is None:
        if isinstance(node, exp.Neg):
            return False
        node = node.this
    return integer_literal(node) is not None or isinstance(node, _LEAVES)


def _needs_check(node: exp.Expr, bits: int) -> bool:
    """Whether the operation ``node`` may leave the ``bits``-wide range: not when
    its operands are literals whose result fits, nor for a division by a literal
    other than -1 (only the smallest integer divided by -1 overflows)."""
    values = [integer_literal(operand) for operand in _operands(node)]
    if isinstance(node, exp.Div) and values[1] is not None and values[1] != -1:
        return False
    if any(value is None for value in values):
        return True
    low, high = int_range(bits)
    if isinstance(node, exp.Add):
        result = values[0] + values[1]  # type: ignore[operator]
    elif isinstance(node, exp.Sub):
        result = values[0] - values[1]  # type: ignore[operator]
    elif isinstance(node, exp.Mul):
        result = values[0] * values[1]  # type: ignore[operator]
    elif isinstance(node, exp.Neg):
        result = -values[0]  # type: ignore[operator]
    elif isinstance(node, exp.Abs):
        result = abs(values[0])  # type: ignore[arg-type]
    else:
        return True
    return not low <= result <= high


def integer_checked(self: SQLiteGenerator, node: exp.Expr, sql: str) -> str:
    """``sql`` (the operation ``node`` as SQLite computes it) range checked at
    PostgreSQL's integer width of ``node``; as it is when ``node`` is not integer
    arithmetic or cannot overflow."""
    if isinstance(node, exp.Neg) and integer_literal(node) is not None:
        return sql  # a negative constant, folded by PostgreSQL's parser
    bits = int_bits(node)
    if bits is None or not _needs_check(node, bits):
        return sql
    if not all(_is_leaf(operand) for operand in _operands(node)):
        return f"loom_int_check({sql}, {bits})"
    if bits == 64:
        # SQLite turns a 64-bit overflow into a REAL (of magnitude 2**63 or more).
        test = f"typeof({sql}) = 'real'"
    else:
        low, high = int_range(bits)
        test = f"{sql} NOT BETWEEN {low} AND {high}"
    return f"(CASE WHEN {test} THEN loom_int_out_of_range({bits}) ELSE {sql} END)"


def bigint_sum(self: SQLiteGenerator, e: exp.Expr, in_result: bool) -> str | None:
    """``sum(bigint)`` (numeric in PostgreSQL, so it never overflows) as two SQLite
    sums that cannot overflow, of the high and low 32 bits of each value, joined
    by :func:`.integer_functions.int8_sum`: numeric text in a result column
    (``in_result``), an integer elsewhere. None for any other sum, and for
    ``sum(DISTINCT ...)`` and window sums, which the exact numeric sum computes, and
    FILTER sums (SQLite's own sum)."""
    arg = e.this
    if isinstance(arg, exp.Distinct) or isinstance(e.parent, (exp.Window, exp.Filter)):
        return None
    if int_bits(arg) != 64:
        return None
    value = self.sql(arg)
    high = f"SUM(({value}) >> 32)"
    low = f"SUM(({value}) & 4294967295)"
    return f"loom_int8_sum({high}, {low}, {int(in_result)})"


def param_checked(self: SQLiteGenerator, node: exp.Expr, sql: str) -> str | None:
    """``sql`` (the operation ``node``) checked by :func:`.integer_functions.int_param_check`
    when an operand is a parameter and the others are integers: PostgreSQL computes
    it at the width the parameter is bound as, known only at run time. None otherwise."""
    operands = [op.unnest() if isinstance(op, exp.Paren) else op for op in _operands(node)]
    params = [op for op in operands if isinstance(op, (exp.Parameter, exp.Placeholder))]
    if not params:
        return None
    widths = [int_bits(op) for op in operands if op not in params]
    if any(width is None for width in widths):
        return None
    bits = max([16, *[w for w in widths if w is not None]])
    check = self.func("loom_int_param_check", sql, exp.Literal.number(bits), *params)
    if not all(_is_leaf(op) for op in operands):
        return check
    # A result that fits the narrowest width PostgreSQL may use needs no call.
    low, high = int_range(bits)
    fits = f"typeof({sql}) = 'integer'" if bits == 64 else f"{sql} BETWEEN {low} AND {high}"
    return f"(CASE WHEN {fits} THEN {sql} ELSE {check} END)"


def shift(left: bool) -> Callable[[SQLiteGenerator, exp.Expr], str]:
    """``a << n`` / ``a >> n`` as PostgreSQL computes them for ``a``'s integer type:
    the count taken modulo the width of the machine word (32, or 64 for bigint) and
    a left shift wrapped into the type's bits (SQLite shifts in 64 bits, and a
    count past 63 gives 0)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The shift."""
        value, count = self.sql(e.this), self.sql(e.expression)
        bits = int_bits(e.this)
        op = "<<" if left else ">>"
        if bits is None:
            return f"{value} {op} {count}"
        shifted = f"(({value}) {op} (({count}) & {63 if bits == 64 else 31}))"
        if not left or bits == 64:
            return shifted
        return f"((({shifted} + {1 << (bits - 1)}) & {(1 << bits) - 1}) - {1 << (bits - 1)})"

    return generate


def xor(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``a # b`` (SQLite has no exclusive or): ``(a | b) - (a & b)``."""
    a, b = self.sql(e.this), self.sql(e.expression)
    return f"((({a}) | ({b})) - (({a}) & ({b})))"
