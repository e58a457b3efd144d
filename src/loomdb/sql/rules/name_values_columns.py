"""Name every column of a ``VALUES`` list whose alias names only some of them,
as PostgreSQL does (``column2``, ...), so that a star over it expands to all.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT")
>>> name_values_columns(tree_of("SELECT * FROM (VALUES (1, 'a')) AS v(n)"), ctx).sql()
"SELECT * FROM (VALUES (1, 'a')) AS v(n, column2)"
"""

from __future__ import annotations

from sqlglot import exp

from .context import Context


def name_values_columns(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with each partial column alias list of a VALUES list completed."""
    for values in tree.find_all(exp.Values):
        alias = values.args.get("alias")
        columns = alias.columns if alias is not None else []
        width = len(values.expressions[0].expressions) if values.expressions else 0
        if alias is not None and columns and len(columns) < width:
            for i in range(len(columns) + 1, width + 1):
                alias.append("columns", exp.to_identifier(f"column{i}"))
    return tree
