"""Swap every stored table for the placeholder of its branch view.

The view is backend SQL (from the context's ``view_sql``), which sqlglot
cannot carry in a tree: each table becomes the identifier ``__loomview_<i>__``
(keeping its name as alias), and ``meta[VIEWS]`` maps each placeholder to
its view's SQL, which :func:`substitute_views` puts in the generated text.

>>> from loomdb.sql.rules.context import VIEWS, Context, tree_of
>>> ctx = Context.example(t="id INT", u="id INT")
>>> tree = rewrite_tables(tree_of("SELECT t.id FROM t JOIN u AS x ON x.id = t.id"), ctx)
>>> tree.sql()
'SELECT t.id FROM __loomview_0__ AS "t" JOIN __loomview_1__ AS x ON x.id = t.id'
>>> substitute_views(tree.sql(), tree.meta[VIEWS])
'SELECT t.id FROM (VIEW t) AS "t" JOIN (VIEW u) AS x ON x.id = t.id'
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from ..tree import table_key, user_tables
from .context import VID_PARAM, VIEWS, Context


def rewrite_tables(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with each stored table replaced by a placeholder
    aliased as the table was, and ``meta[VIEWS]`` set.

    The views of ``ctx.hidden_alias`` and ``ctx.vid_alias`` project the
    version columns; the latter's keeps only the versions ``meta[VID_PARAM]``
    lists.
    """
    views: dict[str, str] = {}
    vid_param = tree.meta.get(VID_PARAM)
    for index, table in enumerate(user_tables(tree)):
        token = f"__loomview_{index}__"
        alias = table.alias_or_name
        hidden = alias in (ctx.hidden_alias, ctx.vid_alias)
        vids = vid_param if alias == ctx.vid_alias else None
        views[token] = ctx.view_sql(ctx.schemas[table_key(table)], alias, hidden, vids)
        table.set("this", exp.to_identifier(token))
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    tree.meta[VIEWS] = views
    return tree


def substitute_views(sql: str, views: Mapping[str, str]) -> str:
    """``sql`` with each placeholder of ``views`` (quoted or not) replaced by its view's SQL."""
    for token, view in views.items():
        sql = sql.replace(f'"{token}"', view).replace(token, view)
    return sql
