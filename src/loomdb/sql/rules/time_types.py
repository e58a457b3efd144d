"""The types PostgreSQL gives time expressions where sqlglot's annotation differs:
``now()`` is a timestamptz, the difference of two timestamps an interval, of two
dates an integer, ``AT TIME ZONE`` flips between timestamp and timestamptz.
Result types decide how values are decoded (see ``type_outputs``), so these
make a ``now()`` aware, a ``localtimestamp`` naive and ``a - b`` a timedelta.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="a TIMESTAMPTZ, d DATE")
>>> tree = qualify_query(tree_of("SELECT now(), a - a, d - d, d - 1, a AT TIME ZONE 'UTC' FROM t"), ctx)
>>> [p.type.sql() for p in tree.selects]
['TIMESTAMPTZ', 'INTERVAL', 'INT', 'DATE', 'TIMESTAMP']
"""

from __future__ import annotations

from sqlglot import exp

from ..tree import kind_of

_T = exp.DataType.Type
STAMPS = {_T.TIMESTAMP, _T.TIMESTAMPTZ, _T.DATETIME, _T.TIMESTAMPLTZ}
_ZONED = {_T.TIMESTAMPTZ, _T.TIMESTAMPLTZ}


def retype_time(tree: exp.Expression) -> exp.Expression:
    """``tree`` with its time expressions typed as PostgreSQL types them (in place)."""
    # Children first, so an outer expression sees its operands' corrected types.
    for node in list(tree.walk(bfs=False))[::-1]:
        if isinstance(node, exp.SetOperation):
            _set_operation(node)
            continue
        new = _type_of(node)
        if new is not None:
            node.type = new
    return tree


def _type_unknown_operand(node: exp.Sub) -> None:
    """A string literal subtracted from or from a date or timestamp cast to that type:
    PostgreSQL takes an unknown operand as the other side's type when that type has
    the operator (``d - '2024-01-01'`` is date - date)."""
    for side, other in (("this", node.expression), ("expression", node.this)):
        literal = node.args[side]
        if isinstance(literal, exp.Literal) and literal.is_string and kind_of(other) in STAMPS | {_T.DATE}:
            assert isinstance(other, exp.Expression) and other.type is not None
            cast = exp.Cast(this=literal.copy(), to=other.type.copy())
            cast.type = other.type.copy()
            node.set(side, cast)


def _set_operation(node: exp.SetOperation) -> None:
    """A UNION / INTERSECT / EXCEPT column mixing time types takes the type PostgreSQL
    resolves: timestamptz when a branch has one, else timestamp over a date (the
    result columns' types are read off the first branch)."""
    left, right = node.left, node.right
    if not isinstance(left, exp.Query) or not isinstance(right, exp.Query):
        return
    for first, other in zip(left.selects, right.selects, strict=False):
        kinds = {kind_of(first), kind_of(other)}
        if len(kinds) < 2 or not kinds <= STAMPS | {_T.DATE, _T.NULL, _T.UNKNOWN, None}:
            continue
        if kinds & _ZONED:
            first.type = "TIMESTAMPTZ"
        elif kinds & STAMPS and _T.DATE in kinds:
            first.type = "TIMESTAMP"


def _type_of(node: exp.Expr) -> str | exp.DataType | None:
    if isinstance(node, (exp.Alias, exp.Paren)) and isinstance(node.this, exp.Expression) and node.this.type:
        return node.this.type  # as its operand, which may have been retyped
    if isinstance(node, exp.CurrentTimestamp) or (
        isinstance(node, exp.Anonymous)
        and str(node.this).lower() in ("transaction_timestamp", "statement_timestamp", "clock_timestamp")
    ):
        return "TIMESTAMPTZ"
    if isinstance(node, exp.UnixToTime):
        return "TIMESTAMPTZ"  # to_timestamp(double precision)
    if isinstance(node, (exp.Localtimestamp, exp.TimestampFromParts)):
        return "TIMESTAMP"
    if isinstance(node, exp.CurrentDate) or (
        isinstance(node, exp.Anonymous) and str(node.this).lower() == "make_date"
    ):
        return "DATE"
    if isinstance(node, exp.AtTimeZone):
        # a date is taken as a timestamptz (the preferred type it converts to)
        return "TIMESTAMP" if kind_of(node.this) in _ZONED | {_T.DATE} else "TIMESTAMPTZ"
    if isinstance(node, exp.Sub):
        _type_unknown_operand(node)
        left, right = kind_of(node.this), kind_of(node.expression)
        if left == _T.DATE and right == _T.DATE:
            return "INT"
        if left in STAMPS | {_T.DATE} and right in STAMPS | {_T.DATE}:
            return "INTERVAL"
    if isinstance(node, (exp.Min, exp.Max)) and kind_of(node.this) in STAMPS | {_T.DATE}:
        return node.this.type
    return None
