"""Record the loomdb type of each result column in the root's ``meta[TYPES]``
(after ``qualify_query`` typed them): how the engine's values are read back.

``->`` yields JSON whatever sqlglot infers, and ``->>`` text to leave as the
engine gives it (None). The functions that build JSON yield JSON too, so
their values come back as dicts and lists, as psycopg returns PostgreSQL's.

>>> from loomdb.sql.rules.context import TYPES, Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, j JSONB, e VECTOR(3)")
>>> tree = type_outputs(qualify_query(tree_of("SELECT id, e, j->'a', j->>'a', count(*) FROM t"), ctx), ctx)
>>> [None if t is None else t.sql for t in tree.meta[TYPES]]
['INT', 'VECTOR(3)', 'JSONB', None, 'BIGINT']
>>> tree = type_outputs(qualify_query(tree_of("SELECT jsonb_build_object('a', id), json_agg(id) FROM t"), ctx), ctx)
>>> [None if t is None else t.sql for t in tree.meta[TYPES]]
['JSONB', 'JSONB']
>>> type_outputs(qualify_query(tree_of("VALUES (1, 'a')"), ctx), ctx).meta[TYPES]
(None, None)
"""

from __future__ import annotations

from sqlglot import exp

from ...types import JSON_ANY, VECTOR_ANY, ColumnType
from ..tree import (
    JSON_FUNCTIONS,
    JSON_NODES,
    column_type_of,
    is_json,
    is_jsonb_concat,
    projections,
    set_operation_branches,
)
from .context import TYPES, Context
from .name_table_functions import TABLE_FUNCTION, type_table_function_columns

#: pgvector's functions whose result is a vector, by lower-case name.
VECTOR_FUNCTIONS = frozenset({"l2_normalize", "subvector"})
#: Set-returning functions whose values are JSON, called in the select list.
_JSON_ROWS = ("jsonb_array_elements", "json_array_elements")


def type_outputs(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[TYPES]`` set: one loomdb type (or None)
    per result column, in order (VALUES' columns: numeric where numerics meet
    integers and NULLs, else None, read as the engine gives them)."""
    if isinstance(tree, exp.Values):
        rows = tree.expressions
        width = len(rows[0].expressions) if rows and isinstance(rows[0], exp.Tuple) else 0
        tree.meta[TYPES] = tuple(_values_type(rows, i) for i in range(width))
        return tree
    type_table_function_columns(tree)
    types = [_output_type(p) for p in projections(tree)]
    if isinstance(tree, exp.SetOperation):
        types = _set_operation_types(tree, types)
    tree.meta[TYPES] = tuple(types)
    return tree


def _values_type(rows: list[exp.Expression], i: int) -> ColumnType | None:
    """The type of VALUES' column ``i``: numeric where a numeric meets only integers
    and NULLs (``VALUES (1.5), (2)``), else None."""
    kinds = set()
    for row in rows:
        items = row.expressions if isinstance(row, exp.Tuple) else []
        item = items[i] if i < len(items) else None
        if item is not None and not isinstance(item, exp.Null):
            kinds.add(item.type.this if item.type else None)
    if exp.DataType.Type.DECIMAL in kinds and kinds <= _NUMBERS:
        return ColumnType.parse("NUMERIC")
    return None


_NUMBERS = {
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
}


def _set_operation_types(tree: exp.SetOperation, types: list[ColumnType | None]) -> list[ColumnType | None]:
    """A set operation's result types: the first branch's, except that a column
    where integers meet numerics is numeric, as PostgreSQL resolves it
    (``SELECT 1 UNION SELECT 2.5`` gives numerics)."""
    branches = set_operation_branches(tree)
    for i, ctype in enumerate(types):
        kinds = set()
        for branch in branches:
            if i < len(branch.selects):
                other = _output_type(branch.selects[i])
                kinds.add(None if other is None else other.kind)
        if "numeric" in kinds and kinds <= {"numeric", "int"} and (ctype is None or ctype.kind != "numeric"):
            types[i] = ColumnType.parse("NUMERIC")
    return types


def _output_type(node: exp.Expression) -> ColumnType | None:
    """The loomdb type of the result column ``node``: its annotated type,
    except for JSON operators whose result type sqlglot does not know."""
    inner = node.this if isinstance(node, exp.Alias) else node
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if isinstance(inner, (exp.JSONExtract, exp.JSONBExtract, *JSON_NODES)):
        return JSON_ANY
    if isinstance(inner, exp.Anonymous) and str(inner.this).lower() in (*JSON_FUNCTIONS, *_JSON_ROWS):
        return JSON_ANY
    if isinstance(inner, exp.Anonymous) and str(inner.this).lower() in VECTOR_FUNCTIONS:
        return VECTOR_ANY
    if isinstance(inner, exp.Anonymous) and str(inner.this).lower() == "trim_scale":
        return ColumnType.parse("NUMERIC")
    if is_jsonb_concat(inner) or (isinstance(inner, exp.Sub) and is_json(inner.this)):
        return JSON_ANY
    if isinstance(inner, (exp.JSONExtractScalar, exp.JSONBExtractScalar)):
        return None
    if isinstance(inner, exp.Column) and TABLE_FUNCTION in inner.meta:
        return column_type_of(inner.type)
    return column_type_of(node.type) if node.type else None
