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
from ..tree import JSON_FUNCTIONS, JSON_NODES, column_type_of, is_json, is_jsonb_concat, projections
from .context import TYPES, Context
from .name_table_functions import TABLE_FUNCTION, type_table_function_columns

#: pgvector's functions whose result is a vector, by lower-case name.
VECTOR_FUNCTIONS = frozenset({"l2_normalize", "subvector"})
#: Set-returning functions whose values are JSON, called in the select list.
_JSON_ROWS = ("jsonb_array_elements", "json_array_elements")


def type_outputs(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[TYPES]`` set: one loomdb type (or None)
    per result column, in order (VALUES' columns: None each, read as the
    engine gives them)."""
    if isinstance(tree, exp.Values):
        rows = tree.expressions
        width = len(rows[0].expressions) if rows and isinstance(rows[0], exp.Tuple) else 0
        tree.meta[TYPES] = (None,) * width
        return tree
    type_table_function_columns(tree)
    tree.meta[TYPES] = tuple(_output_type(p) for p in projections(tree))
    return tree


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
    if is_jsonb_concat(inner) or (isinstance(inner, exp.Sub) and is_json(inner.this)):
        return JSON_ANY
    if isinstance(inner, (exp.JSONExtractScalar, exp.JSONBExtractScalar)):
        return None
    if isinstance(inner, exp.Column) and TABLE_FUNCTION in inner.meta:
        return column_type_of(inner.type)
    return column_type_of(node.type) if node.type else None
