"""Record the result column names of a query that
:mod:`~loomdb.sql.rules.name_outputs` could not name (a star among its
columns, or no columns to read), from its qualified columns.

>>> from loomdb.sql.rules.context import NAMES, Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, j JSONB")
>>> name_star_outputs(qualify_query(tree_of("SELECT *, 1 AS one FROM t"), ctx), ctx).meta[NAMES]
('id', 'j', 'one')
>>> tree = tree_of("SELECT 1 AS one")
>>> tree.meta[NAMES] = ("as written",)
>>> name_star_outputs(tree, ctx).meta[NAMES]
('as written',)
"""

from __future__ import annotations

from sqlglot import exp

from ..tree import output_name, projections
from .context import NAMES, Context


def name_star_outputs(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[NAMES]`` set from its (qualified) result
    columns, unless it is set already.
    """
    if NAMES not in tree.meta:
        tree.meta[NAMES] = tuple(output_name(p) for p in projections(tree))
    return tree
