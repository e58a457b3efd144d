"""What the compile rules read off a PostgreSQL query tree: the stored tables
it names, the names and loomdb types of its result columns.

>>> from loomdb.sql.dialect import parse
>>> tree = parse('WITH r AS (SELECT 1) SELECT "Id", j->\\'a\\' FROM Notes, r')
>>> [table_key(t) for t in user_tables(tree)]
['notes']
>>> [output_name(p) for p in projections(tree)]
['Id', '?column?']
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from ..types import INTERVAL_ANY, JSON_ANY, VECTOR_ANY, ColumnType
from .dialect import WRITTEN_NAME

_T = exp.DataType.Type

# The loomdb type of each plain sqlglot type (JSON, VECTOR and DECIMAL carry
# parameters and are read in column_type_of).
_PLAIN_TYPES = {
    _T.SMALLINT: "SMALLINT",
    _T.INT: "INT",
    _T.BIGINT: "BIGINT",
    _T.TEXT: "TEXT",
    _T.VARCHAR: "VARCHAR",
    _T.CHAR: "CHAR",
    _T.TIMESTAMP: "TIMESTAMP",
    _T.TIMESTAMPTZ: "TIMESTAMPTZ",
    _T.DATE: "DATE",
    _T.BOOLEAN: "BOOLEAN",
    _T.UUID: "UUID",
    _T.VARBINARY: "BYTEA",
    _T.BINARY: "BYTEA",
    _T.DOUBLE: "DOUBLE PRECISION",
    _T.FLOAT: "REAL",
}


def kind_of(node: exp.Expr) -> Any:
    """The annotated type of ``node`` (None when it has none)."""
    dtype = node.type if isinstance(node, exp.Expression) else None
    return None if dtype is None else dtype.this


def numeric_literal_text(node: exp.Expr) -> str | None:
    """The text of a number literal (under parentheses and signs), else None.

    >>> numeric_literal_text(exp.Paren(this=exp.Neg(this=exp.Literal.number("2.50"))))
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


def user_tables(tree: exp.Expression) -> list[exp.Table]:
    """The table references of ``tree`` that name stored tables, in tree order:
    not CTEs (unless schema-qualified) and not table functions."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    out = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        if table.name in ctes and not table.args.get("db"):
            continue
        out.append(table)
    return out


def table_key(table: exp.Table) -> str:
    """The catalog name of a table reference: PostgreSQL folds unquoted names
    to lower case and keeps quoted ones as written.

    >>> from loomdb.sql.dialect import parse
    >>> [table_key(t) for t in parse('SELECT 1 FROM Notes, "Notes"').find_all(exp.Table)]
    ['notes', 'Notes']
    """
    ident = table.this
    return ident.this if ident.quoted else ident.this.lower()


def projections(tree: exp.Expr) -> list[exp.Expression]:
    """The result columns of a query (a set operation's are its first
    branch's); none for anything else."""
    if isinstance(tree, exp.Query):
        return list(tree.selects)
    return []


def set_operation_branches(tree: exp.SetOperation) -> list[exp.Select]:
    """The SELECTs whose rows the set operation ``tree`` combines (through nested
    set operations and parentheses, not subqueries inside a branch).

    >>> from loomdb.sql.dialect import parse
    >>> [b.sql() for b in set_operation_branches(parse("SELECT 1 UNION (SELECT 2 EXCEPT SELECT x FROM (SELECT 3 AS x) s)"))]
    ['SELECT 1', 'SELECT 2', 'SELECT x FROM (SELECT 3 AS x) AS s']
    """
    out = []
    for select in tree.find_all(exp.Select):
        node = select.parent
        while isinstance(node, (exp.Subquery, exp.Paren, exp.SetOperation)) and node is not tree:
            if isinstance(node, exp.Subquery) and not isinstance(
                node.parent, (exp.SetOperation, exp.Subquery, exp.Paren)
            ):
                break
            node = node.parent
        if node is tree:
            out.append(select)
    return out


def output_name(node: exp.Expr) -> str:
    """The column name PostgreSQL gives the result column ``node`` (its
    FigureColname); an alias sqlglot invented (``_col_0``) does not count.

    >>> from loomdb.sql.dialect import parse
    >>> sql = "SELECT count(*), a AS b, t.c::text, e <-> $1, substr(b, 2), 1::int, CASE WHEN a THEN 1 END FROM t"
    >>> [output_name(p) for p in parse(sql).selects]
    ['count', 'b', 'c', '?column?', 'substr', 'int4', 'case']
    >>> sql = "SELECT extract(year FROM a), date_part('year', a), ARRAY[1], (1, 2), INTERVAL '1 day', '{1}'::int[], TRUE"
    >>> [output_name(p) for p in parse(sql).selects]
    ['extract', 'date_part', 'array', 'row', 'interval', 'int4', '?column?']
    >>> [output_name(p) for p in parse('SELECT pg_catalog.lower(a), "MyFunc"(1), (t).f FROM t').selects]
    ['lower', 'MyFunc', 'f']
    """
    if isinstance(node, exp.Alias):
        alias = node.alias
        if not alias.startswith("_col_"):
            return alias
        node = node.this
    return _figure(node)[0] or "?column?"


# Nodes of special syntax PostgreSQL names as functions (their calls record the written name).
_SYNTAX_NAMES: dict[type[exp.Expr], str] = {
    exp.CurrentDate: "current_date",
    exp.CurrentTime: "current_time",
    exp.CurrentTimestamp: "current_timestamp",
    exp.Localtime: "localtime",
    exp.Localtimestamp: "localtimestamp",
    exp.CurrentUser: "current_user",
    exp.CurrentRole: "current_role",
    exp.SessionUser: "session_user",
    exp.CurrentSchema: "current_schema",
    exp.CurrentCatalog: "current_catalog",
    exp.Exists: "exists",
    exp.Array: "array",
    exp.Tuple: "row",
    exp.AtTimeZone: "timezone",
    exp.Interval: "interval",
}

_TRIM_NAMES = {"LEADING": "ltrim", "TRAILING": "rtrim"}


def _figure(node: exp.Expr | None) -> tuple[str | None, int]:
    """PostgreSQL's FigureColnameInternal: a name for ``node`` (None: none) and how
    sure it is (2: a column, function or subquery's name; 1: a cast's type or
    ``case``; 0: nothing)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if node is None:
        return None, 0
    if isinstance(node, exp.Column):
        return (None, 0) if node.is_star else (node.name, 2)
    if isinstance(node, exp.Dot):
        # schema.function(...) is named by its function, (row).field by its field.
        return _figure(node.expression) if isinstance(node.expression, exp.Func) else (node.name, 2)
    if isinstance(node, (exp.Bracket, exp.Collate, exp.Window, exp.Filter, exp.WithinGroup)):
        return _figure(node.this)
    written = node.meta.get(WRITTEN_NAME)
    if isinstance(node, exp.Trim):
        return _TRIM_NAMES.get(str(node.args.get("position") or "").upper(), "btrim"), 2
    if written:
        return str(written).lower(), 2
    if isinstance(node, exp.Cast):
        name, strength = _figure(node.this)
        if strength == 2:
            return name, 2
        return type_name(node.to), 1
    if isinstance(node, exp.Subquery):
        inner = node.this
        while isinstance(inner, exp.Subquery):
            inner = inner.this
        if isinstance(inner, exp.Values):
            return "column1", 2
        selects = projections(inner)
        if selects and not isinstance(selects[0], exp.Star):
            return output_name(selects[0]), 2
        return None, 0
    if isinstance(node, exp.Case):
        name, strength = _figure(node.args.get("default"))
        return (name, 2) if strength == 2 else ("case", 1)
    if isinstance(node, exp.Anonymous):
        name = node.this
        if isinstance(name, exp.Identifier):
            return (name.this if name.quoted else name.this.lower()), 2
        return str(name).lower(), 2
    name = _SYNTAX_NAMES.get(type(node))
    return (name, 2) if name else (None, 0)


# PostgreSQL's internal names of the types sqlglot reads under other names.
_TYPE_NAMES = {
    _T.INT: "int4",
    _T.BIGINT: "int8",
    _T.SMALLINT: "int2",
    _T.DECIMAL: "numeric",
    _T.FLOAT: "float4",
    _T.DOUBLE: "float8",
    _T.BOOLEAN: "bool",
    _T.CHAR: "bpchar",
    _T.VARBINARY: "bytea",
}


def type_name(dtype: exp.DataType) -> str:
    """The name PostgreSQL gives a cast to ``dtype``'s result column: the type's
    internal name, without modifiers (an array is named by its element type).

    >>> from loomdb.sql.dialect import parse
    >>> [type_name(parse(f"SELECT 1::{t}").selects[0].to) for t in ("integer", "numeric(10, 2)", "real", "vector(3)", "text[]")]
    ['int4', 'numeric', 'float4', 'vector', 'text']
    """
    if dtype.this == _T.ARRAY and dtype.expressions:
        return type_name(dtype.expressions[0])
    if dtype.this == _T.USERDEFINED and dtype.args.get("kind"):
        kind = str(dtype.args["kind"]).split(".")[-1].split("(")[0]
        return kind[1:-1] if kind.startswith('"') and kind.endswith('"') else kind.lower()
    name = _TYPE_NAMES.get(dtype.this)
    if name:
        return name
    return dtype.sql(dialect="postgres").split("(")[0].split("[")[0].strip().lower()


def column_type_of(dtype: exp.DataType | None) -> ColumnType | None:
    """The loomdb type of a type sqlglot annotated; None where loomdb has no
    such type (the value is then returned as the engine gives it).

    >>> column_type_of(exp.DataType.build("VECTOR(3)", dialect="postgres"))
    ColumnType(kind='vector', sql='VECTOR(3)', dim=3)
    >>> column_type_of(exp.DataType.build("NUMERIC(10, 2)", dialect="postgres")).sql
    'NUMERIC(10, 2)'
    >>> column_type_of(exp.DataType.build("INTERVAL", dialect="postgres")).kind
    'interval'
    """
    if dtype is None:
        return None
    kind = dtype.this
    if kind in (_T.JSON, _T.JSONB):
        return JSON_ANY
    if kind == _T.INTERVAL:
        return INTERVAL_ANY
    if kind == _T.VECTOR:
        try:
            return ColumnType.parse(dtype.sql(dialect="postgres")) if dtype.expressions else VECTOR_ANY
        except Exception:
            return VECTOR_ANY
    if kind == _T.DECIMAL:
        try:
            return ColumnType.parse(dtype.sql(dialect="postgres").replace("DECIMAL", "NUMERIC", 1))
        except Exception:
            return ColumnType.parse("NUMERIC")
    name = _PLAIN_TYPES.get(kind)
    return ColumnType.parse(name) if name else None


_JSON_TYPES = (_T.JSON, _T.JSONB)

#: PostgreSQL's functions whose result is json or jsonb (sqlglot parses them
#: as anonymous calls), by lower-case name.
JSON_FUNCTIONS = frozenset(
    {
        "array_to_json",
        "json_build_array",
        "json_build_object",
        "json_object",
        "json_strip_nulls",
        "jsonb_agg",
        "jsonb_build_array",
        "jsonb_build_object",
        "jsonb_insert",
        "jsonb_object",
        "jsonb_set",
        "jsonb_set_lax",
        "jsonb_strip_nulls",
        "row_to_json",
        "to_json",
        "to_jsonb",
    }
)
#: The JSON-building nodes sqlglot parses into nodes of their own (and jsonb's ``#-``).
JSON_NODES = (
    exp.JSONArrayAgg,
    exp.JSONBObjectAgg,
    exp.JSONObjectAgg,
    exp.JSONObject,
    exp.JSONArray,
    exp.JSONBDeleteAtPath,
)


def is_json(node: exp.Expression) -> bool:
    """Whether ``node`` is a json or jsonb value: by its annotated type, an
    arrow extract or a function returning JSON.

    >>> is_json(exp.cast(exp.Literal.string("{}"), "jsonb"))
    True
    >>> is_json(exp.Anonymous(this="to_jsonb", expressions=[exp.Literal.number(1)]))
    True
    """
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, (exp.JSONExtract, exp.JSONBExtract, *JSON_NODES)):
        return True
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in JSON_FUNCTIONS:
        return True
    return node.type is not None and node.type.this in _JSON_TYPES


def is_untyped(node: exp.Expression) -> bool:
    """A string literal or a parameter: PostgreSQL gives it the other operand's type."""
    return (isinstance(node, exp.Literal) and node.is_string) or isinstance(
        node, (exp.Parameter, exp.Placeholder)
    )


def is_jsonb_concat(node: exp.Expression) -> bool:
    """Whether ``node`` is jsonb's ``||`` (an operand jsonb, the other jsonb or untyped),
    not text concatenation.

    >>> doc = exp.cast(exp.Literal.string("{}"), "jsonb")
    >>> is_jsonb_concat(exp.DPipe(this=doc, expression=exp.Literal.string('[1]')))
    True
    >>> is_jsonb_concat(exp.DPipe(this=exp.Literal.string("a"), expression=exp.Literal.string("b")))
    False
    """
    if not isinstance(node, exp.DPipe):
        return False
    a, b = node.this, node.expression
    return (is_json(a) and (is_json(b) or is_untyped(b))) or (is_json(b) and is_untyped(a))
