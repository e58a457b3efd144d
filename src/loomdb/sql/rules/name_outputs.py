"""Record the result column names, as PostgreSQL gives them, from what the
user wrote: in the root's ``meta[NAMES]``.

This runs before ``qualify``, which invents aliases (``a`` for ``j->'a'``)
PostgreSQL does not use. A star's columns are only known after ``qualify``:
:mod:`~loomdb.sql.rules.name_star_outputs` names those.

>>> from loomdb.sql.rules.context import NAMES, Context, tree_of
>>> ctx = Context.example(t="id INT, j JSONB")
>>> name_outputs(tree_of("SELECT id AS key, j->'a', count(*) FROM t"), ctx).meta[NAMES]
('key', '?column?', 'count')
>>> NAMES in name_outputs(tree_of("SELECT *, 1 FROM t"), ctx).meta
False
"""

from __future__ import annotations

from sqlglot import exp

from ..tree import output_name, projections
from .context import NAMES, Context


def name_outputs(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[NAMES]`` set, unless it has no result
    columns or one of them is a star.
    """
    written = projections(tree)
    if not written or any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in written
    ):
        return tree
    tree.meta[NAMES] = tuple(output_name(p) for p in written)
    return tree
