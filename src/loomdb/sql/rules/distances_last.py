"""Sort the rows without a vector last when ordering by an ascending vector
distance (an operator or one of pgvector's distance functions), as pgvector
does: they have no distance. An explicit NULLS FIRST/LAST is kept.

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

#: pgvector's distance functions, by lower-case name.
_DISTANCE_FUNCTIONS = frozenset({"l2_distance", "cosine_distance", "inner_product", "l1_distance"})


def _is_distance(node: exp.Expression) -> bool:
    """Whether ``node`` is a vector distance (operator or function)."""
    if isinstance(node, (*VECTOR_OPERATORS, exp.CosineDistance)):
        return True
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in _DISTANCE_FUNCTIONS


def distances_last(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Mark every ascending ORDER BY key that is a vector distance NULLS LAST
    (a descending one already sorts NULLs last in both engines' conventions),
    unless the query says NULLS FIRST or LAST itself.
    """
    for node in tree.find_all(exp.Ordered):
        if node.meta.get("explicit_nulls"):
            continue
        if _is_distance(node.this) and not node.args.get("desc"):
            node.set("nulls_first", False)
    return tree
