"""PostgreSQL's type resolution where SQLite would silently coerce, from sqlglot's
type annotations (the tree is typed by ``qualify_query`` before generation).

* An operator or aggregate over types PostgreSQL has none for (arithmetic on booleans,
  text or JSON; a comparison of a number, a boolean and text with one another) raises 42883
  (``operator does not exist: boolean + integer``, ``function sum(text) does not
  exist``), as PostgreSQL does before running anything; SQLite would add, sum and
  compare whatever it is given.
* A string literal is PostgreSQL's *unknown* literal: meeting an integer, numeric
  or boolean operand it is read as that type (``'2' + 1`` is 3, ``ok = 'yes'`` is
  ``ok = true``), and a literal that is no such value raises 22P02 as
  PostgreSQL's input function does.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, ok BOOLEAN, s TEXT")
>>> check_types(qualify_query(tree_of("SELECT id + '2' FROM t WHERE ok = 'yes'"), ctx)).sql()
'SELECT t.id + 2 AS _col_0 FROM t AS t WHERE t.ok = TRUE'
>>> check_types(qualify_query(tree_of("SELECT sum(s) FROM t"), ctx))
Traceback (most recent call last):
...
loomdb.errors.ProgrammingError: function sum(text) does not exist
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from ... import errors
from ...pg_input import parse_uuid

_T = exp.DataType.Type
_INTEGERS = {_T.SMALLINT: "smallint", _T.INT: "integer", _T.BIGINT: "bigint", _T.TINYINT: "smallint"}
_NUMBERS = {**_INTEGERS, _T.DECIMAL: "numeric", _T.FLOAT: "real", _T.DOUBLE: "double precision"}
#: Types that have no arithmetic operator (and no sum/avg) in PostgreSQL, by their PostgreSQL name.
_NO_ARITHMETIC = {
    _T.BOOLEAN: "boolean",
    _T.TEXT: "text",
    _T.VARCHAR: "character varying",
    _T.CHAR: "character",
    _T.NCHAR: "character",
    _T.NVARCHAR: "character varying",
    _T.BPCHAR: "bpchar",
    _T.JSON: "json",
    _T.JSONB: "jsonb",
    _T.UUID: "uuid",
}
#: Types sum() and avg() do not take besides those (time values).
_NO_SUM = {
    **_NO_ARITHMETIC,
    _T.DATE: "date",
    _T.TIMESTAMP: "timestamp without time zone",
    _T.TIMESTAMPTZ: "timestamp with time zone",
}
#: Types max() and min() do not take.
_NO_MAX = {_T.BOOLEAN: "boolean", _T.JSON: "json", _T.JSONB: "jsonb", _T.UUID: "uuid"}
_OTHER_NAMES = {
    **_NO_SUM,
    **_NUMBERS,
    _T.INTERVAL: "interval",
    _T.VECTOR: "vector",
}
_ARITHMETIC = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}
#: PostgreSQL's integer input: a sign, digits and single underscores between them.
_INTEGER_INPUT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*")
_COMPARISON_OPS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.NullSafeEQ: "=",
    exp.NullSafeNEQ: "<>",
}
_COMPARISONS = tuple(_COMPARISON_OPS)
_STRINGS = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR, _T.BPCHAR}


def _kind(node: exp.Expr) -> Any:
    """The annotated type of ``node`` (None when unknown)."""
    dtype = node.type if isinstance(node, exp.Expression) else None
    if dtype is None or dtype.this in (_T.UNKNOWN, _T.NULL):
        return None
    if isinstance(node, exp.Literal) and node.is_number:
        return _number_literal_kind(node.this)
    return dtype.this


def _number_literal_kind(text: str) -> Any:
    """PostgreSQL's type of a number literal: integer, bigint, else numeric."""
    if text.isdigit():
        value = int(text)
        return _T.INT if value < 2**31 else _T.BIGINT if value < 2**63 else _T.DECIMAL
    return _T.DECIMAL


def _is_unknown_literal(node: exp.Expr) -> bool:
    """Whether ``node`` is a string literal: PostgreSQL's literal of unknown type."""
    return isinstance(node, exp.Literal) and node.is_string


def _name(node: exp.Expr) -> str:
    """PostgreSQL's name of ``node``'s type in an error message."""
    kind = _kind(node)
    if kind is None or _is_unknown_literal(node):
        return "unknown"
    return _OTHER_NAMES.get(kind, kind.value.lower())


def _undefined_operator(op: str, left: exp.Expr | None, right: exp.Expr) -> errors.Error:
    """PostgreSQL's 42883 for an operator no type pair has."""
    operands = f"{op} {_name(right)}" if left is None else f"{_name(left)} {op} {_name(right)}"
    return errors.ProgrammingError(f"operator does not exist: {operands}", sqlstate="42883")


def _invalid_input(type_name: str, text: str) -> errors.Error:
    """PostgreSQL's 22P02 for a literal that is no value of the type."""
    return errors.DataError(f'invalid input syntax for type {type_name}: "{text}"', sqlstate="22P02")


def _parse_bool(low: str) -> bool | None:
    """PostgreSQL's boolean input (``parse_bool``): a prefix of true/false/yes/no,
    on, off, 1 or 0; None for anything else."""
    if low in ("1", "on") or (low and any(w.startswith(low) for w in ("true", "yes"))):
        return True
    if low in ("0", "off") or (low and any(w.startswith(low) for w in ("false", "no"))):
        return False
    return None


def _typed_literal(literal: exp.Literal, kind: Any) -> exp.Expr:
    """The unknown ``literal`` read as a value of ``kind`` (an integer, numeric or
    boolean type), or DataError 22P02 as PostgreSQL's input function raises."""
    text = str(literal.this)
    stripped = text.strip()
    if kind == _T.BOOLEAN:
        value = _parse_bool(stripped.lower())
        if value is None:
            raise _invalid_input("boolean", text)
        return exp.Boolean(this=value)
    if kind in _INTEGERS:
        if not _INTEGER_INPUT.fullmatch(stripped):
            raise _invalid_input(_INTEGERS[kind], text)
        number = int(stripped.replace("_", ""))
        bits = {_T.SMALLINT: 16, _T.TINYINT: 16, _T.INT: 32}.get(kind, 64)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise errors.DataError(
                f'value "{text}" is out of range for type {_INTEGERS[kind]}', sqlstate="22003"
            )
        return exp.Literal.number(number)
    try:
        decimal = Decimal(stripped.replace("_", "")) if "__" not in stripped else None
    except InvalidOperation:
        decimal = None
    if decimal is None:
        raise _invalid_input("numeric", text)
    if not decimal.is_finite():
        return literal  # NaN/Infinity: left to the engine's numeric functions
    return exp.Literal.number(str(decimal))


def _coerce(literal: exp.Expr, other: exp.Expr) -> exp.Expr:
    """``literal`` as the type of ``other`` when it is an unknown literal meeting an
    integer, numeric, boolean, uuid or char(n) operand; else as it is."""
    if not _is_unknown_literal(literal) or _is_unknown_literal(other):
        return literal
    kind = _kind(other)
    if kind == _T.UUID:
        assert isinstance(literal, exp.Literal)
        return exp.Literal.string(parse_uuid(str(literal.this)))  # uuids compare in canonical form
    if kind in (_T.CHAR, _T.NCHAR, _T.BPCHAR):
        assert isinstance(literal, exp.Literal)
        return exp.Literal.string(str(literal.this).rstrip(" "))  # bpchar ignores trailing spaces
    if kind in _INTEGERS or kind == _T.DECIMAL or kind == _T.BOOLEAN:
        assert isinstance(literal, exp.Literal) and kind is not None
        return _typed_literal(literal, kind)
    return literal


def _check_arithmetic(node: exp.Binary, op: str) -> None:
    """42883 for ``left op right`` with an operand type PostgreSQL has no such operator for;
    an unknown literal meeting a number is read as that number's type."""
    left, right = node.this, node.expression
    if isinstance(node, exp.Sub) and _kind(left) in (_T.JSON, _T.JSONB):
        return  # jsonb's deletion of a key or an element
    node.set("this", _coerce(left, right))
    node.set("expression", _coerce(right, left))
    left, right = node.this, node.expression
    kinds = (_kind(left), _kind(right))
    if _T.VECTOR in kinds:
        return
    for side, kind in ((left, kinds[0]), (right, kinds[1])):
        if kind in _NO_ARITHMETIC and not _is_unknown_literal(side):
            other_known = all(k is not None for k in kinds)
            if kind == _T.BOOLEAN or other_known:
                raise _undefined_operator(op, left, right)


def _check_aggregate(node: exp.Expr, name: str, refused: dict[Any, str]) -> None:
    """42883 for aggregate ``name`` over a type PostgreSQL defines no such aggregate for."""
    arg = node.this
    if isinstance(arg, exp.Distinct) and arg.expressions:
        arg = arg.expressions[0]
    kind = _kind(arg)
    if kind in refused and not _is_unknown_literal(arg):
        raise errors.ProgrammingError(f"function {name}({refused[kind]}) does not exist", sqlstate="42883")


def check_types(tree: exp.Expr) -> exp.Expr:
    """``tree`` with unknown literals read as their operands' types, or the error
    PostgreSQL raises for an operator or aggregate over types it has none for."""
    for node in list(
        tree.find_all(
            *_ARITHMETIC, exp.Neg, exp.Sum, exp.Avg, exp.Max, exp.Min, exp.In, exp.Between, *_COMPARISONS
        )
    ):
        if isinstance(node, tuple(_ARITHMETIC)):
            assert isinstance(node, exp.Binary)
            _check_arithmetic(node, _ARITHMETIC[type(node)])
        elif isinstance(node, exp.Neg):
            kind = _kind(node.this)
            if kind in _NO_ARITHMETIC and not _is_unknown_literal(node.this):
                raise _undefined_operator("-", None, node.this)
        elif isinstance(node, (exp.Sum, exp.Avg)):
            _check_aggregate(node, "sum" if isinstance(node, exp.Sum) else "avg", _NO_SUM)
        elif isinstance(node, (exp.Max, exp.Min)):
            _check_aggregate(node, "max" if isinstance(node, exp.Max) else "min", _NO_MAX)
        elif isinstance(node, exp.Between):
            for arg in ("low", "high"):
                node.set(arg, _coerce(node.args[arg], node.this))
        elif isinstance(node, exp.In):
            node.set("expressions", [_coerce(item, node.this) for item in node.expressions])
        else:
            left, right = node.this, node.expression
            node.set("this", _coerce(left, right))
            node.set("expression", _coerce(right, left))
            _check_comparison(node)
    return tree


def _category(node: exp.Expr) -> str | None:
    """Which of PostgreSQL's type categories that never compare with each other
    ``node`` is in (number, boolean, string), None for others and unknown literals."""
    while isinstance(node, (exp.Paren, exp.Neg)):
        node = node.this
    # Only operands whose annotated type is certain: not ANY/ALL (typed as booleans) nor calls.
    if not isinstance(node, (exp.Column, exp.Cast, exp.Boolean, exp.Literal)):
        return None
    kind = _kind(node)
    if kind is None or _is_unknown_literal(node):
        return None
    if kind in _NUMBERS:
        return "number"
    if kind == _T.BOOLEAN:
        return "boolean"
    if kind in _STRINGS:
        return "string"
    return None


def _check_comparison(node: exp.Expr) -> None:
    """42883 for a comparison of a number, a boolean and a string with one another."""
    left, right = node.this, node.expression
    categories = (_category(left), _category(right))
    if None not in categories and categories[0] != categories[1]:
        raise _undefined_operator(_COMPARISON_OPS[type(node)], left, right)
