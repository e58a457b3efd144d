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

from ... import errors
from ...errors import NotSupportedError
from ...sql.dialect import CosineDistance, NegativeInnerProduct
from ...sql.tree import is_json, is_jsonb_concat
from ...types import ColumnType, to_storage
from .functions import sqlite_function_names
from .pg_functions import PG_FUNCTIONS

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
    exp.DataType.Type.TIMESTAMP: "loom_timestamp",
    exp.DataType.Type.TIMESTAMPTZ: "loom_timestamp",
    exp.DataType.Type.DATE: "loom_date",
    exp.DataType.Type.BOOLEAN: "loom_bool",
    exp.DataType.Type.DECIMAL: "loom_numeric",
}


_T = exp.DataType.Type
# Casts to PostgreSQL's integer types, by width: a loomdb function rounds and
# range-checks as PostgreSQL does (SQLite's CAST truncates, and never fails).
_INT_CASTS = {_T.SMALLINT: "loom_int2", _T.INT: "loom_int4", _T.BIGINT: "loom_int8"}
_FLOAT_TYPES = {_T.FLOAT, _T.DOUBLE}
_TEXT_TYPES = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR}


def _int_cast_mode(value: exp.Expr) -> str:
    """How PostgreSQL turns ``value`` into an integer, from its type: 'n' numeric
    (rounded half away from zero; numeric literals are numeric in PostgreSQL),
    'f' float (rounded half to even), 't' text (an integer literal only), 'a'
    unknown (a parameter: decided by the value)."""
    inner = value
    while isinstance(inner, (exp.Paren, exp.Neg)):
        inner = inner.this
    if isinstance(inner, exp.Literal):
        return "t" if inner.is_string else "n"
    dtype = value.type if isinstance(value, exp.Expression) else None
    kind = None if dtype is None else dtype.this
    if kind in _FLOAT_TYPES:
        return "f"
    if kind in _TEXT_TYPES:
        return "t"
    if kind is None or kind == _T.UNKNOWN:
        return "a"
    return "n"


def _cast(self: SQLiteGenerator, e: exp.Cast) -> str:
    """A cast to a type SQLite lacks as a loomdb function (or nothing); others as SQLite has them."""
    kind = e.to.this
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
    one SQLite lacks refused (see :func:`_check_function`)."""
    upper = str(e.this).upper()
    if upper in _STRING_CALLS:
        return _STRING_CALLS[upper](self, e)
    name = _RENAMED_FUNCTIONS.get(upper)
    if name is None:
        _check_function(str(e.this))
        return self.anonymous_sql(e)
    return self.func(name, *e.expressions)


# -- PostgreSQL's string functions, as the loom_* functions of .functions


def _check_function(name: str, known: bool = False) -> None:
    """Nothing when SQLite (or loomdb on it) has function ``name``; else
    NotSupportedError (0A000) for a function PostgreSQL has (or one sqlglot
    ``known`` from PostgreSQL's grammar), ProgrammingError (42883,
    undefined_function, as PostgreSQL raises) for one it does not."""
    if name.lower() in sqlite_function_names():
        return
    shown = name.lower()
    if known or shown in PG_FUNCTIONS:
        raise NotSupportedError(f"{shown}() is not supported by loomdb on SQLite")
    raise errors.ProgrammingError(f"function {shown}() does not exist", sqlstate="42883")


def _call(name: str) -> _Transform:
    """A function written as ``name(its arguments)``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(args...)``."""
        args = [e.args.get(key) for key in e.arg_types]
        flat: list[exp.Expr] = []
        for arg in args:
            if isinstance(arg, list):
                flat.extend(arg)
            elif isinstance(arg, exp.Expression):
                flat.append(arg)
        return self.func(name, *flat)

    return generate


def _refuse(name: str) -> _Transform:
    """A PostgreSQL function the SQLite engine cannot run exactly: NotSupportedError."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """Raises."""
        raise NotSupportedError(f"{name}() is not supported by loomdb on SQLite")

    return generate


def _pad(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``lpad``/``rpad(s, n [, fill])``."""
    name = "loom_lpad" if e.args.get("is_left") else "loom_rpad"
    return self.func(name, e.this, e.expression, e.args.get("fill_pattern"))


def _regexp_like(insensitive: bool) -> _Transform:
    """``s ~ pattern`` / ``s ~* pattern`` (flags refused)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``loom_regexp_match(s, pattern, insensitive)``."""
        if e.args.get("flag"):
            raise NotSupportedError("regular expression flags are not supported by loomdb on SQLite")
        return self.func("loom_regexp_match", e.this, e.expression, exp.Literal.number(int(insensitive)))

    return generate


def _regexp_replace(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``regexp_replace(s, pattern, replacement [, flags])`` (no start position)."""
    if e.args.get("position") or e.args.get("occurrence"):
        raise NotSupportedError("regexp_replace() with a start position is not supported by loomdb on SQLite")
    if e.args.get("replacement") is None:
        raise errors.ProgrammingError("function regexp_replace() needs a replacement", sqlstate="42883")
    return self.func(
        "loom_regexp_replace", e.this, e.expression, e.args.get("replacement"), e.args.get("modifiers")
    )


def _str_position(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``strpos(s, sub)`` / ``position(sub IN s)`` as SQLite's instr (1-based, 0 when absent)."""
    if e.args.get("position") or e.args.get("occurrence"):
        raise NotSupportedError("strpos() with a start position is not supported by loomdb on SQLite")
    return self.func("INSTR", e.this, e.args.get("substr"))


def _not_over_window(pg_name: str, e: exp.Expr) -> None:
    """NotSupportedError for loomdb's aggregate ``pg_name`` used as a window
    function (``OVER``): they are plain aggregates on SQLite."""
    if isinstance(e.parent, exp.Window):
        raise NotSupportedError(f"{pg_name}() OVER (...) is not supported by loomdb on SQLite")


def _bool_agg(name: str) -> _Transform:
    """``bool_and`` / ``bool_or`` as loomdb's aggregate ``name``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(value)``."""
        _not_over_window(name.removeprefix("loom_"), e)
        return self.func(name, e.this)

    return generate


def _is_float(node: exp.Expr) -> bool:
    """Whether sqlglot typed ``node`` as a float."""
    dtype = node.type if isinstance(node, exp.Expression) else None
    return dtype is not None and dtype.this in _FLOAT_TYPES


def _is_float8(value: exp.Expr) -> bool:
    """Whether ``value`` is double precision in PostgreSQL: typed as a float and
    made from a float column (of a table, or of a subquery or CTE whose column
    is such a value) or a cast to double precision. sqlglot types a literal
    such as 1.5 as a float too, but PostgreSQL's is numeric; a cast to real is
    float4, whose values PostgreSQL rounds first."""
    if not _is_float(value):
        return False
    if isinstance(value, exp.Column):
        source = _derived_projection(value)
        return source is True or (isinstance(source, exp.Expression) and _is_float8(source))
    if isinstance(value, exp.Cast):
        return value.to.this == _T.DOUBLE
    if isinstance(value, exp.Literal):
        return False
    return any(_is_float8(node) for node in value.iter_expressions())


def _derived_projection(column: exp.Column) -> exp.Expr | bool:
    """What ``column`` reads: True for a table's column, the projection for a
    subquery's or CTE's, False when not known (VALUES, a set operation...)."""
    select = column.find_ancestor(exp.Select)
    if select is None:
        return False
    sources = [select.args.get("from_") or select.args.get("from")] + list(select.args.get("joins") or [])
    for source in sources:
        node = source.this if isinstance(source, (exp.From, exp.Join)) else None
        if node is None or node.alias_or_name != column.table:
            continue
        inner: exp.Expr | None = None
        if isinstance(node, exp.Subquery):
            inner = node.this
        elif isinstance(node, exp.Table):
            inner = _cte(select, node.name)
            if inner is None:
                return True
        if not isinstance(inner, exp.Select):
            return False
        for projection in inner.expressions:
            if projection.alias_or_name == column.name:
                return projection.unalias()
        return False
    return False


def _cte(node: exp.Expr, name: str) -> exp.Expr | None:
    """The query of the CTE ``name`` visible from ``node``, if any."""
    scope: exp.Expr | None = node
    while scope is not None:
        with_ = scope.args.get("with_") or scope.args.get("with")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                if cte.alias == name:
                    return cte.this
        scope = scope.parent
    return None


def _float_aggregate(pg_name: str, name: str) -> _Transform:
    """``stddev`` / ``variance`` & co. as loomdb's aggregate ``name`` over double
    precision (float8 result, as PostgreSQL's); refused over integers and
    numerics, whose result is a NUMERIC of PostgreSQL's scale in PostgreSQL."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(value)``, or NotSupportedError."""
        _not_over_window(pg_name, e)
        if not _is_float8(e.this):
            raise NotSupportedError(
                f"{pg_name}() is not supported by loomdb on SQLite"
                " (over double precision only: over integers and numerics PostgreSQL's result is NUMERIC)"
            )
        return self.func(name, e.this)

    return generate


#: Anonymous calls (functions sqlglot does not know) of PostgreSQL's that loomdb implements.
_STRING_CALLS: dict[str, _Transform] = {
    # every() is bool_and(), but sqlglot does not know it, so nothing types its
    # result as boolean: SQLite's 0/1 would come back as int.
    "EVERY": _refuse("every"),
}

#: sqlglot's expressions for PostgreSQL's string functions.
_STRING_TRANSFORMS: dict[type[exp.Expr], _Transform] = {
    exp.Left: _call("loom_left"),
    exp.Right: _call("loom_right"),
    exp.Repeat: lambda self, e: self.func("loom_repeat", e.this, e.args.get("times")),
    exp.Reverse: _call("loom_reverse"),
    exp.Initcap: lambda self, e: self.func("loom_initcap", e.this),
    exp.Pad: _pad,
    exp.MD5: _call("loom_md5"),
    exp.SplitPart: lambda self, e: self.func(
        "loom_split_part", e.this, e.args.get("delimiter"), e.args.get("part_index")
    ),
    exp.Translate: lambda self, e: self.func("loom_translate", e.this, e.args.get("from_"), e.args.get("to")),
    exp.StartsWith: _call("loom_starts_with"),
    exp.Ascii: _call("loom_ascii"),
    exp.Chr: lambda self, e: (
        self.func("loom_chr", *e.expressions) if len(e.expressions) == 1 else _refuse("chr")(self, e)
    ),
    exp.Hex: _refuse("to_hex"),
    exp.RegexpLike: _regexp_like(insensitive=False),
    exp.RegexpILike: _regexp_like(insensitive=True),
    exp.RegexpReplace: _regexp_replace,
    exp.StrPosition: _str_position,
    exp.LogicalAnd: _bool_agg("loom_bool_and"),
    exp.LogicalOr: _bool_agg("loom_bool_or"),
    exp.Stddev: _float_aggregate("stddev", "loom_stddev_samp"),
    exp.StddevSamp: _float_aggregate("stddev_samp", "loom_stddev_samp"),
    exp.StddevPop: _float_aggregate("stddev_pop", "loom_stddev_pop"),
    exp.Variance: _float_aggregate("variance", "loom_var_samp"),
    exp.VariancePop: _float_aggregate("var_pop", "loom_var_pop"),
}


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
    """``-``: jsonb's deletion of a key or element when the left side is jsonb."""
    if is_json(e.this):
        return self.func("loom_jsonb_delete", e.this, e.expression)
    return self.binary(e, "-")


def _object_agg(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``json[b]_object_agg(key, value)`` as SQLite's ``json_group_object``."""
    return self.func("json_group_object", e.this, e.expression)


_TIME_TYPES = {
    _T.TIMESTAMP: "TIMESTAMP",
    _T.TIMESTAMPTZ: "TIMESTAMP",
    _T.DATETIME: "TIMESTAMP",
    _T.DATE: "DATE",
}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _stored_literal(literal: exp.Expr, like: exp.Expr) -> exp.Expr:
    """A string ``literal`` compared with the timestamp or date ``like``, as the
    text the engine stores for that type (compared as text, a literal in
    another spelling would order wrongly); anything else as it is."""
    dtype = like.type if isinstance(like, exp.Expression) else None
    type_name = None if dtype is None else _TIME_TYPES.get(dtype.this)
    if type_name is None or not (isinstance(literal, exp.Literal) and literal.is_string):
        return literal
    try:
        stored = to_storage(literal.this, ColumnType.parse(type_name), "literal")
    except (ValueError, errors.DataError):
        raise errors.DataError(
            f"invalid input syntax for type {type_name.lower()}: {literal.this!r}", sqlstate="22007"
        ) from None
    return exp.Literal.string(stored)


def _time_literals(tree: exp.Expr) -> exp.Expr:
    """Every string literal compared with a timestamp or date (=, <>, <, <=, >,
    >=, BETWEEN, IN) replaced by its stored text."""
    for node in list(tree.find_all(*_COMPARISONS, exp.Between, exp.In)):
        if isinstance(node, exp.Between):
            for arg in ("low", "high"):
                node.set(arg, _stored_literal(node.args[arg], node.this))
        elif isinstance(node, exp.In):
            node.set("expressions", [_stored_literal(item, node.this) for item in node.expressions])
        else:
            left, right = node.this, node.expression
            node.set("expression", _stored_literal(right, left))
            node.set("this", _stored_literal(left, right))
    return tree


class LoomSQLiteGenerator(SQLiteGenerator):
    """SQLite's generator with loomdb's rewrites (see the module docstring)."""

    def preprocess(self, expression: exp.Expr) -> exp.Expr:
        """SQLite's preprocessing, then timestamp and date literals in their stored form."""
        return _time_literals(super().preprocess(expression))

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
        exp.JSONBObjectAgg: _object_agg,
        exp.JSONObjectAgg: _object_agg,
        **_STRING_TRANSFORMS,
    }

    def function_fallback_sql(self, expression: exp.Func) -> str:
        """A function sqlglot knows but the dialect does not rewrite: as SQLite
        writes it when SQLite has it, else refused (see :func:`_check_function`)."""
        sql = super().function_fallback_sql(expression)
        _check_function(expression.sql_name(), known=True)
        return sql


class LoomSQLite(SQLite):
    """SQLite as the loomdb engine runs it (its functions registered by :mod:`.functions`)."""

    Generator = LoomSQLiteGenerator
