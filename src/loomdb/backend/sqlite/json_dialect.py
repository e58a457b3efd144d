"""PostgreSQL's jsonb operators and functions, written for SQLite.

Stored jsonb is compact JSON text; SQLite's JSON functions read it where
their answer is PostgreSQL's (``->``, key lookups on objects, array lengths),
and the functions of :mod:`.json_functions` do the rest: PostgreSQL's text
form (``::text``, ``->>`` of a container), equality and containment by
jsonb's rules, text-array paths (``#>``, ``jsonb_set``...), and the errors
PostgreSQL raises. Values put into JSON keep their type: a jsonb value nests,
a boolean is ``true``/``false`` (SQLite has only 0 and 1), a numeric keeps its digits.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import arrow_json_extract_sql
from sqlglot.generators.sqlite import SQLiteGenerator

from ... import errors
from ...errors import NotSupportedError
from ...jsonb_text import jsonb_number_text
from ...sql.rules.name_table_functions import TABLE_FUNCTION, TABLE_FUNCTIONS
from ...sql.tree import is_json, is_untyped, kind_of, numeric_literal_text
from .text_dialect import LOOMDB_COLLATION

_Transform = Callable[[SQLiteGenerator, Any], str]
_T = exp.DataType.Type
_INTEGERS = {_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT}
_FLOATS = {_T.FLOAT, _T.DOUBLE}
_TEXTS = {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR, _T.UUID}
# Types whose JSON text loomdb on SQLite would not write as PostgreSQL does.
_REFUSED_IN_JSON = {
    _T.TIMESTAMP: "timestamp",
    _T.TIMESTAMPTZ: "timestamptz",
    _T.DATETIME: "timestamp",
    _T.VARBINARY: "bytea",
    _T.BINARY: "bytea",
    _T.VECTOR: "vector",
    _T.INTERVAL: "interval",
}
_PG_TYPE_NAMES = {
    _T.SMALLINT: "smallint",
    _T.INT: "integer",
    _T.BIGINT: "bigint",
    _T.DECIMAL: "numeric",
    _T.DOUBLE: "double precision",
    _T.FLOAT: "real",
    _T.TEXT: "text",
    _T.VARCHAR: "character varying",
    _T.BOOLEAN: "boolean",
    _T.JSONB: "jsonb",
    _T.JSON: "json",
}


def json_value(self: SQLiteGenerator, node: Any) -> str:
    """``node`` as an argument of SQLite's JSON builders, so that it lands as
    PostgreSQL puts it in JSON: jsonb nested, booleans as true/false, numeric
    literals and NUMERIC values as numbers with their digits, others as they are."""
    sql = self.sql(node)
    kind = kind_of(node)
    literal = numeric_literal_text(node)
    if literal is not None:
        return f"json({self.sql(exp.Literal.string(jsonb_number_text(Decimal(literal))))})"
    if is_json(node):
        return f"json({sql})"
    if kind == _T.BOOLEAN:
        return f"(CASE WHEN {sql} IS NULL THEN NULL WHEN {sql} THEN json('true') ELSE json('false') END)"
    if kind == _T.DECIMAL:
        return f"json({sql})"
    if kind in _FLOATS:
        return f"json(loom_json_float({sql}, {32 if kind == _T.FLOAT else 64}))"
    if kind in _REFUSED_IN_JSON:
        raise NotSupportedError(
            f"a {_REFUSED_IN_JSON[kind]} value inside JSON is not supported by loomdb on SQLite"
            " (its JSON text differs from PostgreSQL's; cast it to text first)"
        )
    return sql


def _json_key(self: SQLiteGenerator, node: Any) -> str:
    """``node`` as an object key: its text as PostgreSQL writes it (true/false, a numeric's digits)."""
    sql = self.sql(node)
    kind = kind_of(node)
    literal = numeric_literal_text(node)
    if literal is not None:
        return self.sql(exp.Literal.string(jsonb_number_text(Decimal(literal))))
    if kind in _TEXTS or is_untyped(node):
        return sql
    if kind == _T.BOOLEAN:
        return f"(CASE WHEN {sql} IS NULL THEN NULL WHEN {sql} THEN 'true' ELSE 'false' END)"
    if kind in _FLOATS:
        return f"loom_json_float({sql}, {32 if kind == _T.FLOAT else 64})"
    return f"CAST({sql} AS TEXT)"


def _checked_key(self: SQLiteGenerator, node: Any, position: int) -> str:
    """An object key of a JSON builder (argument ``position``): a NULL one raises
    22023 as in PostgreSQL (at once for a NULL literal, else when it runs)."""
    inner = node.this if isinstance(node, exp.Cast) else node
    if isinstance(inner, exp.Null):
        raise errors.DataError(f"argument {position}: key must not be null", sqlstate="22023")
    key = _json_key(self, node)
    if isinstance(node, (exp.Literal, exp.Boolean)):
        return key
    return f"loom_json_key({key}, {position})"


def _to_jsonb(self: SQLiteGenerator, e: exp.Anonymous) -> str:
    """``to_jsonb(x)``/``to_json(x)`` for text, numbers, booleans and JSON;
    NotSupportedError for other types (their JSON text differs on SQLite)."""
    name = str(e.this).lower()
    if len(e.expressions) != 1:
        raise errors.ProgrammingError(f"function {name}() takes one argument", sqlstate="42883")
    arg = e.expressions[0]
    kind = kind_of(arg)
    if (
        numeric_literal_text(arg) is not None
        or is_json(arg)
        or kind in (_T.BOOLEAN, _T.DECIMAL, _T.DATE)
        or kind in _FLOATS
        or kind in _INTEGERS
        or kind in _TEXTS
        or is_untyped(arg)
    ):
        return _json_of(self, arg)
    raise NotSupportedError(
        f"{name}() of {arg.type.sql() if isinstance(arg, exp.Expression) and arg.type else 'this type'}"
        " is not supported by loomdb on SQLite"
    )


def _json_of(self: SQLiteGenerator, arg: exp.Expr) -> str:
    """The JSON text of one value put into JSON (see :func:`json_value`); NULL for NULL."""
    sql = self.sql(arg)
    return f"(CASE WHEN {sql} IS NULL THEN NULL ELSE (json_array({json_value(self, arg)}) -> '$[0]') END)"


def _builder(name: str, pairs: bool) -> _Transform:
    """``json[b]_build_object``/``_array`` as SQLite's ``name`` over :func:`json_value` arguments."""

    def generate(self: SQLiteGenerator, e: exp.Anonymous) -> str:
        args = list(e.expressions)
        if pairs and len(args) % 2:
            raise errors.DataError("argument list must have even number of elements", sqlstate="22023")
        out = []
        for i, arg in enumerate(args):
            if pairs and i % 2 == 0:
                out.append(_checked_key(self, arg, i + 1))
            else:
                out.append(json_value(self, arg))
        return f"{name}({', '.join(out)})"

    return generate


def _array_agg(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``json[b]_agg(x [ORDER BY ...])`` as ``json_group_array`` of :func:`json_value`."""
    arg = e.this if isinstance(e, exp.JSONArrayAgg) else e.expressions[0]
    order = ""
    if isinstance(arg, exp.Order):
        # The parser gave each key PostgreSQL's NULL order, which the generator spells out.
        order = " " + self.op_expressions("ORDER BY", arg, flat=True)
        arg = arg.this
    distinct = ""
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
        distinct, arg = "DISTINCT ", arg.expressions[0]
    return f"json_group_array({distinct}{json_value(self, arg)}{order})"


def _object_agg(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``json[b]_object_agg(key, value)`` as SQLite's ``json_group_object``."""
    return f"json_group_object({_json_key(self, e.this)}, {json_value(self, e.expression)})"


def _call(name: str) -> _Transform:
    def generate(self: SQLiteGenerator, e: exp.Anonymous) -> str:
        return self.func(name, *e.expressions)

    return generate


def _array_length(self: SQLiteGenerator, e: exp.Anonymous) -> str:
    """``jsonb_array_length``: SQLite's for an array, the error PostgreSQL raises otherwise."""
    doc = self.sql(e.expressions[0])
    return (
        f"(CASE WHEN json_type({doc}) = 'array' THEN json_array_length({doc})"
        f" ELSE loom_jsonb_array_length({doc}) END)"
    )


def _typeof(self: SQLiteGenerator, e: exp.Anonymous) -> str:
    """``jsonb_typeof``: SQLite's json_type in PostgreSQL's names."""
    doc = self.sql(e.expressions[0])
    return (
        f"(CASE json_type({doc}) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number'"
        f" WHEN 'text' THEN 'string' WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean'"
        f" ELSE json_type({doc}) END)"
    )


#: The set-returning functions of one value a row that may stand in the select list.
_SELECT_LIST_SRFS = (
    "jsonb_array_elements",
    "json_array_elements",
    "jsonb_array_elements_text",
    "json_array_elements_text",
    "jsonb_object_keys",
    "json_object_keys",
)


def select_list_functions(tree: exp.Expr) -> exp.Expr:
    """A set-returning function of one column in the select list (``SELECT id,
    jsonb_array_elements_text(tags) FROM t``) as PostgreSQL runs it: a join
    with the function in FROM (a row per element; none for an empty or NULL
    value), when it is the only one and the SELECT neither groups nor aggregates;
    other uses are left to be refused."""
    for select in list(tree.find_all(exp.Select)):
        calls = [
            node
            for item in select.expressions
            for node in item.find_all(exp.Anonymous)
            if str(node.this).lower() in TABLE_FUNCTIONS
        ]
        if len(calls) != 1 or str(calls[0].this).lower() not in _SELECT_LIST_SRFS:
            continue
        call = calls[0]
        if (
            select.args.get("group")
            or select.args.get("distinct")
            or select.find(exp.AggFunc, exp.Window)
            or len(call.expressions) != 1
            or call.find_ancestor(exp.Case, exp.If, exp.Coalesce) is not None  # PostgreSQL refuses these
        ):
            continue
        name = str(call.this).lower()
        alias = f"_loom_srf_{id(call)}"
        column = exp.column("value", table=alias)
        column.meta[TABLE_FUNCTION] = (name, 0)
        column.type = exp.DataType.build(
            "TEXT" if name.endswith(("_text", "keys")) else "JSONB", dialect="postgres"
        )
        table = exp.Table(
            this=exp.Anonymous(this=call.this, expressions=[call.expressions[0].copy()]),
            alias=exp.TableAlias(this=exp.to_identifier(alias), columns=[exp.to_identifier("value")]),
        )
        call.replace(column)
        if select.args.get("from_"):
            select.append("joins", exp.Join(this=table))
        else:
            select.set("from_", exp.From(this=table))
    return tree


def _refuse_srf(self: SQLiteGenerator, e: exp.Anonymous) -> str:
    name = str(e.this).lower()
    raise NotSupportedError(
        f"{name}() in the select list is not supported by loomdb on SQLite (use it in FROM: SELECT ... FROM {name}(...))"
    )


#: Anonymous calls (by upper-case name) the JSON rules write.
JSON_CALLS: dict[str, _Transform] = {
    "JSONB_SET": _call("loom_jsonb_set"),
    "JSONB_INSERT": _call("loom_jsonb_insert"),
    "JSONB_STRIP_NULLS": _call("loom_jsonb_strip_nulls"),
    "JSONB_PRETTY": _call("loom_jsonb_pretty"),
    "JSON_STRIP_NULLS": _call("loom_jsonb_strip_nulls"),
    "JSONB_ARRAY_LENGTH": _array_length,
    "JSON_ARRAY_LENGTH": _array_length,
    "JSONB_TYPEOF": _typeof,
    "JSON_TYPEOF": _typeof,
    "TO_JSONB": _to_jsonb,
    "TO_JSON": _to_jsonb,
    "JSONB_BUILD_OBJECT": _builder("json_object", pairs=True),
    "JSON_BUILD_OBJECT": _builder("json_object", pairs=True),
    "JSONB_BUILD_ARRAY": _builder("json_array", pairs=False),
    "JSON_BUILD_ARRAY": _builder("json_array", pairs=False),
    "JSONB_AGG": _array_agg,
    **{name.upper(): _refuse_srf for name in TABLE_FUNCTIONS},
}


# -- extraction ------------------------------------------------------------------------


def _simple_path(path: exp.Expr) -> str | None:
    """A constant text-array path of keys (no element a number, no quoting) as
    a SQLite JSON path; None for any other path (taken by jsonb's own function)."""
    if not (isinstance(path, exp.Literal) and path.is_string):
        return None
    body = path.this.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return None
    parts = [p.strip() for p in body[1:-1].split(",")]
    out = "$"
    for part in parts:
        if (
            not part
            or part.lstrip("-").isdigit()
            or any(c in part for c in '"\\{}.[]$ ')
            or part.upper() == "NULL"
        ):
            return None
        out += f'."{part}"'
    return out


def _text_case(kind: str, raw: str, string: str) -> str:
    """PostgreSQL's text of a JSON value of SQLite type ``kind`` (json_type's
    answer), JSON text ``raw``: a string (``string``) unquoted, a boolean as
    true/false, null as NULL, a number's digits as stored (as jsonb prints them
    unless they hold an exponent or a negative zero), containers as jsonb prints them."""
    return (
        f"(CASE {kind} WHEN 'text' THEN {string}"
        f" WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'integer' THEN {raw}"
        f" WHEN 'real' THEN (CASE WHEN {raw} GLOB '*[eE]*' OR {raw} GLOB '-0*' THEN loom_jsonb_text({raw})"
        f" ELSE {raw} END)"
        f" WHEN 'object' THEN loom_jsonb_text({raw}) WHEN 'array' THEN loom_jsonb_text({raw}) END)"
    )


def text_of(doc: str, path: str) -> str:
    """``doc ->> path`` as PostgreSQL's text (see :func:`_text_case`)."""
    return _text_case(f"json_type({doc}, {path})", f"({doc} -> {path})", f"({doc} ->> {path})")


def _path_extract(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``doc #> path``."""
    path = _simple_path(e.expression)
    if path is None:
        return self.func("loom_jsonb_extract_path", e.this, e.expression)
    return f"({self.sql(e.this)} -> {self.sql(exp.Literal.string(path))})"


def _path_extract_text(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``doc #>> path``."""
    path = _simple_path(e.expression)
    if path is None:
        return self.func("loom_jsonb_extract_path_text", e.this, e.expression)
    return text_of(self.sql(e.this), self.sql(exp.Literal.string(path)))


def _arrow_text(self: SQLiteGenerator, e: exp.JSONExtractScalar) -> str:
    """``doc ->> key`` (or index)."""
    arrow_json_extract_sql(self, e)  # validates the path as sqlglot does
    doc = self.sql(e.this)
    path = self.sql(e.expression)
    if not isinstance(e.expression, exp.JSONPath):
        # A key or index given at run time (a parameter): as a JSON path.
        path = f"(CASE WHEN typeof({path}) = 'integer' THEN '$[' || {path} || ']' ELSE '$.\"' || {path} || '\"' END)"
    return text_of(doc, path)


def _has_key(self: SQLiteGenerator, e: exp.Expr) -> str:
    """jsonb's ``doc ? key``: an object's key (SQLite's lookup for a plain key),
    an array's string element, a string scalar equal to it; NULL for NULL."""
    key = e.expression
    doc = self.sql(e.this)
    if isinstance(key, exp.Literal) and key.is_string and not any(c in key.this for c in '"\\'):
        path = self.sql(exp.Literal.string('$."' + key.this + '"'))
        return (
            f"(CASE WHEN json_type({doc}) = 'object' THEN json_type({doc}, {path}) IS NOT NULL"
            f" ELSE loom_jsonb_exists({doc}, {self.sql(key)}) END)"
        )
    return self.func("loom_jsonb_exists", e.this, key)


def _is_jsonb_comparison(e: Any) -> bool:
    a, b = e.this, e.expression
    return (is_json(a) and (is_json(b) or is_untyped(b))) or (is_json(b) and is_untyped(a))


def _equality(negate: bool) -> _Transform:
    """``=``/``<>``: jsonb's equality (numbers by value) when a side is jsonb."""

    def generate(self: SQLiteGenerator, e: Any) -> str:
        if not _is_jsonb_comparison(e):
            return self.neq_sql(e) if negate else self.eq_sql(e)
        call = self.func("loom_jsonb_eq", e.this, e.expression)
        return f"(NOT {call})" if negate else call

    return generate


def _in_list(self: SQLiteGenerator, e: exp.In) -> str:
    """``x IN (a, b)`` over jsonb: an OR of jsonb's equalities (NULL as IN gives it)."""
    items = e.expressions
    if not (is_json(e.this) and items and not e.args.get("query")) or not all(
        is_json(i) or is_untyped(i) for i in items
    ):
        return self.in_sql(e)
    tests = " OR ".join(self.func("loom_jsonb_eq", e.this, item) for item in items)
    return f"({tests})"


def _type_name(node: Any) -> str:
    if is_json(node):
        return "jsonb"
    if is_untyped(node):
        return "unknown"
    if numeric_literal_text(node) is not None:
        return "numeric" if "." in (numeric_literal_text(node) or "") else "integer"
    kind = kind_of(node)
    return _PG_TYPE_NAMES.get(kind, "unknown") if kind is not None else "unknown"


def _plus(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``+``: ProgrammingError 42883 when a side is jsonb (PostgreSQL has no such operator)."""
    assert isinstance(e, exp.Binary)
    if is_json(e.this) or is_json(e.expression):
        raise errors.ProgrammingError(
            f"operator does not exist: {_type_name(e.this)} + {_type_name(e.expression)}", sqlstate="42883"
        )
    return self.binary(e, "+")


# -- jsonb's ordering -------------------------------------------------------------------

_ORDERINGS = (exp.GT, exp.GTE, exp.LT, exp.LTE)


def _collated(node: exp.Expr) -> exp.Expr:
    collate = exp.Collate(this=node, expression=exp.Var(this="loom_jsonb"))
    collate.meta[LOOMDB_COLLATION] = True  # loomdb's own, not one the query named
    return collate


def jsonb_order(tree: exp.Expr) -> exp.Expr:
    """Every ORDER BY key and every <, <=, >, >= over jsonb compared in
    PostgreSQL's jsonb order (the ``loom_jsonb`` collation), not as text."""
    for node in list(tree.find_all(exp.Ordered, *_ORDERINGS)):
        if isinstance(node, exp.Ordered):
            if is_json(node.this):
                node.set("this", _collated(node.this))
        elif _is_jsonb_comparison(node):
            node.set("this", _collated(node.this))
    return tree


# -- set-returning functions in FROM, over SQLite's json_each ----------------------------


def _table(self: SQLiteGenerator, e: exp.Table) -> str:
    """A JSON set-returning function in FROM as SQLite's ``json_each`` (its
    columns read by :func:`_column`), its argument checked as PostgreSQL does."""
    func = e.this
    name = str(func.this).lower() if isinstance(func, exp.Anonymous) else None
    if name not in TABLE_FUNCTIONS:
        return self.table_sql(e)
    if len(func.expressions) != 1:
        raise errors.ProgrammingError(f"function {name}() takes one argument", sqlstate="42883")
    objects = "each" in name or "keys" in name
    if objects and e.args.get("ordinality"):
        raise NotSupportedError(
            f"{name}() WITH ORDINALITY is not supported by loomdb on SQLite (jsonb's key order is not kept)"
        )
    source = "loom_jsonb_object_source" if objects else "loom_jsonb_array_source"
    alias = e.args["alias"]
    return f"json_each({self.func(source, func.expressions[0])}) AS {self.sql(alias, 'this')}"


def _column(self: SQLiteGenerator, e: exp.Column) -> str:
    """A column; one of a JSON set-returning function's as read off ``json_each``."""
    found = e.meta.get(TABLE_FUNCTION)
    if found is None:
        return self.column_sql(e)
    name, index = found
    alias = self.sql(e, "table")
    if index == len(TABLE_FUNCTIONS[name]):  # WITH ORDINALITY's, over an array
        return f"({alias}.key + 1)"
    if name.endswith("keys") or (name.endswith("each") or name.endswith("each_text")) and index == 0:
        return f"{alias}.key"
    element = f"({alias}.json -> {alias}.fullkey)"
    if not name.endswith("_text"):
        return element
    return _text_case(f"{alias}.type", element, f"{alias}.value")


#: sqlglot's expressions for jsonb's operators.
JSON_TRANSFORMS: dict[type[exp.Expr], _Transform] = {
    exp.ArrayContainsAll: lambda self, e: self.func("loom_jsonb_contains", e.this, e.expression),
    exp.ArrayContainedBy: lambda self, e: self.func("loom_jsonb_contained", e.this, e.expression),
    exp.JSONBExtract: _path_extract,
    exp.JSONBExtractScalar: _path_extract_text,
    exp.JSONExtractScalar: _arrow_text,
    exp.JSONBContainsTopKey: _has_key,
    exp.JSONBDeleteAtPath: lambda self, e: self.func("loom_jsonb_delete_path", e.this, e.expression),
    exp.JSONBObjectAgg: _object_agg,
    exp.JSONObjectAgg: _object_agg,
    exp.JSONArrayAgg: _array_agg,
    exp.EQ: _equality(negate=False),
    exp.NEQ: _equality(negate=True),
    exp.Add: _plus,
    exp.In: _in_list,
    exp.Table: _table,
    exp.Column: _column,
}
