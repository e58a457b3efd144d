"""Record how many parameters the query takes in the root's
``meta[NPARAMS]``: its largest ``$n``, or the context's ``vid_param_probe``
when that is larger (the probe is bound whether or not the query names it).

>>> from loomdb.sql.rules.context import NPARAMS, Context, tree_of
>>> ctx = Context.example(t="id INT")
>>> count_parameters(tree_of("SELECT id FROM t WHERE id IN ($1, $3)"), ctx).meta[NPARAMS]
3
>>> count_parameters(tree_of("SELECT 1"), ctx).meta[NPARAMS]
0
"""

from __future__ import annotations

from sqlglot import exp

from .context import NPARAMS, Context


def count_parameters(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[NPARAMS]`` set to the largest parameter
    number it or the probe uses (0: none)."""
    count = max((int(p.this.name) for p in tree.find_all(exp.Parameter)), default=0)
    if ctx.vid_param_probe is not None:
        count = max(count, ctx.vid_param_probe)
    tree.meta[NPARAMS] = count
    return tree
