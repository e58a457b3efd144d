"""The SQL the SQLite engine runs: loomdb's PostgreSQL, written for SQLite.

pgvector's operators, casts and functions become calls of pgvector's exact
arithmetic (:mod:`.vector_dialect`); JSONB containment, NOW(), casts to types SQLite lacks and a
few PostgreSQL functions become calls of the functions in :mod:`.functions`
or of SQLite's JSON functions; parameters stay ``?n``.

>>> from loomdb.sql.dialect import parse
>>> parse("SELECT id FROM t ORDER BY e <=> $1 LIMIT 5").sql(dialect=LoomSQLite)
'SELECT id FROM t ORDER BY LOOM_COSINE_RANK(e, ?1) NULLS LAST LIMIT 5'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.generators.sqlite import SQLiteGenerator

from ...errors import NotSupportedError
from ...pg_input import parse_bytea, parse_uuid
from ...sql.tree import is_json, is_jsonb_concat
from .float_dialect import (
    checked,
    float8_math,
    float_bits,
    float_modulo,
    null_checked,
    rounding,
    text_cast,
    text_concat,
)
from .integer_dialect import bigint_sum, shift, xor
from .json_dialect import JSON_CALLS, JSON_TRANSFORMS, jsonb_order, select_list_functions
from .numeric_dialect import (
    NUMERIC_CALLS,
    exact_aggregate,
    numeric_literal_text,
    numeric_set_operations,
    numeric_transforms,
    wrap_numeric,
)
from .query_dialect import rewrite_queries
from .text_dialect import FLOAT_TYPES, STRING_CALLS, STRING_TRANSFORMS, check_function
from .time_dialect import TIME_CALLS, TIME_TRANSFORMS, time_cast, time_minus, time_rewrites
from .type_checks import check_types
from .vector_dialect import (
    VECTOR_TRANSFORMS,
    is_vector,
    vector_aggregate,
    vector_arithmetic,
    vector_call,
    vector_cast,
)

_Transform = Callable[[SQLiteGenerator, exp.Expr], str]


def _func(name: str) -> _Transform:
    """A binary operator written as the call ``name(left, right)``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(left, right)``."""
        return self.func(name, e.this, e.expression)

    return generate


# Casts whose SQLite spelling would lose the PostgreSQL meaning.
_CAST_FUNCTIONS = {
    exp.DataType.Type.JSON: None,  # stored as JSON text already: the cast is a no-op
    exp.DataType.Type.JSONB: "loom_jsonb",  # to jsonb's normal form, so equal values compare equal
    exp.DataType.Type.UUID: "loom_uuid",  # checked and in canonical form, as PostgreSQL's uuid input
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
    if numeric_literal_text(value) is not None:
        return "n"
    if isinstance(value, exp.Literal) and value.is_string:
        return "t"
    dtype = value.type if isinstance(value, exp.Expression) else None
    kind = None if dtype is None else dtype.this
    if kind in FLOAT_TYPES:
        # sqlglot types numeric literals (and arithmetic of them) as floats too
        return "f" if float_bits(value) is not None else "n"
    if kind in _TEXT_TYPES:
        return "t"
    if kind is None or kind == _T.UNKNOWN:
        return "a"
    return "n"


def _is_plain_json(node: exp.Expr) -> bool:
    """Whether ``node`` is typed json (not jsonb): PostgreSQL keeps json's text as written."""
    return isinstance(node, exp.Expression) and node.type is not None and node.type.this == _T.JSON


#: The expressions whose value is still a bpchar when an operand is one.
_BPCHAR_KEEPING = (exp.Coalesce, exp.Case, exp.If, exp.Nullif, exp.Greatest, exp.Least, exp.Max, exp.Min)


def _bpchar_cast(self: SQLiteGenerator, e: exp.Cast) -> str:
    """``value::char(n)`` (n is 1 when not given; ``::bpchar`` neither cuts nor pads): PostgreSQL's bpchar, cut or padded with
    spaces to n characters. The padding shows only in a result column, octet_length and pattern
    matching: everywhere else
    (comparisons, ||, length, assignment to text) PostgreSQL ignores a bpchar's trailing
    spaces, so there it is the text without them."""
    params = e.to.expressions
    length = params[0].this if params and isinstance(params[0].this, exp.Literal) else exp.Literal.number(1)
    if params and not isinstance(params[0].this, exp.Literal):
        raise NotSupportedError(f"CAST(... AS {e.to.sql()}) is not supported by loomdb on SQLite")
    parent = e.parent
    octets = isinstance(parent, exp.Anonymous) and str(parent.this).lower() == "octet_length"
    # LIKE, SIMILAR TO and regular expressions match a bpchar with its padding
    matched = isinstance(parent, (exp.Like, exp.ILike, exp.SimilarTo, exp.RegexpLike, exp.RegexpILike))
    if octets or matched or _in_result_column(e):
        if e.to.this == _T.BPCHAR:  # bpchar without a length: the text as it is
            return f"CAST({self.sql(e.this)} AS TEXT)"
        return self.func("loom_bpchar", e.this, length)
    child: exp.Expr = e
    while isinstance(child.parent, (exp.Paren, exp.Alias)):
        child = child.parent
    if isinstance(child.parent, (*_BPCHAR_KEEPING, exp.Select)):
        # The value stays a bpchar (a projection of a subquery, COALESCE, max...) and
        # may reach a result column padded: loomdb does not follow it there.
        raise NotSupportedError(
            f"a {e.to.sql().lower()} value inside {child.parent.key.upper()} is not supported by loomdb on SQLite"
            " (its trailing-space padding is kept only directly in a result column)"
        )
    if e.to.this == _T.BPCHAR:
        return f"RTRIM(CAST({self.sql(e.this)} AS TEXT), ' ')"
    return f"RTRIM({self.func('loom_varchar', e.this, length)}, ' ')"


_BYTEA_TYPES = {_T.VARBINARY, _T.BINARY, _T.BLOB}


def _bytea_cast(self: SQLiteGenerator, e: exp.Cast) -> str:
    """``value::bytea``: a string read by PostgreSQL's bytea input (``\\x0102`` or the
    escape format), a literal once here, other text by ``loom_bytea``; bytes as they are."""
    if isinstance(e.this, exp.Literal) and e.this.is_string:
        return f"X'{parse_bytea(e.this.this).hex()}'"
    source = e.this.type.this if isinstance(e.this, exp.Expression) and e.this.type else None
    if source in _BYTEA_TYPES:
        return self.sql(e.this)
    return self.func("loom_bytea", e.this)


#: Nodes a value passes through unchanged on its way to a result column.
_PASS_THROUGH = (exp.Alias, exp.Paren, exp.Filter, exp.Window)


def _in_result_column(node: exp.Expr) -> bool:
    """Whether ``node``'s value is a result column of the outermost SELECT as it is."""
    child, parent = node, node.parent
    while isinstance(parent, _PASS_THROUGH):
        child, parent = parent, parent.parent
    return (
        isinstance(parent, exp.Select)
        and parent.parent is None
        and any(child is item for item in parent.expressions)
    )


def _cast(self: SQLiteGenerator, e: exp.Cast) -> str:
    """A cast to a type SQLite lacks as a loomdb function (or nothing); others as SQLite has them."""
    kind = e.to.this
    vector = vector_cast(self, e)
    if vector is not None:
        return vector
    timed = time_cast(self, e)
    if timed is not None:
        return timed
    text = text_cast(self, e)  # floats, booleans and number literals as PostgreSQL's text
    if text is not None:
        return text
    if kind == _T.UUID and isinstance(e.this, exp.Literal) and e.this.is_string:
        return self.sql(exp.Literal.string(parse_uuid(e.this.this)))  # checked once, here
    if kind in (_T.CHAR, _T.NCHAR, _T.BPCHAR):
        return _bpchar_cast(self, e)
    if kind in _BYTEA_TYPES:
        return _bytea_cast(self, e)
    numeric = _numeric_cast(self, e)
    if numeric is not None:
        return wrap_numeric(self, e, numeric) if kind == _T.DECIMAL else numeric
    if kind in _TEXT_TYPES and is_json(e.this) and not _is_plain_json(e.this):
        return self.func("loom_jsonb_text", e.this)  # PostgreSQL's text form of jsonb
    if kind in _INT_CASTS:
        return self.func(_INT_CASTS[kind], e.this, exp.Literal.string(_int_cast_mode(e.this)))
    if kind in _CAST_FUNCTIONS:
        name = _CAST_FUNCTIONS[kind]
        return self.sql(e.this) if name is None else self.func(name, e.this)
    return self.cast_sql(e)


def _anonymous(self: SQLiteGenerator, e: exp.Anonymous) -> str:
    """A function sqlglot does not know: renamed when SQLite calls it otherwise;
    one SQLite lacks refused (see :func:`.text_dialect.check_function`)."""
    upper = str(e.this).upper()
    if upper in STRING_CALLS:
        return STRING_CALLS[upper](self, e)
    if upper in JSON_CALLS:
        return JSON_CALLS[upper](self, e)
    if upper in NUMERIC_CALLS:
        return NUMERIC_CALLS[upper](self, e)
    if upper in TIME_CALLS:
        return TIME_CALLS[upper](self, e)
    name = vector_call(upper)
    if name is None:
        check_function(str(e.this))
        return self.anonymous_sql(e)
    return self.func(name, *e.expressions)


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
    pgvector's element-wise difference between vectors."""
    vector = vector_arithmetic(self, e)
    if vector is not None:
        return vector
    if is_json(e.this):
        # A parameter may be a Python list, bound as a JSON array: jsonb - text[].
        parameter = isinstance(e.expression, (exp.Parameter, exp.Placeholder))
        return self.func("loom_jsonb_delete_keys" if parameter else "loom_jsonb_delete", e.this, e.expression)
    timed = time_minus(self, e)
    return self.binary(e, "-") if timed is None else timed


# -- PostgreSQL's numeric aggregates ------------------------------------------------------
# sum() of NUMERIC and avg() of integers and NUMERIC in exact decimal arithmetic
# (see the functions module), and the casts to real, double precision,
# numeric(p, s) and varchar(n) as PostgreSQL casts.


def _numeric_cast(self: SQLiteGenerator, e: exp.Cast) -> str | None:
    """A cast to real, double precision, numeric(p, s) or varchar(n) as a loomdb function; None for others."""
    kind, params = e.to.this, e.to.expressions
    if kind == _T.FLOAT:
        return self.func("loom_float4", e.this)
    if kind == _T.DOUBLE:
        return self.func("loom_float8", e.this)
    literal = numeric_literal_text(e.this)
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


def _numeric_aggregate(name: str, native: str) -> _Transform:
    """sum/avg typed numeric (sum of bigint and numeric, avg of integers and numeric)
    as ``name``, loomdb's exact aggregate (numeric text); others as SQLite's ``native``
    (sum of a real as ``loom_float4_sum``)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The exact aggregate (compared as a number) or SQLite's own."""
        vector = vector_aggregate(self, e)
        if vector is not None:
            return vector
        arg = e.this
        if name == "loom_numeric_sum":
            split = bigint_sum(self, e, True)  # numeric text, without a Python call per row
            if split is not None:
                return wrap_numeric(self, e, split)
        inner = arg.expressions[0] if isinstance(arg, exp.Distinct) and arg.expressions else arg
        kind = inner.type.this if isinstance(inner, exp.Expression) and inner.type else None
        if name == "loom_numeric_sum" and kind == _T.FLOAT:
            return self.func("loom_float4_sum", arg)  # a float, comparable anywhere
        if not exact_aggregate(e):
            return self.func(native, arg)
        return wrap_numeric(self, e, self.func(name, arg))

    return generate


def _by_operands(is_kind: Callable[[Any], bool], special: _Transform, other: _Transform) -> _Transform:
    """``special`` when one of a node's operands ``is_kind`` (a vector, jsonb), else ``other``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The special or the other rewrite."""
        operands = [e.this, e.args.get("expression"), *e.expressions]
        return (special if any(o is not None and is_kind(o) for o in operands) else other)(self, e)

    return generate


class LoomSQLiteGenerator(SQLiteGenerator):
    """SQLite's generator with loomdb's rewrites (see the module docstring)."""

    def preprocess(self, expression: exp.Expr) -> exp.Expr:
        """SQLite's preprocessing, PostgreSQL's type checks and unknown literals read as
        their operands' types (:mod:`.type_checks`), then the time rewrites of
        :mod:`.time_dialect`, set operations' integer columns cast where numerics meet
        them, jsonb's ordering, set-returning JSON functions of the select list and the
        query shapes of :mod:`.query_dialect`."""
        tree = numeric_set_operations(time_rewrites(check_types(super().preprocess(expression))))
        return rewrite_queries(select_list_functions(jsonb_order(tree)))

    TRANSFORMS = {
        **SQLiteGenerator.TRANSFORMS,
        exp.CurrentTimestamp: lambda self, e: "loom_now()",
        exp.Cast: _cast,
        exp.Uuid: lambda self, e: "gen_random_uuid()",
        exp.Anonymous: _anonymous,
        exp.Parameter: lambda self, e: f"?{e.this.name}",
        exp.DPipe: text_concat(_concat),
        exp.Div: checked(_checked_divisor("/")),
        exp.Mod: float_modulo(_checked_divisor("%")),
        exp.Sub: checked(_minus),
        exp.Neg: checked(lambda self, e: self.neg_sql(e)),
        exp.Abs: checked(lambda self, e: self.function_fallback_sql(e)),
        exp.BitwiseLeftShift: shift(left=True),
        exp.BitwiseRightShift: shift(left=False),
        exp.BitwiseXor: xor,
        exp.Round: rounding(lambda self, e: self.function_fallback_sql(e)),
        exp.Sqrt: null_checked("loom_sqrt_null", lambda self, e: self.function_fallback_sql(e)),
        exp.Ln: null_checked("loom_log_null", lambda self, e: self.function_fallback_sql(e)),
        exp.Log: null_checked("loom_log_null", lambda self, e: self.log_sql(e)),
        exp.Exp: float8_math("exp", lambda self, e: self.function_fallback_sql(e)),
        exp.Pow: float8_math("power", lambda self, e: self.func("POWER", e.this, e.expression)),
        **TIME_TRANSFORMS,
        **STRING_TRANSFORMS,
        **JSON_TRANSFORMS,
        **VECTOR_TRANSFORMS,
        # Nodes both rewrite: pgvector's meaning when a side is a vector, else jsonb's (or SQLite's).
        **{
            node: _by_operands(is_vector, VECTOR_TRANSFORMS[node], JSON_TRANSFORMS[node])
            for node in VECTOR_TRANSFORMS.keys() & JSON_TRANSFORMS.keys()
        },
        # Integer and float results range-checked (22003), whichever rewrite made them.
        exp.Add: checked(
            _by_operands(
                is_vector,
                VECTOR_TRANSFORMS[exp.Add],
                _by_operands(is_json, JSON_TRANSFORMS[exp.Add], TIME_TRANSFORMS[exp.Add]),
            )
        ),
        exp.Mul: checked(VECTOR_TRANSFORMS[exp.Mul]),
        exp.Sum: _numeric_aggregate("loom_numeric_sum", "SUM"),
        exp.Avg: _numeric_aggregate("loom_numeric_avg", "AVG"),
    }
    # Numeric expressions as exact calls; the rules above for what is not numeric.
    TRANSFORMS.update(numeric_transforms(TRANSFORMS))

    def function_fallback_sql(self, expression: exp.Func) -> str:
        """A function sqlglot knows but the dialect does not rewrite: as SQLite
        writes it when SQLite has it, else refused (see :func:`.text_dialect.check_function`)."""
        sql = super().function_fallback_sql(expression)
        check_function(expression.sql_name(), known=True)
        return sql


class LoomSQLite(SQLite):
    """SQLite as the loomdb engine runs it (its functions registered by :mod:`.functions`)."""

    Generator = LoomSQLiteGenerator
