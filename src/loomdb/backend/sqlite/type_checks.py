"""PostgreSQL's type resolution where SQLite would silently coerce, from sqlglot's
type annotations (the tree is typed by ``qualify_query`` before generation).

* An operator, function or aggregate over types PostgreSQL has none for raises 42883
  (``operator does not exist: boolean + integer``, ``function sum(text) does not
  exist``, ``integer ~~ unknown`` for LIKE over a number, ``timestamp with time zone
  = integer``), as PostgreSQL does before running anything; SQLite would add, sum,
  match and compare whatever it is given.
* Unknown literals take the type of what they meet (:mod:`.literal_types`).
* A boolean turned into text (``::text``, ``||``) is ``true``/``false``, and ``t``/``f``
  in ``concat()``, as PostgreSQL writes it; SQLite would write 1 and 0.

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

from typing import Any

from sqlglot import exp

from ... import errors
from .literal_types import (
    BYTEA,
    NUMBERS,
    STRINGS,
    as_condition,
    certain_kind,
    coerce,
    coerce_branches,
    is_unknown_literal,
    kind_of,
)

_T = exp.DataType.Type
_TIMES = {
    _T.DATE: "date",
    _T.TIMESTAMP: "timestamp without time zone",
    _T.TIMESTAMPTZ: "timestamp with time zone",
}
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
_NO_SUM = {**_NO_ARITHMETIC, **_TIMES}
#: Types max() and min() do not take.
_NO_MAX = {_T.BOOLEAN: "boolean", _T.JSON: "json", _T.JSONB: "jsonb", _T.UUID: "uuid"}
_NAMES = {**_NO_SUM, **NUMBERS, _T.INTERVAL: "interval", _T.VECTOR: "vector"}
_ARITHMETIC: dict[type[exp.Expr], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
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
#: The functions over text only and over numbers only, whose argument must be such a type.
_TEXT_FUNCTIONS = (exp.Upper, exp.Lower, exp.Length, exp.Initcap, exp.Reverse)
_NUMBER_FUNCTIONS = (exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Exp, exp.Sign)
_CONDITIONALS = (exp.Case, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least)
_NODES = (
    *_ARITHMETIC,
    *_COMPARISON_OPS,
    *_TEXT_FUNCTIONS,
    *_NUMBER_FUNCTIONS,
    *_CONDITIONALS,
    exp.Neg,
    exp.Sum,
    exp.Avg,
    exp.Max,
    exp.Min,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Where,
    exp.DPipe,
    exp.Cast,
    exp.Concat,
    exp.ConcatWs,
)


def _name(node: exp.Expr) -> str:
    """PostgreSQL's name of ``node``'s type in an error message."""
    kind = kind_of(node)
    if kind is None or is_unknown_literal(node):
        return "unknown"
    return _NAMES.get(kind, kind.value.lower())


def _undefined_operator(op: str, left: exp.Expr | None, right: exp.Expr) -> errors.Error:
    """PostgreSQL's 42883 for an operator no type pair has."""
    operands = f"{op} {_name(right)}" if left is None else f"{_name(left)} {op} {_name(right)}"
    return errors.ProgrammingError(f"operator does not exist: {operands}", sqlstate="42883")


def _undefined_function(name: str, args: list[exp.Expr]) -> errors.Error:
    """PostgreSQL's 42883 for a function no argument types have."""
    shown = ", ".join(_name(a) for a in args)
    return errors.ProgrammingError(f"function {name}({shown}) does not exist", sqlstate="42883")


def _check_arithmetic(node: exp.Expr, op: str) -> None:
    """42883 for ``left op right`` with an operand type PostgreSQL has no such operator
    for; an unknown literal meeting a typed operand is read as that type; 42725 for two
    unknown literals."""
    left, right = node.this, node.expression
    if isinstance(node, exp.Sub) and kind_of(left) in (_T.JSON, _T.JSONB):
        return  # jsonb's deletion of a key or an element
    if is_unknown_literal(left) and is_unknown_literal(right):
        raise errors.ProgrammingError(f"operator is not unique: unknown {op} unknown", sqlstate="42725")
    node.set("this", coerce(left, right))
    node.set("expression", coerce(right, left))
    left, right = node.this, node.expression
    kinds = (kind_of(left), kind_of(right))
    if _T.VECTOR in kinds:
        return
    for side, kind in ((left, kinds[0]), (right, kinds[1])):
        bad = kind in _NO_ARITHMETIC and not is_unknown_literal(side)
        if bad and (kind == _T.BOOLEAN or None not in kinds):
            raise _undefined_operator(op, left, right)
    certain = (certain_kind(left), certain_kind(right))
    # date ± integer is date arithmetic; a timestamp with a number, or * / % of a date, is none
    date_arithmetic = isinstance(node, (exp.Add, exp.Sub)) and _T.DATE in certain
    if any(k in _TIMES for k in certain) and any(k in NUMBERS for k in certain) and not date_arithmetic:
        raise _undefined_operator(op, left, right)


def _check_aggregate(node: exp.Expr, name: str, refused: dict[Any, str]) -> None:
    """42883 for aggregate ``name`` over a type PostgreSQL defines no such aggregate for."""
    arg = node.this
    if isinstance(arg, exp.Distinct) and arg.expressions:
        arg = arg.expressions[0]
    kind = kind_of(arg)
    if kind in refused and not is_unknown_literal(arg):
        raise _undefined_function(name, [arg])


def _category(node: exp.Expr) -> str | None:
    """Which of PostgreSQL's type categories that never compare with each other ``node``
    is in (number, boolean, string, time, jsonb, uuid); None when not certain."""
    kind = certain_kind(node)
    if kind in NUMBERS:
        return "number"
    if kind in STRINGS:
        return "string"
    if kind in _TIMES:
        return "time"
    if kind in (_T.BOOLEAN, _T.JSONB, _T.UUID):
        return str(kind)
    return None


def _check_comparison(node: exp.Expr, op: str) -> None:
    """Unknown literals read as the other side's type; 42883 for a comparison across
    categories (a number with a boolean, text with a timestamp...)."""
    left, right = node.this, node.expression
    node.set("this", coerce(left, right))
    node.set("expression", coerce(right, left))
    left, right = node.this, node.expression
    categories = (_category(left), _category(right))
    if None not in categories and categories[0] != categories[1]:
        raise _undefined_operator(op, left, right)


def _check_like(node: exp.Expr) -> None:
    """42883 for LIKE / ILIKE over a value that is not text (PostgreSQL's ~~ and ~~*)."""
    if _category(node.this) not in (None, "string"):
        op = ("!" if node.args.get("negate") else "") + ("~~*" if isinstance(node, exp.ILike) else "~~")
        raise _undefined_operator(op, node.this, node.expression)


def _check_function(node: exp.Expr) -> None:
    """42883 for a text function over a non-text value, or a number function over a non-number."""
    args = [a for a in node.iter_expressions()]
    category = _category(node.this)
    wanted = "string" if isinstance(node, _TEXT_FUNCTIONS) else "number"
    if category is not None and category != wanted:
        name = (
            node.meta.get("loom_name")
            or (node.sql_name() if isinstance(node, exp.Func) else node.key).lower()
        )
        raise _undefined_function(name, args)


def _as_text(node: exp.Expr, true: str, false: str) -> exp.Expr:
    """A boolean value as PostgreSQL's text of it (NULL stays NULL)."""
    inner = node
    while isinstance(inner, exp.Paren):
        inner = inner.this
    predicate = isinstance(inner, (exp.Predicate, exp.Connector, exp.Not))
    if not predicate and certain_kind(node) != _T.BOOLEAN:
        return node
    whens = [
        exp.If(this=node.copy(), true=exp.Literal.string(true)),
        exp.If(this=exp.Not(this=exp.Paren(this=node.copy())), true=exp.Literal.string(false)),
    ]
    return exp.Paren(this=exp.Case(ifs=whens))


def check_types(tree: exp.Expr) -> exp.Expr:
    """``tree`` with unknown literals read as the types they meet and booleans turned into
    text as PostgreSQL writes them, or the error PostgreSQL raises for an operator,
    function or aggregate over types it has none for."""
    node: exp.Expr
    for node in list(tree.find_all(*_NODES)):
        if isinstance(node, tuple(_ARITHMETIC)):
            _check_arithmetic(node, _ARITHMETIC[type(node)])
        elif isinstance(node, tuple(_COMPARISON_OPS)):
            _check_comparison(node, _COMPARISON_OPS[type(node)])
        elif isinstance(node, exp.Neg):
            if kind_of(node.this) in _NO_ARITHMETIC and not is_unknown_literal(node.this):
                raise _undefined_operator("-", None, node.this)
        elif isinstance(node, (exp.Sum, exp.Avg)):
            _check_aggregate(node, "sum" if isinstance(node, exp.Sum) else "avg", _NO_SUM)
        elif isinstance(node, (exp.Max, exp.Min)):
            _check_aggregate(node, "max" if isinstance(node, exp.Max) else "min", _NO_MAX)
        elif isinstance(node, exp.Between):
            for arg in ("low", "high"):
                node.set(arg, coerce(node.args[arg], node.this))
        elif isinstance(node, exp.In):
            node.set("expressions", [coerce(item, node.this) for item in node.expressions])
        elif isinstance(node, (exp.Like, exp.ILike)):
            _check_like(node)
        elif isinstance(node, _TEXT_FUNCTIONS + _NUMBER_FUNCTIONS):
            _check_function(node)
        elif isinstance(node, _CONDITIONALS):
            coerce_branches(node)
        elif isinstance(node, (exp.And, exp.Or)):
            node.set("this", as_condition(node.this))
            node.set("expression", as_condition(node.expression))
        elif isinstance(node, (exp.Not, exp.Where)):
            node.set("this", as_condition(node.this))
        elif isinstance(node, exp.DPipe):
            if certain_kind(node.this) in BYTEA or certain_kind(node.expression) in BYTEA:
                raise errors.NotSupportedError("bytea || bytea is not supported by loomdb on SQLite")
            node.set("this", _as_text(node.this, "true", "false"))
            node.set("expression", _as_text(node.expression, "true", "false"))
        elif isinstance(node, (exp.Concat, exp.ConcatWs)):
            node.set("expressions", [_as_text(a, "t", "f") for a in node.expressions])
        elif isinstance(node, exp.Cast) and node.to.this in STRINGS:
            node.set("this", _as_text(node.this, "true", "false"))
    return tree
