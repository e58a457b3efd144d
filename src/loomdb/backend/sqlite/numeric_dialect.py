"""PostgreSQL's numeric type in the SQL the SQLite engine runs.

SQLite has no exact decimal type: a NUMERIC column holds decimal text (compared
as numbers by the ``loom_numeric`` collation), and SQLite's own arithmetic on it
is binary floating point. So every expression sqlglot typed numeric (a number
literal with a point or an exponent, numeric arithmetic, round/trunc/ceil/floor/
abs/sign/sqrt/greatest/least of numerics, sum and avg of integers and numerics,
casts to numeric) is written as a call of the exact functions of
:mod:`.numeric_ops` and :mod:`.numeric_functions`, which return numeric text
with PostgreSQL's scale. Where such a value leaves the numeric calls (a result
column, a comparison, ORDER BY, a CASE), it is written
``CAST(... AS TEXT) COLLATE loom_numeric``: text affinity and the numeric
collation make comparisons, sorting and DISTINCT numeric. Integer and float
arithmetic stays SQLite's own.

>>> from loomdb.sql.dialect import parse
>>> from loomdb.backend.sqlite.dialect import LoomSQLite
>>> from sqlglot.optimizer.annotate_types import annotate_types
>>> from loomdb.sql.dialect import LoomPostgres
>>> annotate_types(parse("SELECT 1.50 + 1 AS a"), dialect=LoomPostgres).sql(dialect=LoomSQLite)
"SELECT CAST(loom_num_add('1.50', 1) AS TEXT) COLLATE loom_numeric AS a"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp
from sqlglot.generators.sqlite import SQLiteGenerator

from ...errors import NotSupportedError
from ...sql.tree import numeric_literal_text, set_operation_branches
from ...types import numeric_text
from .functions import NUMERIC_COLLATION
from .numeric_ops import to_decimal

_T = exp.DataType.Type
_Transform = Callable[..., str]

#: The numeric operators and functions written as calls of :mod:`.numeric_ops`.
_CALLS: dict[type[exp.Expr], str] = {
    exp.Add: "loom_num_add",
    exp.Sub: "loom_num_sub",
    exp.Mul: "loom_num_mul",
    exp.Div: "loom_num_div",
    exp.Mod: "loom_num_mod",
    exp.IntDiv: "loom_num_div_trunc",
    exp.Pow: "loom_num_pow",
    exp.Neg: "loom_num_neg",
    exp.Abs: "loom_num_abs",
    exp.Ceil: "loom_num_ceil",
    exp.Floor: "loom_num_floor",
    exp.Sign: "loom_num_sign",
    exp.Sqrt: "loom_num_sqrt",
    exp.Round: "loom_num_round",
    exp.Trunc: "loom_num_trunc",
    exp.Greatest: "loom_num_greatest",
    exp.Least: "loom_num_least",
    exp.Ln: "loom_num_ln",
    exp.Exp: "loom_num_exp",
    exp.Log: "loom_num_log",
}
#: Calls whose value is one of their arguments: numeric when their type is.
_PASSING = (exp.Coalesce, exp.Nullif, exp.Case)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_TEXT_TYPES = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR}


def is_numeric(node: exp.Expr | None) -> bool:
    """Whether sqlglot typed ``node`` numeric (DECIMAL)."""
    return isinstance(node, exp.Expression) and node.type is not None and node.type.this == _T.DECIMAL


def _outer(node: exp.Expr) -> tuple[exp.Expr, exp.Expr | None]:
    """``node`` with the parentheses around it, and what holds them."""
    while isinstance(node.parent, exp.Paren):
        node = node.parent
    return node, node.parent


def _is_call(node: exp.Expr | None) -> bool:
    """Whether ``node`` is written as a numeric call (its arguments need no wrapping)."""
    if isinstance(node, tuple(_CALLS)):
        return is_numeric(node)
    if isinstance(node, (exp.Sum, exp.Avg)):
        return exact_aggregate(node)
    if isinstance(node, exp.Cast):
        return node.to.this == _T.DECIMAL
    return False


def exact_aggregate(node: exp.Expr) -> bool:
    """Whether ``node`` (sum or avg) is computed by loomdb's exact aggregate."""
    return is_numeric(node)


def wrap_numeric(self: SQLiteGenerator, node: exp.Expr, sql: str) -> str:
    """A numeric value ``sql`` as text compared as a number, unless it only feeds a numeric call."""
    _, parent = _outer(node)
    if _is_call(parent):
        return sql
    if isinstance(parent, (exp.Window, exp.Filter)):
        parent.meta[NUMERIC_TEXT] = True  # the window or FILTER clause is wrapped instead
        return sql
    return f"CAST({sql} AS TEXT) COLLATE {NUMERIC_COLLATION}"


def _plain(text: str) -> str:
    """A numeric literal as numeric text (``1e3`` as ``'1000'``), quoted."""
    dec = to_decimal(text)
    assert dec is not None
    return "'" + numeric_text(dec) + "'"


def _literal_sql(self: SQLiteGenerator, node: exp.Expr, text: str) -> str | None:
    """The numeric literal ``node`` (of ``text``) where it stands; None: as SQLite writes it."""
    top, parent = _outer(node)
    if _is_call(parent):
        return _plain(text)
    if isinstance(parent, (*_COMPARISONS, exp.Between, exp.In)):
        others = [o for o in parent.iter_expressions() if o is not top]
        if isinstance(parent, exp.In):
            others = [parent.this] if top is not parent.this else []
        if any(is_numeric(o) and numeric_literal_text(o) is None for o in others):
            return _plain(text)
        return None
    if isinstance(parent, exp.Cast):
        return _plain(text) if parent.to.this in _TEXT_TYPES else None
    if isinstance(parent, exp.If) and is_numeric(parent.parent) and top is parent.args.get("true"):
        return _plain(text)
    if isinstance(parent, _PASSING) and is_numeric(parent):
        return _plain(text)
    if isinstance(parent, (exp.Alias, exp.Select, exp.Ordered, exp.DPipe)) or (
        isinstance(parent, exp.Tuple) and isinstance(parent.parent, exp.Values)
    ):
        return f"CAST({_plain(text)} AS TEXT) COLLATE {NUMERIC_COLLATION}"
    return None


def numeric_literal(self: SQLiteGenerator, e: exp.Literal) -> str:
    """A number literal with a point or exponent (numeric in PostgreSQL) as its
    exact text where its value is used as a numeric; else as SQLite writes it."""
    if e.is_number and is_numeric(e):
        sql = _literal_sql(self, e, str(e.this))
        if sql is not None:
            return sql
    return self.literal_sql(e)


def _operand(self: SQLiteGenerator, node: exp.Expr) -> str:
    """An argument of a numeric call: a literal as its exact text."""
    text = numeric_literal_text(node)
    if text is not None and is_numeric(node):
        return _plain(text)
    return self.sql(node)


def numeric_call(self: SQLiteGenerator, e: exp.Expr) -> str | None:
    """A numeric-typed operator or function as its exact call (wrapped where its
    value leaves numeric calls); None when ``e`` is not numeric."""
    if not is_numeric(e):
        return None
    name = _CALLS.get(type(e))
    if name is None:
        return None
    if isinstance(e, exp.Neg):
        text = numeric_literal_text(e)
        if text is not None:
            sql = _literal_sql(self, e, text)
            return sql if sql is not None else f"({text})"
        args = [e.this]
    elif isinstance(e, (exp.Greatest, exp.Least)):
        args = [e.this, *e.expressions]
    elif isinstance(e, exp.Log):
        base = e.this if e.args.get("expression") is not None else exp.Literal.number(10)
        args = [base, e.args.get("expression") or e.this]
    elif isinstance(e, (exp.Round, exp.Trunc)):
        args = [e.this] + ([e.args["decimals"]] if e.args.get("decimals") is not None else [])
    elif isinstance(e, exp.Binary):
        args = [e.this, e.expression]
    else:
        if isinstance(e, (exp.Ceil, exp.Floor)) and e.args.get("decimals") is not None:
            return None
        args = [e.this]
    sql = f"{name}({', '.join(_operand(self, a) for a in args)})"
    return wrap_numeric(self, e, sql)


def numeric_or(fallback: _Transform) -> _Transform:
    """A transform writing ``e`` as a numeric call when it is numeric, else by ``fallback``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The numeric call or the fallback's SQL."""
        sql = numeric_call(self, e)
        return fallback(self, e) if sql is None else sql

    return generate


def _passing(fallback: _Transform) -> _Transform:
    """COALESCE, NULLIF and CASE: typed numeric, their value compared as a number."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """SQLite's SQL, wrapped when numeric."""
        sql = fallback(self, e)
        return wrap_numeric(self, e, sql) if is_numeric(e) else sql

    return generate


#: The meta key marking a window or FILTER clause whose value is numeric text.
NUMERIC_TEXT = "loom_numeric_text"


def numeric_clause(fallback: _Transform) -> _Transform:
    """A window or FILTER clause (written by ``fallback``), wrapped as
    :func:`wrap_numeric` does when the aggregate in it is numeric text."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The clause's SQL, wrapped when its aggregate asked for it."""
        sql = fallback(self, e)
        return wrap_numeric(self, e, sql) if e.meta.get(NUMERIC_TEXT) else sql

    return generate


_INTEGERS = {_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT}


def numeric_set_operations(tree: exp.Expr) -> exp.Expr:
    """``tree`` with each integer result column of a set operation's branch cast to
    numeric where another branch's is numeric, as PostgreSQL resolves the column:
    SQLite then compares the branches' values as numbers (ORDER BY, UNION's
    duplicates: ``SELECT 1 UNION SELECT 1.0`` is one row)."""
    for setop in list(tree.find_all(exp.SetOperation)):
        if isinstance(setop.parent, exp.SetOperation):
            continue  # its branches are the outer operation's
        branches = set_operation_branches(setop)
        width = min((len(b.selects) for b in branches), default=0)
        for i in range(width):
            columns = [b.selects[i] for b in branches]
            kinds = {c.type.this if c.type else None for c in columns}
            if _T.DECIMAL not in kinds or not kinds <= {_T.DECIMAL} | _INTEGERS:
                continue
            if kinds & _INTEGERS and setop.args.get("distinct"):
                # 1 and 1.0 are one row: which one PostgreSQL keeps depends on its plan
                # (the first seen when it hashes), and SQLite keeps the last.
                word = type(setop).__name__.upper()
                raise NotSupportedError(
                    f"{word} of integer and numeric columns is not supported by loomdb on SQLite"
                    f" (equal values such as 1 and 1.0 may come back in the other form); use {word} ALL"
                )
            for column in columns:
                target = column.this if isinstance(column, exp.Alias) else column
                if not is_numeric(target):
                    numeric = exp.DataType.build("DECIMAL")
                    cast = exp.Cast(this=target.copy(), to=numeric)
                    cast.type = numeric.copy()
                    target.replace(cast)
    return tree


def json_number(node: exp.Expr) -> exp.Expr:
    """An argument of a JSON builder: a numeric (numeric text on SQLite) as a JSON
    number, as PostgreSQL's jsonb_build_object writes it; others as they are."""
    if isinstance(node, exp.Order):  # jsonb_agg(x ORDER BY y)
        ordered = node.copy()
        ordered.set("this", json_number(node.this.copy()))
        return ordered
    if is_numeric(node) and numeric_literal_text(node) is None:
        return exp.Anonymous(this="json", expressions=[node])
    return node


#: stddev/variance & co. over integers and numerics: loomdb's exact aggregates.
_VARIANCES: dict[type[exp.Expr], str] = {
    exp.Stddev: "loom_numeric_stddev_samp",
    exp.StddevSamp: "loom_numeric_stddev_samp",
    exp.StddevPop: "loom_numeric_stddev_pop",
    exp.Variance: "loom_numeric_var_samp",
    exp.VariancePop: "loom_numeric_var_pop",
}


def _variance(fallback: _Transform) -> _Transform:
    """stddev, variance & co. as loomdb's exact aggregate when numeric (over integers
    and numerics), else by ``fallback`` (the float8 rule of the text dialect)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The exact aggregate, or the float one."""
        if not is_numeric(e):
            return fallback(self, e)
        return wrap_numeric(self, e, self.func(_VARIANCES[type(e)], e.this))

    return generate


#: Numeric values SQLite hands on as bare text (no affinity, binary collation): an
#: aggregate or window function of a numeric column, a scalar subquery.
_BARE = (exp.Max, exp.Min, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue, exp.AnyValue)
_VALUE_PLACES = (*_COMPARISONS, exp.Between, exp.Ordered, exp.Alias)


def _compared(fallback: _Transform) -> _Transform:
    """A numeric max/min/lag/... or scalar subquery, compared as a number where its
    value is compared, sorted or returned (``max(budget) > 100``)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """SQLite's SQL, wrapped when numeric and used as a value."""
        sql = fallback(self, e)
        if not is_numeric(e):
            return sql
        top, parent = _outer(e)
        if isinstance(e, exp.Subquery) and not (
            isinstance(parent, _VALUE_PLACES)
            or (isinstance(parent, exp.In) and top is not parent.args.get("query"))
        ):
            return sql  # a table in FROM, or IN's subquery
        return wrap_numeric(self, e, sql)

    return generate


def _number_to_char(fallback: _Transform) -> _Transform:
    """to_char: refused for a number (SQLite's strftime would format it as a time)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The time formatting, or NotSupportedError for a number."""
        value = e.this
        if isinstance(value, exp.Expression) and value.type is not None and value.type.this in _NUMBER_TYPES:
            raise NotSupportedError("to_char() of a number is not supported by loomdb on SQLite")
        return fallback(self, e)

    return generate


_NUMBER_TYPES = {*_INTEGERS, _T.DECIMAL, _T.FLOAT, _T.DOUBLE}


def _scale_call(name: str, numeric: bool) -> _Transform:
    """scale(), min_scale() (integers) and trim_scale() (a numeric, compared as a number)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(x)``."""
        args = e.expressions if isinstance(e, exp.Anonymous) else [e.this]
        sql = f"{name}({', '.join(_operand(self, a) for a in args)})"
        if not numeric:
            return sql
        _, parent = _outer(e)
        return sql if _is_call(parent) else f"CAST({sql} AS TEXT) COLLATE {NUMERIC_COLLATION}"

    return generate


#: PostgreSQL's numeric functions sqlglot does not know (anonymous calls), by upper-case name.
NUMERIC_CALLS: dict[str, _Transform] = {
    "SCALE": _scale_call("loom_num_scale", numeric=False),
    "MIN_SCALE": _scale_call("loom_num_min_scale", numeric=False),
    "TRIM_SCALE": _scale_call("loom_num_trim_scale", numeric=True),
}


def _default(node: type[exp.Expr]) -> _Transform:
    """How SQLite's generator writes ``node`` without loomdb's numeric rules."""
    transform = SQLiteGenerator.TRANSFORMS.get(node)
    if transform is not None:
        return transform
    method = f"{node.key}_sql"
    if hasattr(SQLiteGenerator, method):
        return lambda self, e: getattr(self, method)(e)
    return lambda self, e: self.function_fallback_sql(e)


#: The transforms the SQLite generator takes over for numerics; the generator's
#: own rules for ``/``, ``%`` and ``-`` are wrapped with :func:`numeric_or`.
def numeric_transforms(base: Mapping[type[exp.Expr], _Transform]) -> dict[type[exp.Expr], _Transform]:
    """The SQLite generator's transforms for numerics, each falling back, for what is
    not numeric, on ``base``'s rule for the node (the generator's other transforms)
    or sqlglot's own."""

    def fallback(node: type[exp.Expr]) -> _Transform:
        return base.get(node) or _default(node)

    return {
        exp.Literal: numeric_literal,
        **{node: numeric_or(fallback(node)) for node in _CALLS},
        **{node: _passing(fallback(node)) for node in _PASSING},
        **{node: _variance(fallback(node)) for node in _VARIANCES},
        exp.TimeToStr: _number_to_char(fallback(exp.TimeToStr)),
        **{node: _compared(fallback(node)) for node in (*_BARE, exp.Subquery)},
        exp.Window: numeric_clause(fallback(exp.Window)),
        exp.Filter: numeric_clause(fallback(exp.Filter)),
    }
