"""Query shapes PostgreSQL has and SQLite spells otherwise (or not at all),
rewritten on the compiled tree before the SQLite generator writes it.

* a scalar subquery raises PostgreSQL's 21000 on a second row (SQLite takes
  the first): ``(SELECT CASE WHEN count(*) > 1 THEN loom_cardinality_violation()
  ELSE max(v) END FROM (SELECT * FROM (<subquery>) LIMIT 2))``;
* ``x op ANY/ALL (subquery)`` as EXISTS tests with PostgreSQL's NULL logic;
  ``x op ANY(<array>)`` is refused as arrays are;
* LIMIT and OFFSET: negative raises 2201W / 2201X, NULL means none;
* set operations: parenthesised operands (with their ORDER BY / LIMIT) become
  subqueries, INTERSECT ALL / EXCEPT ALL count duplicates through
  ``row_number()``, and a string literal meeting a typed column is cast to
  that type as PostgreSQL resolves an unknown literal; other mixed types are
  refused;
* ``(VALUES ...) AS v(a, b)`` names SQLite's ``column1, column2``;
* ordered-set aggregates (``percentile_cont``, ``percentile_disc``, ``mode``
  ``WITHIN GROUP (ORDER BY x)``) as the aggregates of :mod:`.ordered_set_functions`.

>>> from loomdb.sql.dialect import parse
>>> from loomdb.backend.sqlite.dialect import LoomSQLite
>>> parse("SELECT n FROM (VALUES (1), (2)) AS v(n) LIMIT $1").sql(dialect=LoomSQLite)
'SELECT n FROM (SELECT column1 AS n FROM (VALUES (1), (2))) AS v LIMIT loom_limit(?1)'
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from ... import errors
from ...errors import NotSupportedError
from ...sql.rules.resolve_set_types import CATEGORIES, family
from ...sql.tree import numeric_literal_text

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
#: Where a subquery is not a scalar subquery (a table, a set, a test).
_NOT_SCALAR = (
    exp.From,
    exp.Join,
    exp.In,
    exp.Any,
    exp.All,
    exp.SetOperation,
    exp.Exists,
    exp.Lateral,
    exp.CTE,
)
_VALUE = "_loom_v"


def rewrite_queries(tree: exp.Expr) -> exp.Expr:
    """``tree`` with the rewrites of the module docstring (in place), or
    NotSupportedError / DataError where PostgreSQL's meaning is out of reach
    or PostgreSQL raises."""
    # A parenthesised query standing alone (INSERT INTO t (SELECT ...)): SQLite
    # takes no parentheses there.
    while isinstance(tree, exp.Subquery) and not tree.alias and isinstance(tree.this, exp.Query):
        if any(tree.args.get(k) for k in ("order", "limit", "offset")):
            break
        tree = tree.this
        tree.parent = None
    for node in list(tree.find_all(exp.WithinGroup)):
        replaced = _ordered_set(node)
        if node is tree:
            tree = replaced
    for limit in list(tree.find_all(exp.Limit)):
        _check_bound(limit, "LIMIT", "2201W", "loom_limit")
    for offset in list(tree.find_all(exp.Offset)):
        _check_bound(offset, "OFFSET", "2201X", "loom_offset")
    for values in list(tree.find_all(exp.Values)):
        replaced = _name_values(values)
        if values is tree:
            tree = replaced
    # Deepest first: an inner set operation is rewritten before the one holding it.
    for setop in reversed(list(tree.find_all(exp.SetOperation))):
        replaced = _set_operation(setop)
        if setop is tree:
            tree = replaced
    for quantified in list(tree.find_all(exp.Any, exp.All)):
        if isinstance(quantified, (exp.Any, exp.All)):
            _quantified(quantified)
    for sub in list(tree.find_all(exp.Subquery)):
        # A parenthesised query standing alone (INSERT INTO t (SELECT ...)) is no scalar.
        scalar = sub.parent is not None and not isinstance(sub.parent, _NOT_SCALAR)
        if scalar and isinstance(sub.this, (exp.Query, exp.Values)):
            _single_row(sub)
    return tree


# -- ordered-set aggregates ---------------------------------------------------------------

_ORDERED_SET = {
    exp.PercentileCont: "percentile_cont",
    exp.PercentileDisc: "percentile_disc",
    exp.Mode: "mode",
}
# How each sort key's type is handed to the aggregate ('n': NUMERIC text), by family.
_ORDERED_SET_KINDS = {"integer": "i", "double precision": "f", "numeric": "n", "text": "t"}


def _ordered_set(node: exp.WithinGroup) -> exp.Expr:
    """``f(...) WITHIN GROUP (ORDER BY x)`` as loomdb's aggregate ``loom_f``
    (NotSupportedError for another aggregate, or a key it cannot sort as
    PostgreSQL does)."""
    name = _ORDERED_SET.get(type(node.this))
    order = node.expression
    keys = order.expressions if isinstance(order, exp.Order) else []
    if name is None or len(keys) != 1:
        shown = node.this.sql_name().lower() if isinstance(node.this, exp.Func) else "this aggregate"
        raise NotSupportedError(f"{shown}() WITHIN GROUP is not supported by loomdb on SQLite")
    key = keys[0]
    value = key.this
    kind = _ORDERED_SET_KINDS.get(family(value) or "")
    # mode()'s result type is not known to loomdb: only where storage is the value.
    if kind is None or (name == "percentile_cont" and kind == "t") or (name == "mode" and kind == "n"):
        shown = family(value) or "unknown"
        raise NotSupportedError(f"{name}() WITHIN GROUP over {shown} is not supported by loomdb on SQLite")
    descending = exp.Literal.number(1 if key.args.get("desc") else 0)
    args: list[exp.Expr] = [value.copy()]
    if name != "mode":
        args.append(node.this.this.copy())
    args.append(descending)
    if name != "percentile_cont":
        args.append(exp.Literal.string(kind))
    call = exp.Anonymous(this=f"loom_{name}", expressions=args)
    node.replace(call)
    return call


# -- LIMIT / OFFSET ------------------------------------------------------------------------


def _literal_number(node: Any) -> float | None:
    """The value of a number literal (under parentheses and signs), else None."""
    text = numeric_literal_text(node)
    return None if text is None else float(text)


def _check_bound(node: exp.Limit | exp.Offset, word: str, sqlstate: str, function: str) -> None:
    """A negative constant LIMIT/OFFSET raises as PostgreSQL does; NULL means
    none; any other expression is checked when it runs by ``function``."""
    value = node.expression
    if value is None or (isinstance(node, exp.Limit) and node.is_limit_all):
        return
    number = _literal_number(value)
    if number is not None:
        if number < 0:
            raise errors.DataError(f"{word} must not be negative", sqlstate=sqlstate)
        return
    if isinstance(value, exp.Null):
        node.set("expression", exp.Literal.number(-1 if word == "LIMIT" else 0))
        return
    if isinstance(value, exp.Literal) and value.is_string:  # an unknown literal, read as bigint
        text = value.this.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise errors.DataError(f'invalid input syntax for type bigint: "{value.this}"', sqlstate="22P02")
        value = exp.Literal.number(int(text))
        node.set("expression", value)
        if int(text) < 0:
            raise errors.DataError(f"{word} must not be negative", sqlstate=sqlstate)
        return
    node.set("expression", exp.Anonymous(this=function, expressions=[value]))


# -- VALUES --------------------------------------------------------------------------------


def _name_values(values: exp.Values) -> exp.Expr:
    """``(VALUES ...) AS v(a, b)`` as ``(SELECT column1 AS a, column2 AS b FROM
    (VALUES ...)) AS v``; ``VALUES ... ORDER BY / LIMIT`` (which SQLite rejects)
    as ``SELECT * FROM (VALUES ...) ORDER BY / LIMIT``. Returns what stands in
    ``values``' place."""
    alias = values.args.get("alias")
    columns = alias.columns if alias is not None else []
    modifiers: dict[str, exp.Expr] = {
        key: values.args[key] for key in ("order", "limit", "offset") if values.args.get(key)
    }
    if modifiers and alias is None:
        rows = values.copy()
        for key in modifiers:
            rows.set(key, None)
        select = exp.select("*").from_(exp.Subquery(this=rows))
        for key, value in modifiers.items():
            select.set(key, value.copy())
        values.replace(select)
        return select
    if alias is None or not columns:
        return values
    rows = values.copy()
    rows.set("alias", None)
    first = values.expressions[0].expressions if values.expressions else []
    # Columns the alias does not name keep PostgreSQL's names (column2, ...).
    names = [name.copy() for name in columns] + [
        exp.to_identifier(f"column{i}") for i in range(len(columns) + 1, len(first) + 1)
    ]
    select = exp.select(
        *(exp.alias_(exp.column(f"column{i}"), name) for i, name in enumerate(names, start=1))
    ).from_(exp.Subquery(this=rows))
    named = exp.Subquery(this=select, alias=exp.TableAlias(this=alias.this.copy()))
    values.replace(named)
    return named


# -- set operations ------------------------------------------------------------------------


def _set_operation(setop: exp.SetOperation) -> exp.Expr:
    """Operands SQLite accepts, PostgreSQL's type resolution, and the ALL forms
    of INTERSECT and EXCEPT; returns what stands in ``setop``'s place."""
    for key in ("this", "expression"):
        operand = setop.args.get(key)
        if isinstance(operand, exp.Subquery):
            setop.set(key, exp.select("*").from_(operand))
    _resolve_types(setop)
    if setop.args.get("distinct") is False and isinstance(setop, (exp.Intersect, exp.Except)):
        return _counted(setop)
    return setop


def _first_select(query: exp.Expr) -> exp.Select | None:
    """The leftmost SELECT of a query (a set operation's names its columns)."""
    while isinstance(query, (exp.SetOperation, exp.Subquery)):
        query = query.this
    if isinstance(query, exp.Select) and query.args.get("from_") is not None:
        source = query.args["from_"].this
        if query.is_star and isinstance(source, exp.Subquery):
            return _first_select(source.this)
    return query if isinstance(query, exp.Select) else None


def _unwrap(node: exp.Expr) -> exp.Expr:
    return node.this if isinstance(node, exp.Alias) else node


#: Families whose values SQLite stores alike: timestamp (its UTC wall time) and
#: timestamptz resolve to timestamptz with no conversion under TimeZone UTC.
_SAME_STORAGE = {"timestamp", "timestamp with time zone"}


def _resolve_types(setop: exp.SetOperation) -> None:
    """Give both branches' columns one type as PostgreSQL does: a string
    literal takes the other side's type (so ``1 UNION 'a'`` raises 22P02);
    differing families are refused."""
    left, right = _first_select(setop.this), _first_select(setop.expression)
    if left is None or right is None or len(left.expressions) != len(right.expressions):
        return
    for a, b in zip(left.expressions, right.expressions, strict=True):
        x, y = _unwrap(a), _unwrap(b)
        fx, fy = family(x), family(y)
        if fx == fy or fx is None or fy is None or {fx, fy} == _SAME_STORAGE:
            continue
        for literal, other, kind in ((x, y, fx), (y, x, fy)):
            if isinstance(literal, exp.Literal) and literal.is_string and kind == "text" and other.type:
                literal.replace(exp.Cast(this=literal.copy(), to=other.type.copy()))
                break
        else:
            word = type(setop).__name__.upper()
            if CATEGORIES.get(fx, fx) != CATEGORIES.get(fy, fy):
                raise errors.ProgrammingError(
                    f"{word} types {fx} and {fy} cannot be matched", sqlstate="42804"
                )
            raise NotSupportedError(
                f"{word} of {fx} and {fy} columns is not supported by loomdb on SQLite"
                " (PostgreSQL would resolve them to one type; cast one side)"
            )


def _counted(setop: exp.SetOperation) -> exp.Select:
    """INTERSECT ALL / EXCEPT ALL as the plain operation over rows numbered
    within their duplicates (the n-th copy of a row meets the n-th copy)."""
    left = _first_select(setop.this)
    if left is None or not all(left.named_selects):
        word = type(setop).__name__.upper()
        raise NotSupportedError(f"{word} ALL over these operands is not supported by loomdb on SQLite")
    names = left.named_selects
    right = _first_select(setop.expression)
    right_names = right.named_selects if right is not None else []
    if len(right_names) != len(names) or not all(right_names):
        word = type(setop).__name__.upper()
        raise NotSupportedError(f"{word} ALL over these operands is not supported by loomdb on SQLite")

    def numbered(query: exp.Expr, columns: list[str]) -> exp.Select:
        number = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column(c, quoted=True) for c in columns],
        )
        return exp.select(
            *(exp.column(c, quoted=True) for c in columns), exp.alias_(number, "_loom_n")
        ).from_(exp.Subquery(this=query))

    plain = type(setop)(
        this=numbered(setop.this.copy(), names),
        expression=numbered(setop.expression.copy(), right_names),
        distinct=True,
    )
    outer = exp.select(*(exp.column(c, quoted=True) for c in names)).from_(exp.Subquery(this=plain))
    for key in ("order", "limit", "offset"):
        if value := setop.args.get(key):
            outer.set(key, value.copy())
    setop.replace(outer)
    return outer


# -- subqueries ----------------------------------------------------------------------------


def _value_name(query: exp.Query | exp.Values) -> str:
    """The name of ``query``'s single result column, aliasing it when it has none."""
    if isinstance(query, exp.Values) and query.expressions and len(query.expressions[0].expressions) == 1:
        return "column1"  # SQLite's name for a VALUES list's column
    select = _first_select(query)
    if select is None or len(select.expressions) != 1:
        raise NotSupportedError("this subquery shape is not supported by loomdb on SQLite")
    item = select.expressions[0]
    name = item.alias if isinstance(item, exp.Alias) else item.name if isinstance(item, exp.Column) else ""
    if not name:
        select.set("expressions", [exp.alias_(select.expressions[0], _VALUE)])
        name = _VALUE
    return name


def _at_most_one_row(query: exp.Expr) -> bool:
    """Whether ``query`` cannot return a second row: a SELECT without FROM, an
    aggregate without GROUP BY, or one with LIMIT 0 or 1."""
    if not isinstance(query, exp.Select):
        return False
    limit = query.args.get("limit")
    if isinstance(limit, exp.Limit) and not limit.is_limit_all:
        count = _literal_number(limit.expression)
        if count is not None and count <= 1:
            return True
    if query.args.get("from_") is None:
        return True
    if query.args.get("group") is not None:
        return False
    return any(_aggregates(p) for p in query.expressions)


def _aggregates(node: exp.Expr) -> bool:
    """Whether ``node`` calls an aggregate over its query's rows (not a window's)."""
    if isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window):
        return True
    if isinstance(node, (exp.Window, exp.Query, exp.Subquery)):
        return False
    return any(_aggregates(c) for c in node.iter_expressions())


def _single_row(sub: exp.Subquery) -> None:
    """A scalar subquery that raises 21000 on a second row, as PostgreSQL does
    (left as it is when it cannot return one: SQLite plans it as before)."""
    query = sub.this
    if _at_most_one_row(query):
        return
    name = _value_name(query)
    two = exp.select("*").from_(exp.Subquery(this=query.copy())).limit(2)
    value = exp.Case(
        ifs=[
            exp.If(
                this=exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)),
                true=exp.Anonymous(this="loom_cardinality_violation", expressions=[]),
            )
        ],
        default=exp.Max(this=exp.column(name, quoted=True)),
    )
    sub.set("this", exp.select(value).from_(exp.Subquery(this=two)))


def _quantified(node: exp.Any | exp.All) -> None:
    """``x op ANY/ALL (subquery)`` with PostgreSQL's NULL logic: ANY is true
    when some comparison is true, else NULL when some is NULL, else false; ALL
    is false when some comparison is false, else NULL when some is NULL, else
    true (an empty subquery: ANY false, ALL true)."""
    word = "ANY" if isinstance(node, exp.Any) else "ALL"
    query = node.this.this if isinstance(node.this, (exp.Subquery, exp.Paren)) else node.this
    if not isinstance(query, (exp.Query, exp.Values)):
        raise NotSupportedError(f"{word} (array) is not supported by loomdb (ARRAY values: use JSONB)")
    compare = node.parent
    if not isinstance(compare, _COMPARISONS) or compare.expression is not node:
        raise NotSupportedError(f"this use of {word} (subquery) is not supported by loomdb on SQLite")
    name = _value_name(query)
    column = exp.column(name, table="_loom_s", quoted=True)
    test = type(compare)(this=exp.Paren(this=compare.this.copy()), expression=column)

    def some(condition: exp.Expr) -> exp.Exists:
        source = exp.Subquery(this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier("_loom_s")))
        return exp.Exists(this=exp.select(exp.Literal.number(1)).from_(source).where(condition))

    decisive = test.copy() if word == "ANY" else exp.Not(this=exp.Paren(this=test.copy()))
    unknown = exp.Is(this=exp.Paren(this=test.copy()), expression=exp.Null())
    case = exp.Case(
        ifs=[
            exp.If(this=some(decisive), true=exp.Boolean(this=word == "ANY")),
            exp.If(this=some(unknown), true=exp.Null()),
        ],
        default=exp.Boolean(this=word == "ALL"),
    )
    compare.replace(exp.Paren(this=case))
