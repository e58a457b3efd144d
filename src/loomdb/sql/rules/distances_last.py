"""Sort the rows without a vector last when ordering by an ascending vector
distance, as pgvector does: they have no distance.

>>> from loomdb.sql.dialect import LoomPostgres
>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT, e VECTOR(3)")
>>> distances_last(tree_of("SELECT id FROM t ORDER BY e <=> $1 LIMIT 5"), ctx).sql(LoomPostgres)
'SELECT id FROM t ORDER BY e <=> $1 NULLS LAST LIMIT 5'
>>> distances_last(tree_of("SELECT id FROM t ORDER BY e <-> $1 DESC, id"), ctx).sql(LoomPostgres)
'SELECT id FROM t ORDER BY e <-> $1 DESC, id'
"""

from __future__ import annotations

from sqlglot import exp

from ..dialect import VECTOR_OPERATORS
from .context import Context


def distances_last(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Mark every ascending ORDER BY key that is a vector operator NULLS LAST
    (a descending one already sorts NULLs last in both engines' conventions).
    """
    for node in tree.find_all(exp.Ordered):
        if isinstance(node.this, VECTOR_OPERATORS) and not node.args.get("desc"):
            node.set("nulls_first", False)
    return tree
