"""Refuse the constructs loomdb cannot translate faithfully, by the words
users know them by.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT, at TIMESTAMPTZ")
>>> refuse_unsupported(tree_of("SELECT id FROM t WHERE id > 1"), ctx).sql()
'SELECT id FROM t WHERE id > 1'
>>> refuse_unsupported(tree_of("SELECT extract(year FROM at) FROM t"), ctx)
Traceback (most recent call last):
...
loomdb.errors.NotSupportedError: EXTRACT is not supported by loomdb
>>> refuse_unsupported(tree_of("SELECT DISTINCT ON (id) id FROM t"), ctx)
Traceback (most recent call last):
...
loomdb.errors.NotSupportedError: SELECT DISTINCT ON is not supported by loomdb
"""

from __future__ import annotations

from sqlglot import exp

from ...errors import NotSupportedError
from .context import Context

# Constructs with no faithful translation yet, and the words users know them by.
UNSUPPORTED: dict[type, str] = {
    exp.Interval: "INTERVAL arithmetic",
    exp.ArrayAgg: "array_agg (arrays are not supported; use jsonb_agg)",
    exp.Array: "ARRAY values (use JSONB)",
    exp.Unnest: "UNNEST",
    exp.Lateral: "LATERAL",
    exp.Pivot: "PIVOT",
    exp.Lock: "FOR UPDATE / FOR SHARE",
    exp.TimestampTrunc: "date_trunc",
    exp.Extract: "EXTRACT",
    exp.Into: "SELECT INTO",
}


def refuse_unsupported(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` unchanged, or raise NotSupportedError naming the first
    construct of :data:`UNSUPPORTED` (or ``DISTINCT ON``) found in it.
    """
    for node in tree.walk():
        label = UNSUPPORTED.get(type(node))
        if label is not None:
            raise NotSupportedError(f"{label} is not supported by loomdb")
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.MONEY:
            raise NotSupportedError("the money type is not supported by loomdb (use NUMERIC)")
        if isinstance(node, exp.Distinct) and node.args.get("on"):
            raise NotSupportedError("SELECT DISTINCT ON is not supported by loomdb")
    return tree
