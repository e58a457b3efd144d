"""PostgreSQL's time semantics in the SQLite dialect: time literals compared with
timestamps and dates in their stored form, the casts to and from the time types,
``date +/- integer``, ``date - date``, ``timestamp - timestamp`` and ``AT TIME ZONE``
(see :mod:`.time_functions` for the functions they call).

>>> from loomdb.sql.dialect import parse
>>> from .dialect import LoomSQLite
>>> parse("SELECT CAST('2024-03-01 12:00+02' AS TIMESTAMP)").sql(dialect=LoomSQLite)
"SELECT loom_timestamp('2024-03-01 12:00+02')"
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.generators.sqlite import SQLiteGenerator

from ... import errors
from ...errors import NotSupportedError
from ...sql.dialect import WRITTEN_NAME
from ...sql.rules.time_types import STAMPS, kind_of
from ...types import ColumnType, to_storage
from .numeric_dialect import wrap_numeric
from .time_functions import zone_exists

_T = exp.DataType.Type
_ZONED = {_T.TIMESTAMPTZ, _T.TIMESTAMPLTZ}
_INTEGERS = {_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT}
_TEXT_TYPES = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
#: Inputs whose value is the statement's time: cast at run time, never folded into a plan.
_RELATIVE = ("now", "today", "yesterday", "tomorrow")

#: The loomdb function of each cast to a time type.
TIME_CASTS = {
    _T.TIMESTAMP: "loom_timestamp",
    _T.DATETIME: "loom_timestamp",
    _T.TIMESTAMPTZ: "loom_timestamptz",
    _T.TIMESTAMPLTZ: "loom_timestamptz",
    _T.DATE: "loom_date",
}


def _type_name(kind: object) -> str | None:
    """The loomdb time type of sqlglot type ``kind`` (None: no time type)."""
    if kind in _ZONED:
        return "TIMESTAMPTZ"
    if kind in STAMPS:
        return "TIMESTAMP"
    return "DATE" if kind == _T.DATE else None


def _stored_literal(literal: exp.Expr, like: exp.Expr) -> exp.Expr:
    """A string ``literal`` compared with the timestamp or date ``like``, as the
    text the engine stores for that type (compared as text, a literal in
    another spelling would order wrongly); a relative input ('today') as a
    cast evaluated at run time; anything else as it is."""
    type_name = _type_name(kind_of(like))
    if type_name is None or not (isinstance(literal, exp.Literal) and literal.is_string):
        return literal
    if literal.this.strip().lower() in _RELATIVE:
        return exp.Cast(this=literal.copy(), to=exp.DataType.build(type_name))
    return exp.Literal.string(to_storage(literal.this, ColumnType.parse(type_name), "literal"))


def _as_stamp(node: exp.Expr, other: exp.Expr) -> exp.Expr:
    """A DATE operand compared with a timestamp as that timestamp's midnight
    (PostgreSQL promotes the date), so the texts compare as the values."""
    if kind_of(node) == _T.DATE and kind_of(other) in STAMPS and not isinstance(node, exp.Literal):
        midnight = exp.DPipe(
            this=exp.Paren(this=node.copy()), expression=exp.Literal.string(" 00:00:00.000000+00:00")
        )
        return exp.Paren(this=midnight)
    return node


#: PostgreSQL's functions that turn their arguments into JSON (lower case).
_JSON_BUILDERS = frozenset(
    {"jsonb_build_object", "json_build_object", "jsonb_build_array", "json_build_array", "jsonb_agg"}
)


def _stamp_as(node: exp.Expr, function: str) -> exp.Expr:
    """A timestamp-typed ``node`` as ``function(node, with_tz)`` (its text or JSON
    form); anything else as it is."""
    kind = kind_of(node)
    if kind not in STAMPS:
        return node
    zoned = exp.Literal.number(1 if kind in _ZONED else 0)
    call = exp.Anonymous(this=function, expressions=[node.copy(), zoned])
    call.type = exp.DataType.build("TEXT")
    return call


def _json_arguments(node: exp.Expr) -> None:
    """The timestamp arguments of a JSON-building call in PostgreSQL's JSON form
    ("2024-03-01T09:00:00+00:00"), an object's keys in their text form."""
    name = str(node.this).lower() if isinstance(node, exp.Anonymous) else ""
    if isinstance(node, exp.Anonymous) and name in _JSON_BUILDERS:
        keys = name.endswith("build_object")
        items: list[exp.Expr] = []
        for i, arg in enumerate(node.expressions):
            if isinstance(arg, exp.Order):
                arg.set("this", _stamp_as(arg.this, "loom_timestamp_json"))
                items.append(arg)
            else:
                items.append(
                    _stamp_as(arg, "loom_timestamp_text" if keys and i % 2 == 0 else "loom_timestamp_json")
                )
        node.set("expressions", items)
    elif isinstance(node, (exp.JSONArrayAgg, exp.JSONBObjectAgg, exp.JSONObjectAgg)):
        value = "expression" if node.args.get("expression") is not None else "this"
        target = node.args[value]
        if isinstance(target, exp.Order):
            target.set("this", _stamp_as(target.this, "loom_timestamp_json"))
        else:
            node.set(value, _stamp_as(target, "loom_timestamp_json"))
        if value == "expression":
            node.set("this", _stamp_as(node.this, "loom_timestamp_text"))


def time_rewrites(tree: exp.Expr) -> exp.Expr:
    """Time values written as PostgreSQL writes them where they become text or
    JSON (``||``, concat, concat_ws, format, the JSON builders), then
    :func:`time_literals`."""
    for node in list(tree.find_all(exp.Anonymous, exp.JSONArrayAgg, exp.JSONBObjectAgg, exp.JSONObjectAgg)):
        _json_arguments(node)
    for concat in list(tree.find_all(exp.DPipe)):
        concat.set("this", _stamp_as(concat.this, "loom_timestamp_text"))
        concat.set("expression", _stamp_as(concat.expression, "loom_timestamp_text"))
    for call in list(tree.find_all(exp.Concat, exp.ConcatWs, exp.Format)):  # their arguments' text output
        call.set("expressions", [_stamp_as(arg, "loom_timestamp_text") for arg in call.expressions])
    return time_literals(tree)


def time_literals(tree: exp.Expr) -> exp.Expr:
    """Every string literal compared with a timestamp or date (=, <>, <, <=, >,
    >=, BETWEEN, IN) replaced by its stored text; a date compared with a
    timestamp written as the timestamp of its midnight."""
    for node in list(tree.find_all(*_COMPARISONS, exp.Between, exp.In)):
        if isinstance(node, exp.Between):
            for arg in ("low", "high"):
                node.set(arg, _stored_literal(node.args[arg], node.this))
        elif isinstance(node, exp.In):
            node.set("expressions", [_stored_literal(item, node.this) for item in node.expressions])
        else:
            left, right = node.this, node.expression
            node.set("expression", _as_stamp(_stored_literal(right, left), left))
            node.set("this", _as_stamp(_stored_literal(left, right), right))
    return tree


def time_cast(self: SQLiteGenerator, e: exp.Cast) -> str | None:
    """A cast to a time type, or of a timestamp to text, as a loomdb function; None for others."""
    target = e.to.this
    if target in TIME_CASTS:
        return self.func(TIME_CASTS[target], e.this)
    if target in _TEXT_TYPES and kind_of(e.this) in STAMPS:
        text = _stamp_as(e.this, "loom_timestamp_text")
        # varchar(n) / char(n): PostgreSQL's text, then cut as that type cuts it
        return self.sql(exp.Cast(this=text, to=e.to.copy()) if e.to.expressions else text)
    return None


def _in_result_column(node: exp.Expr) -> bool:
    """Whether ``node`` is a result column of the outermost SELECT (under aliases and parentheses)."""
    child, parent = node, node.parent
    while isinstance(parent, (exp.Alias, exp.Paren)):
        child, parent = parent, parent.parent
    return (
        isinstance(parent, exp.Select)
        and parent.parent is None
        and any(child is p for p in parent.expressions)
    )


_TIMES = STAMPS | {_T.DATE}
#: PostgreSQL's names of the types an operator error names.
_PG_NAMES = {
    _T.TIMESTAMP: "timestamp without time zone",
    _T.DATETIME: "timestamp without time zone",
    _T.TIMESTAMPTZ: "timestamp with time zone",
    _T.TIMESTAMPLTZ: "timestamp with time zone",
    _T.DATE: "date",
    _T.SMALLINT: "smallint",
    _T.INT: "integer",
    _T.BIGINT: "bigint",
    _T.DECIMAL: "numeric",
    _T.FLOAT: "real",
    _T.DOUBLE: "double precision",
}


def _no_operator(op: str, left: object, right: object) -> errors.Error:
    """The error of ``left op right`` with a time operand that is no date arithmetic:
    PostgreSQL's 42883 when both types are known and PostgreSQL has no such
    operator (a timestamp plus a number, a date plus a date...), else
    NotSupportedError (an untyped operand may be an interval in PostgreSQL)."""
    if left in _PG_NAMES and right in _PG_NAMES:
        return errors.ProgrammingError(
            f"operator does not exist: {_PG_NAMES[left]} {op} {_PG_NAMES[right]}",
            sqlstate="42883",
        )
    return NotSupportedError(
        f"{_type_name(left) or 'value'} {op} {_type_name(right) or 'value'} is not supported by loomdb on SQLite"
    )


def time_minus(self: SQLiteGenerator, e: exp.Sub) -> str | None:
    """``date - date``, ``date - integer`` and ``timestamp - timestamp`` as PostgreSQL
    computes them; None when ``e`` is no time arithmetic."""
    left, right = kind_of(e.this), kind_of(e.expression)
    if left == _T.DATE and right == _T.DATE:
        return self.func("loom_date_diff", e.this, e.expression)
    if left == _T.DATE and right in _INTEGERS:
        return self.func("loom_date_add", e.this, exp.Neg(this=exp.Paren(this=e.expression.copy())))
    if left in STAMPS | {_T.DATE} and right in STAMPS | {_T.DATE}:
        if not _in_result_column(e):
            raise NotSupportedError(
                "timestamp - timestamp is supported by loomdb on SQLite only as a result column"
                " (its value is an interval, which SQLite cannot compute with)"
            )
        return self.func("loom_stamp_diff", e.this, e.expression)
    if left in _TIMES or right in _TIMES:
        raise _no_operator("-", left, right)
    return None


def time_plus(self: SQLiteGenerator, e: exp.Add) -> str:
    """``date + integer`` (either order) as a date; other sums as SQLite adds."""
    left, right = kind_of(e.this), kind_of(e.expression)
    if left == _T.DATE and right in _INTEGERS:
        return self.func("loom_date_add", e.this, e.expression)
    if right == _T.DATE and left in _INTEGERS:
        return self.func("loom_date_add", e.expression, e.this)
    if left in _TIMES or right in _TIMES:
        raise _no_operator("+", left, right)
    return self.binary(e, "+")


def at_time_zone(self: SQLiteGenerator, e: exp.AtTimeZone) -> str:
    """``AT TIME ZONE``: with 'UTC' the same stored text (under TimeZone UTC a
    timestamptz's UTC wall time is its instant); at a named zone ('Europe/Paris')
    a timestamptz is its wall time there, a timestamp the instant of
    that wall time there. Other forms are refused."""
    zone = e.args.get("zone")
    name = zone.this.strip() if isinstance(zone, exp.Literal) and zone.is_string else None
    if name is not None and name.upper() in ("UTC", "GMT", "ETC/UTC", "ZULU"):
        return self.sql(e.this)
    if name is not None and "/" in name and kind_of(e.this) in STAMPS and zone_exists(name):
        function = "loom_zone_wall_time" if kind_of(e.this) in _ZONED else "loom_zone_instant"
        return self.func(function, e.this, zone)
    raise NotSupportedError(
        "AT TIME ZONE is supported by loomdb on SQLite only for 'UTC' and for a named zone"
        " such as 'Europe/Paris' (not for POSIX offsets, abbreviations or a zone computed per row)"
    )


def _parts(self: SQLiteGenerator, name: str, e: exp.Expr, count: int, label: str) -> str:
    """``name(args)`` for a call that must have ``count`` arguments (else refused)."""
    args = [a for a in e.iter_expressions()]
    if len(args) != count:
        raise NotSupportedError(f"{label} with {len(args)} arguments is not supported by loomdb on SQLite")
    return self.func(name, *args)


#: PostgreSQL's time functions sqlglot parses as anonymous calls, by upper-case name.
TIME_CALLS = {"MAKE_DATE": lambda self, e: _parts(self, "loom_make_date", e, 3, "make_date()")}


def _date_trunc(self: SQLiteGenerator, e: exp.TimestampTrunc) -> str:
    """``date_trunc(unit, value)`` by :mod:`.time_fields` (in storage form)."""
    unit = e.args.get("unit")
    if not isinstance(unit, (exp.Var, exp.Literal)):
        raise NotSupportedError("date_trunc with a computed unit is not supported by loomdb on SQLite")
    return self.func("loom_date_trunc", exp.Literal.string(unit.name.lower()), e.this)


def _extract(self: SQLiteGenerator, e: exp.Extract) -> str:
    """``EXTRACT(field FROM value)`` (numeric text) or ``date_part`` (a float) of a timestamp."""
    field = e.this
    if not isinstance(field, (exp.Var, exp.Literal)):
        raise NotSupportedError("EXTRACT of a computed field is not supported by loomdb on SQLite")
    if kind_of(e.expression) not in STAMPS:
        raise NotSupportedError(
            "EXTRACT / date_part of a value other than a timestamp is not supported by loomdb on SQLite"
        )
    as_float = e.meta.get(WRITTEN_NAME) == "date_part"
    sql = self.func(
        "loom_extract",
        exp.Literal.string(field.name.lower()),
        e.expression,
        exp.Literal.number(int(as_float)),
    )
    return sql if as_float else wrap_numeric(self, e, sql)


TIME_TRANSFORMS: dict[type[exp.Expr], Callable[..., str]] = {
    exp.TimestampTrunc: _date_trunc,
    exp.Extract: _extract,
    exp.TimestampFromParts: lambda self, e: _parts(self, "loom_make_timestamp", e, 6, "make_timestamp()"),
    exp.UnixToTime: lambda self, e: _parts(self, "loom_to_timestamp", e, 1, "to_timestamp()"),
    exp.CurrentDate: lambda self, e: "substr(loom_now(), 1, 10)",
    exp.Localtimestamp: lambda self, e: "loom_now()",
    exp.Add: time_plus,
    exp.AtTimeZone: at_time_zone,
}
