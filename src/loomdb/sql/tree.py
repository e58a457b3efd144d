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

from sqlglot import exp

from ..types import JSON_ANY, VECTOR_ANY, ColumnType
from .dialect import VECTOR_OPERATORS

# sqlglot models these operators as functions; PostgreSQL names their results "?column?".
_OPERATOR_FUNCS = (
    exp.JSONExtract,
    exp.JSONExtractScalar,
    exp.JSONBExtract,
    exp.JSONBExtractScalar,
    exp.ArrayContainsAll,
    exp.ArrayContainedBy,
    exp.JSONBContainsTopKey,
)

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


def projections(tree: exp.Expression) -> list[exp.Expression]:
    """The result columns of a query (a set operation's are its first
    branch's); none for anything else."""
    if isinstance(tree, exp.Query):
        return list(tree.selects)
    return []


def output_name(node: exp.Expression) -> str:
    """The column name PostgreSQL gives the result column ``node``; an alias
    sqlglot invented (``_col_0``) does not count.

    >>> from loomdb.sql.dialect import parse
    >>> [output_name(p) for p in parse("SELECT count(*), a AS b, t.c::text, e <-> $1, lower(b) FROM t").selects]
    ['count', 'b', 'c', '?column?', 'lower']
    """
    if isinstance(node, exp.Alias):
        alias = node.alias
        if not alias.startswith("_col_"):
            return alias
        node = node.this
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, (_OPERATOR_FUNCS, VECTOR_OPERATORS)):
        return "?column?"
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    if isinstance(node, exp.Boolean):
        return "bool"
    return "?column?"


def column_type_of(dtype: exp.DataType | None) -> ColumnType | None:
    """The loomdb type of a type sqlglot annotated; None where loomdb has no
    such type (the value is then returned as the engine gives it).

    >>> column_type_of(exp.DataType.build("VECTOR(3)", dialect="postgres"))
    ColumnType(kind='vector', sql='VECTOR(3)', dim=3)
    >>> column_type_of(exp.DataType.build("NUMERIC(10, 2)", dialect="postgres")).sql
    'NUMERIC(10, 2)'
    >>> column_type_of(exp.DataType.build("INTERVAL", dialect="postgres")) is None
    True
    """
    if dtype is None:
        return None
    kind = dtype.this
    if kind in (_T.JSON, _T.JSONB):
        return JSON_ANY
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


def is_json(node: exp.Expression) -> bool:
    """Whether ``node`` is a json or jsonb value: by its annotated type, or an arrow extract.

    >>> is_json(exp.cast(exp.Literal.string("{}"), "jsonb"))
    True
    """
    if isinstance(node, (exp.JSONExtract, exp.JSONBExtract)):
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
