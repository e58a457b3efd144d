"""Record the result column names, as PostgreSQL gives them, from what the
user wrote: in the root's ``meta[NAMES]``, and on every result column of
every SELECT in the query (``meta[OUTPUT_NAME]``).

This runs before ``qualify``, which invents aliases (``a`` for ``j->'a'``)
PostgreSQL does not use. A star's columns are only known after ``qualify``:
:mod:`~loomdb.sql.rules.name_star_outputs` names those, from the names
recorded here on the subqueries they come from.

>>> from loomdb.sql.rules.context import NAMES, OUTPUT_NAME, Context, tree_of
>>> ctx = Context.example(t="id INT, j JSONB")
>>> name_outputs(tree_of("SELECT id AS key, j->'a', count(*) FROM t"), ctx).meta[NAMES]
('key', '?column?', 'count')
>>> tree = name_outputs(tree_of("SELECT *, 1 FROM (SELECT 1, 2) AS s(x)"), ctx)
>>> NAMES in tree.meta
False
>>> [p.meta.get(OUTPUT_NAME) for p in tree.find(exp.Subquery).this.selects]
['x', '?column?']
"""

from __future__ import annotations

from sqlglot import exp

from ..tree import output_name, projections
from .context import NAMES, OUTPUT_NAME, Context


def _is_star(node: exp.Expr) -> bool:
    return isinstance(node, exp.Star) or (isinstance(node, exp.Column) and node.is_star)


def _column_aliases(select: exp.Select) -> list[str]:
    """The column names a derived table or CTE gives ``select``'s columns
    (``AS s(x, y)``); none when it names none or ``select`` is not its
    (first) SELECT."""
    node: exp.Expression = select
    while isinstance(node.parent, exp.SetOperation) and node.parent.this is node:
        node = node.parent
    owner = node.parent
    if not isinstance(owner, (exp.Subquery, exp.CTE)):
        return []
    alias = owner.args.get("alias")
    return [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []


def name_outputs(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[NAMES]`` set, unless it has no result
    columns or one of them is a star; every SELECT's result columns but
    stars get ``meta[OUTPUT_NAME]``.
    """
    for select in tree.find_all(exp.Select):
        renamed = _column_aliases(select)
        for i, p in enumerate(select.selects):
            if not _is_star(p):
                p.meta[OUTPUT_NAME] = renamed[i] if i < len(renamed) else output_name(p)
    written = projections(tree)
    if not written or any(_is_star(p) for p in written):
        return tree
    tree.meta[NAMES] = tuple(output_name(p) for p in written)
    return tree
