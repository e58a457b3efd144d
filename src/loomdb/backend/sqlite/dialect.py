"""The SQL the SQLite engine runs: loomdb's PostgreSQL, written for SQLite.

pgvector's operators become sqlite-vec's distance functions (NULL-safe, as
in PostgreSQL); JSONB containment, NOW(), casts to types SQLite lacks and a
few PostgreSQL functions become calls of the functions in :mod:`.functions`
or of SQLite's JSON functions; parameters stay ``?n``.

>>> from loomdb.sql.dialect import parse
>>> parse("SELECT id FROM t ORDER BY e <=> $1 LIMIT 5").sql(dialect=LoomSQLite)
'SELECT id FROM t ORDER BY (CASE WHEN e IS NULL OR ?1 IS NULL THEN NULL ELSE vec_distance_cosine(e, ?1) END) LIMIT 5'
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.dialects.dialect import arrow_json_extract_sql
from sqlglot.dialects.sqlite import SQLite
from sqlglot.generators.sqlite import SQLiteGenerator

from ...errors import NotSupportedError
from ...sql.dialect import CosineDistance, NegativeInnerProduct
from ...sql.tree import is_json, is_jsonb_concat
from .functions import NUMERIC_COLLATION
from .text_dialect import FLOAT_TYPES, STRING_CALLS, STRING_TRANSFORMS, check_function
from .time_dialect import TIME_CALLS, TIME_TRANSFORMS, time_cast, time_minus, time_rewrites

_Transform = Callable[[SQLiteGenerator, exp.Expr], str]


def _func(name: str) -> _Transform:
    """A binary operator written as the call ``name(left, right)``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(left, right)``."""
        return self.func(name, e.this, e.expression)

    return generate


def _null_safe(name: str) -> _Transform:
    """A distance operator as ``name(a, b)``, NULL when either side is NULL:
    sqlite-vec raises on a NULL vector, PostgreSQL's distance of NULL is NULL."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The NULL-safe call."""
        a, b = self.sql(e.this), self.sql(e.expression)
        return f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN NULL ELSE {name}({a}, {b}) END)"

    return generate


# Casts whose SQLite spelling would lose the PostgreSQL meaning.
_CAST_FUNCTIONS = {
    exp.DataType.Type.JSON: None,  # stored as JSON text already: the cast is a no-op
    exp.DataType.Type.JSONB: "loom_jsonb",  # to jsonb's normal form, so equal values compare equal
    exp.DataType.Type.UUID: None,
    exp.DataType.Type.VECTOR: "vec_f32",
    exp.DataType.Type.BOOLEAN: "loom_bool",
    exp.DataType.Type.DECIMAL: "loom_numeric",
}


_T = exp.DataType.Type
# Casts to PostgreSQL's integer types, by width: a loomdb function rounds and
# range-checks as PostgreSQL does (SQLite's CAST truncates, and never fails).
_INT_CASTS = {_T.SMALLINT: "loom_int2", _T.INT: "loom_int4", _T.BIGINT: "loom_int8"}
_TEXT_TYPES = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR}


def _int_cast_mode(value: exp.Expr) -> str:
    """How PostgreSQL turns ``value`` into an integer, from its type: 'n' numeric
    (rounded half away from zero; numeric literals are numeric in PostgreSQL),
    'f' float (rounded half to even), 't' text (an integer literal only), 'a'
    unknown (a parameter: decided by the value)."""
    if _numeric_literal_text(value) is not None:
        return "n"
    if isinstance(value, exp.Literal) and value.is_string:
        return "t"
    dtype = value.type if isinstance(value, exp.Expression) else None
    kind = None if dtype is None else dtype.this
    if kind in FLOAT_TYPES:
        return "f"
    if kind in _TEXT_TYPES:
        return "t"
    if kind is None or kind == _T.UNKNOWN:
        return "a"
    return "n"


def _cast(self: SQLiteGenerator, e: exp.Cast) -> str:
    """A cast to a type SQLite lacks as a loomdb function (or nothing); others as SQLite has them."""
    kind = e.to.this
    timed = time_cast(self, e)
    if timed is not None:
        return timed
    numeric = _numeric_cast(self, e)
    if numeric is not None:
        return numeric
    if kind in _INT_CASTS:
        return self.func(_INT_CASTS[kind], e.this, exp.Literal.string(_int_cast_mode(e.this)))
    if kind in _CAST_FUNCTIONS:
        name = _CAST_FUNCTIONS[kind]
        return self.sql(e.this) if name is None else self.func(name, e.this)
    return self.cast_sql(e)


_RENAMED_FUNCTIONS = {
    "L2_DISTANCE": "vec_distance_l2",
    "JSONB_ARRAY_LENGTH": "json_array_length",
    "JSONB_BUILD_OBJECT": "json_object",
    "JSON_BUILD_OBJECT": "json_object",
    "JSONB_BUILD_ARRAY": "json_array",
    "JSON_BUILD_ARRAY": "json_array",
    "JSONB_AGG": "json_group_array",
    "JSONB_OBJECT_AGG": "json_group_object",
    "JSON_OBJECT_AGG": "json_group_object",
    "INNER_PRODUCT": "loom_inner_product",
    "VECTOR_DIMS": "vec_length",
    "VECTOR_NORM": "loom_vector_norm",
}


def _anonymous(self: SQLiteGenerator, e: exp.Anonymous) -> str:
    """A function sqlglot does not know: renamed when SQLite calls it otherwise;
    one SQLite lacks refused (see :func:`.text_dialect.check_function`)."""
    upper = str(e.this).upper()
    if upper in STRING_CALLS:
        return STRING_CALLS[upper](self, e)
    if upper in TIME_CALLS:
        return TIME_CALLS[upper](self, e)
    name = _RENAMED_FUNCTIONS.get(upper)
    if name is None:
        check_function(str(e.this))
        return self.anonymous_sql(e)
    return self.func(name, *e.expressions)


def _json_path(self: SQLiteGenerator, path: exp.Expr) -> str:
    """PostgreSQL's text-array path '{a,0,b}' as a SQLite JSON path '$.a[0].b'
    (NotSupportedError for a path that is not a constant)."""
    if not isinstance(path, exp.Literal) or not path.is_string:
        raise NotSupportedError("#> and #>> need a constant path such as '{a,b}'")
    out = "$"
    for part in path.this.strip("{}").split(","):
        part = part.strip().strip('"')
        out += f"[{part}]" if part.lstrip("-").isdigit() else '."' + part.replace('"', '\\"') + '"'
    return self.sql(exp.Literal.string(out))


def _json_text(self: SQLiteGenerator, e: exp.JSONExtractScalar) -> str:
    """``->>`` returns text in PostgreSQL: numbers as their digits, booleans as true/false."""
    inner = arrow_json_extract_sql(self, e)
    doc = self.sql(e.this)
    path = self.sql(e.expression)
    if not isinstance(e.expression, exp.JSONPath):
        # A key or index given at run time (a parameter): ->> takes it as is,
        # json_type needs it as a path.
        path = f"(CASE WHEN typeof({path}) = 'integer' THEN '$[' || {path} || ']' ELSE '$.\"' || {path} || '\"' END)"
    return (
        f"(CASE json_type({doc}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        f" ELSE CAST({inner} AS TEXT) END)"
    )


def _has_key(self: SQLiteGenerator, e: exp.Expr) -> str:
    """jsonb's ``doc ? key``: whether the top-level object has ``key``."""
    key = e.expression
    if isinstance(key, exp.Literal):
        path = exp.Literal.string('$."' + key.this.replace('"', '\\"') + '"')
        return f"(json_type({self.sql(e.this)}, {self.sql(path)}) IS NOT NULL)"
    return f"(json_type({self.sql(e.this)}, '$.\"' || {self.sql(key)} || '\"') IS NOT NULL)"


def _concat(self: SQLiteGenerator, e: exp.DPipe) -> str:
    """``||``: jsonb's concatenation when an operand is jsonb (and the other jsonb
    or untyped), else text concatenation."""
    if is_jsonb_concat(e):
        return self.func("loom_jsonb_concat", e.this, e.expression)
    return self.dpipe_sql(e)


def _checked_divisor(op: str) -> Callable[[SQLiteGenerator, exp.Binary], str]:
    """``/`` or ``%`` whose divisor raises PostgreSQL's division by zero (SQLite
    returns NULL); a non-zero number literal needs no check."""

    def generate(self: SQLiteGenerator, e: exp.Binary) -> str:
        """``left op loom_divisor(right, left IS NULL)``."""
        divisor = e.expression
        if isinstance(divisor, exp.Literal) and divisor.is_number and float(divisor.this) != 0:
            return self.binary(e, op)
        dividend = self.sql(e.this)
        # PostgreSQL divides nothing when the dividend is NULL: NULL / 0 is NULL.
        return f"{dividend} {op} loom_divisor({self.sql(divisor)}, {dividend} IS NULL)"

    return generate


def _minus(self: SQLiteGenerator, e: exp.Sub) -> str:
    """``-``: jsonb's deletion of a key or element when the left side is jsonb,
    time arithmetic when a side is a date or timestamp (see :mod:`.time_dialect`)."""
    if is_json(e.this):
        return self.func("loom_jsonb_delete", e.this, e.expression)
    timed = time_minus(self, e)
    return self.binary(e, "-") if timed is None else timed


def _object_agg(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``json[b]_object_agg(key, value)`` as SQLite's ``json_group_object``."""
    return self.func("json_group_object", e.this, e.expression)


# -- PostgreSQL's numeric aggregates ------------------------------------------------------
# sum() of NUMERIC and avg() of integers and NUMERIC in exact decimal arithmetic
# (see the functions module), and the casts to real, double precision,
# numeric(p, s) and varchar(n) as PostgreSQL casts.

_DECIMAL_ARGS = {_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT, _T.DECIMAL}
# What may stand between a result column and its aggregate for the exact
# aggregate (numeric text) to be used: elsewhere (comparisons, arithmetic,
# subqueries) SQLite's own float aggregate keeps numbers comparable.
_PASS_THROUGH = (exp.Alias, exp.Paren, exp.Filter, exp.Window)


def _numeric_literal_text(node: exp.Expr) -> str | None:
    """The text of a number literal (under parentheses and signs), else None.

    >>> _numeric_literal_text(exp.Paren(this=exp.Neg(this=exp.Literal.number("2.50"))))
    '-2.50'
    """
    sign = ""
    while isinstance(node, (exp.Paren, exp.Neg)):
        if isinstance(node, exp.Neg):
            sign = "" if sign else "-"
        node = node.this
    if isinstance(node, exp.Literal) and node.is_number:
        return sign + str(node.this)
    return None


def _numeric_cast(self: SQLiteGenerator, e: exp.Cast) -> str | None:
    """A cast to real, double precision, numeric(p, s) or varchar(n) as a loomdb function; None for others."""
    kind, params = e.to.this, e.to.expressions
    if kind == _T.FLOAT:
        return self.func("loom_float4", e.this)
    if kind == _T.DOUBLE:
        return self.func("loom_float8", e.this)
    literal = _numeric_literal_text(e.this)
    if kind == _T.DECIMAL and literal is not None:
        # A number literal is numeric in PostgreSQL (its scale kept: 1.0 is 1.0),
        # where SQLite would read it as a float: cast its text instead.
        e = exp.Cast(this=exp.Literal.string(literal), to=e.to.copy())
        if not params:
            return self.func("loom_numeric", e.this)
    source = e.this.type.this if isinstance(e.this, exp.Expression) and e.this.type else None
    if kind == _T.DECIMAL and source in (_T.FLOAT, _T.DOUBLE):
        # real and double precision turn into numeric by their 6 or 15 significant digits
        digits = exp.Literal.number(6 if source == _T.FLOAT else 15)
        value = exp.Anonymous(this="loom_float_numeric", expressions=[e.this.copy(), digits])
        return self.sql(exp.Cast(this=value, to=e.to.copy()))
    if kind == _T.DECIMAL and params:
        values = [str(p.this.this) for p in params if isinstance(p.this, exp.Literal)]
        if len(values) != len(params) or not all(v.lstrip("-").isdigit() for v in values):
            return None
        precision, scale = int(values[0]), int(values[1]) if len(values) > 1 else 0
        return self.func(
            "loom_numeric_typmod", e.this, exp.Literal.number(precision), exp.Literal.number(scale)
        )
    if kind in (_T.VARCHAR, _T.CHAR) and params and isinstance(params[0].this, exp.Literal):
        return self.func("loom_varchar", e.this, params[0].this)
    return None


def _in_result_column(node: exp.Expr) -> bool:
    """Whether ``node``'s value is a result column of the outermost SELECT as it is."""
    child, parent = node, node.parent
    while isinstance(parent, _PASS_THROUGH) or (
        isinstance(parent, exp.Cast) and parent.to.this == _T.DECIMAL
    ):
        child, parent = parent, parent.parent
    return (
        isinstance(parent, exp.Select)
        and parent.parent is None
        and any(child is item for item in parent.expressions)
    )


def _numeric_aggregate(name: str, native: str) -> _Transform:
    """sum/avg over integers or NUMERIC as ``name`` (exact, numeric text) in a result
    column, else SQLite's ``native``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The exact aggregate (numeric text compared as numbers) or SQLite's own."""
        arg = e.this
        inner = arg.expressions[0] if isinstance(arg, exp.Distinct) and arg.expressions else arg
        kind = inner.type.this if isinstance(inner, exp.Expression) and inner.type else None
        if name == "loom_numeric_sum" and kind == _T.FLOAT:
            return self.func("loom_float4_sum", arg)  # a float, comparable anywhere
        exact = kind == _T.DECIMAL or (name == "loom_numeric_avg" and kind in _DECIMAL_ARGS)
        if not exact or not _in_result_column(e):
            return self.func(native, arg)
        if isinstance(e.parent, exp.Window):
            e.parent.meta["numeric_text"] = True  # the window takes the COLLATE
            return self.func(name, arg)
        return f"{self.func(name, arg)} COLLATE {NUMERIC_COLLATION}"

    return generate


def _window(self: SQLiteGenerator, e: exp.Window) -> str:
    """A window call; one of the exact aggregates' compared as numbers."""
    sql = self.window_sql(e)
    return f"{sql} COLLATE {NUMERIC_COLLATION}" if e.meta.get("numeric_text") else sql


class LoomSQLiteGenerator(SQLiteGenerator):
    """SQLite's generator with loomdb's rewrites (see the module docstring)."""

    def preprocess(self, expression: exp.Expr) -> exp.Expr:
        """SQLite's preprocessing, then timestamp and date literals in their stored form."""
        return time_rewrites(super().preprocess(expression))

    TRANSFORMS = {
        **SQLiteGenerator.TRANSFORMS,
        exp.Distance: _null_safe("vec_distance_l2"),
        CosineDistance: _null_safe("vec_distance_cosine"),
        NegativeInnerProduct: _func("loom_negative_inner_product"),
        exp.ArrayContainsAll: _func("loom_jsonb_contains"),
        exp.ArrayContainedBy: _func("loom_jsonb_contained"),
        exp.CurrentTimestamp: lambda self, e: "loom_now()",
        exp.ILike: lambda self, e: f"LOWER({self.sql(e.this)}) LIKE LOWER({self.sql(e.expression)})",
        exp.Cast: _cast,
        exp.Uuid: lambda self, e: "gen_random_uuid()",
        exp.CosineDistance: _null_safe("vec_distance_cosine"),
        exp.JSONBExtract: lambda self, e: f"({self.sql(e.this)} -> {_json_path(self, e.expression)})",
        exp.JSONBExtractScalar: lambda self, e: (
            f"CAST(({self.sql(e.this)} ->> {_json_path(self, e.expression)}) AS TEXT)"
        ),
        exp.JSONExtractScalar: _json_text,
        exp.JSONBContainsTopKey: _has_key,
        exp.Anonymous: _anonymous,
        exp.Parameter: lambda self, e: f"?{e.this.name}",
        exp.DPipe: _concat,
        exp.Div: _checked_divisor("/"),
        exp.Mod: _checked_divisor("%"),
        exp.Sub: _minus,
        **TIME_TRANSFORMS,
        exp.JSONBObjectAgg: _object_agg,
        exp.JSONObjectAgg: _object_agg,
        **STRING_TRANSFORMS,
        exp.Sum: _numeric_aggregate("loom_numeric_sum", "SUM"),
        exp.Avg: _numeric_aggregate("loom_numeric_avg", "AVG"),
        exp.Window: _window,
    }

    def function_fallback_sql(self, expression: exp.Func) -> str:
        """A function sqlglot knows but the dialect does not rewrite: as SQLite
        writes it when SQLite has it, else refused (see :func:`.text_dialect.check_function`)."""
        sql = super().function_fallback_sql(expression)
        check_function(expression.sql_name(), known=True)
        return sql


class LoomSQLite(SQLite):
    """SQLite as the loomdb engine runs it (its functions registered by :mod:`.functions`)."""

    Generator = LoomSQLiteGenerator
