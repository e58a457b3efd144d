"""Put the version columns of the table aliased ``ctx.hidden_alias`` first
in the results, for UPDATE and DELETE to know which versions they change;
with ``ctx.vid_param_probe`` keep only the version bound to that parameter.

>>> import dataclasses
>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = dataclasses.replace(Context.example(t="id INT"), hidden_alias="t", vid_param_probe=2)
>>> project_versions(tree_of("SELECT id FROM t WHERE id = $1"), ctx).sql("postgres")
'SELECT "t"."_loom_vid", "t"."_loom_rid", "t"."_loom_bid", "t"."_loom_seq", id FROM t WHERE id = $1 AND "t"."_loom_vid" = $2'
"""

from __future__ import annotations

from sqlglot import exp

from ...errors import NotSupportedError
from .context import Context

#: The version columns a branch view projects when asked for them, in order.
HIDDEN = ("_loom_vid", "_loom_rid", "_loom_bid", "_loom_seq")


def project_versions(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` (a SELECT) with :data:`HIDDEN` of ``ctx.hidden_alias``
    as its first columns, and the probe ANDed to its WHERE; unchanged when
    there is no ``hidden_alias``. Another statement form is NotSupportedError."""
    alias = ctx.hidden_alias
    if alias is None:
        return tree
    if not isinstance(tree, exp.Select):
        raise NotSupportedError("this statement form is not supported")
    hidden = [exp.column(h, table=alias, quoted=True) for h in HIDDEN]
    tree.set("expressions", hidden + list(tree.expressions))
    if ctx.vid_param_probe is not None:
        probe = exp.EQ(
            this=exp.column("_loom_vid", table=alias, quoted=True),
            expression=exp.Parameter(this=exp.Literal.number(ctx.vid_param_probe)),
        )
        where = tree.args.get("where")
        tree.set("where", exp.Where(this=probe if where is None else exp.and_(where.this, probe)))
    return tree
