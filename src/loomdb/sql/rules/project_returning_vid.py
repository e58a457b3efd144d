"""For RETURNING: append the version id of the table aliased
``ctx.vid_alias`` as the last result column, and take one more parameter
(recorded in ``meta[VID_PARAM]``) listing, as a JSON array, the versions
whose rows to return; ``rewrite_tables`` passes it to that table's view.

>>> import dataclasses
>>> from loomdb.sql.rules.context import NPARAMS, VID_PARAM, Context, tree_of
>>> from loomdb.sql.rules.count_parameters import count_parameters
>>> ctx = dataclasses.replace(Context.example(t="id INT"), vid_alias="t")
>>> tree = project_returning_vid(count_parameters(tree_of("SELECT id * $1 FROM t"), ctx), ctx)
>>> tree.sql("postgres"), tree.meta[VID_PARAM], tree.meta[NPARAMS]
('SELECT id * $1, "t"."_loom_vid" FROM t', 2, 2)
"""

from __future__ import annotations

from sqlglot import exp

from ...errors import NotSupportedError
from .context import NPARAMS, VID_PARAM, Context


def project_returning_vid(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` (a SELECT) with ``_loom_vid`` of ``ctx.vid_alias`` last
    and ``meta[VID_PARAM]`` = ``meta[NPARAMS]`` = one more parameter;
    unchanged when there is no ``vid_alias``. Another statement form is
    NotSupportedError."""
    alias = ctx.vid_alias
    if alias is None:
        return tree
    if not isinstance(tree, exp.Select):
        raise NotSupportedError("this statement form is not supported")
    tree.meta[VID_PARAM] = tree.meta[NPARAMS] = tree.meta[NPARAMS] + 1
    tree.set("expressions", [*tree.expressions, exp.column("_loom_vid", table=alias, quoted=True)])
    return tree
