"""Record the result column names of a query that
:mod:`~loomdb.sql.rules.name_outputs` could not name (a star among its
columns, or no columns to read), from its qualified columns: a column
:mod:`~loomdb.sql.rules.name_outputs` named keeps that name, a star's
column is named as its table, subquery or CTE names it, and VALUES' columns
are ``column1``, ``column2``...

>>> from loomdb.sql.rules.context import NAMES, Context, tree_of
>>> from loomdb.sql.rules.name_outputs import name_outputs
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, j JSONB")
>>> def names(sql):
...     tree = qualify_query(name_outputs(tree_of(sql), ctx), ctx)
...     return name_star_outputs(tree, ctx).meta[NAMES]
>>> names("SELECT *, j->'a', 1 AS one FROM t")
('id', 'j', '?column?', 'one')
>>> names("SELECT * FROM (SELECT 1, count(*), id AS k FROM t GROUP BY id) AS s")
('?column?', 'count', 'k')
>>> names("VALUES (1, 2)")
('column1', 'column2')
>>> tree = tree_of("SELECT 1 AS one")
>>> tree.meta[NAMES] = ("as written",)
>>> name_star_outputs(tree, ctx).meta[NAMES]
('as written',)
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

from ..tree import output_name, projections
from .context import NAMES, OUTPUT_NAME, Context


def _recorded(node: exp.Expr) -> str | None:
    """The name name_outputs recorded on a result column (or the expression qualify aliased)."""
    name = node.meta.get(OUTPUT_NAME)
    if name is None and isinstance(node, exp.Alias):
        name = node.this.meta.get(OUTPUT_NAME)
    return name


def _first_select(scope: Scope) -> Scope:
    """The scope of a set operation's first SELECT (``scope`` itself otherwise)."""
    while scope.set_operation_scopes:
        scope = scope.set_operation_scopes[0]
    return scope


def _name(node: exp.Expr, scope: Scope | None) -> str:
    """PostgreSQL's name of the qualified result column ``node`` of ``scope``."""
    name = _recorded(node)
    if name is not None:
        return name
    column = node.this if isinstance(node, exp.Alias) else node
    if isinstance(column, exp.Column) and scope is not None:
        source = scope.sources.get(column.table)
        if isinstance(source, Scope):
            inner = _first_select(source)
            for item in projections(inner.expression):
                if item.alias_or_name == column.name:
                    return _name(item, inner)
    return output_name(node)


def name_star_outputs(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[NAMES]`` set from its (qualified) result
    columns, unless it is set already.
    """
    if NAMES in tree.meta:
        return tree
    if isinstance(tree, exp.Values):
        rows = tree.expressions
        width = len(rows[0].expressions) if rows and isinstance(rows[0], exp.Tuple) else 0
        tree.meta[NAMES] = tuple(f"column{i + 1}" for i in range(width))
        return tree
    written = projections(tree)
    scope = build_scope(tree) if written else None
    scope = _first_select(scope) if scope is not None else None
    tree.meta[NAMES] = tuple(_name(p, scope) for p in written)
    return tree
