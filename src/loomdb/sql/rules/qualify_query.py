"""Resolve every column against the branch's tables, expand stars and type
every expression (sqlglot's ``qualify`` and ``annotate_types``); a column or
construct that cannot be resolved is a ProgrammingError naming it.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT, body TEXT")
>>> tree = qualify_query(tree_of("SELECT * FROM t WHERE id > 1"), ctx)
>>> tree.sql()
'SELECT t.id AS id, t.body AS body FROM t AS t WHERE t.id > 1'
>>> [p.type.sql() for p in tree.selects]
['INT', 'TEXT']
>>> qualify_query(tree_of("SELECT nope FROM t"), ctx)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
loomdb.errors.ProgrammingError: column does not exist: Column 'nope' could not be resolved...
"""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from ...errors import ProgrammingError
from ..dialect import LoomPostgres
from .context import Context
from .time_types import retype_time


def _tables_having(tree: exp.Expression, ctx: Context, column: str) -> int:
    """How many of the tables the query reads have a column ``column`` (an
    unresolvable unqualified name several of them have is ambiguous)."""
    ctes = {cte.alias: cte.this for cte in tree.find_all(exp.CTE)}
    count = 0
    for table in tree.find_all(exp.Table):
        if table.name in ctes:
            query = ctes[table.name]
            count += isinstance(query, exp.Query) and column in query.named_selects
        elif table.name in ctx.schemas:
            count += any(c.name == column for c in ctx.schemas[table.name].columns)
    for sub in tree.find_all(exp.Subquery):  # derived tables: FROM (SELECT ...) AS s
        if sub.alias and isinstance(sub.this, exp.Query) and column in sub.this.named_selects:
            count += 1
    return count


def _alias_subquery_outputs(tree: exp.Expression) -> None:
    """Give each unaliased scalar subquery in a select list an alias node of its
    own: sqlglot names it through the subquery's alias instead, and then fails an
    assertion when ``ORDER BY 1`` or ``GROUP BY 1`` refers to it."""
    for select in list(tree.find_all(exp.Select)):
        for i, projection in enumerate(list(select.expressions)):
            if isinstance(projection, exp.Subquery) and not projection.alias:
                alias = exp.Alias(this=projection.copy(), alias=exp.to_identifier(f"_col_{i}"))
                alias.meta.update(projection.meta)
                projection.replace(alias)


def qualify_query(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` qualified and typed; raise ProgrammingError for what
    sqlglot cannot resolve.
    """
    mapping = {name: {c.name: c.type.sql for c in s.columns} for name, s in ctx.schemas.items()}
    _alias_subquery_outputs(tree)
    try:
        tree = qualify(
            tree,
            schema=mapping,
            dialect=LoomPostgres,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=False,
        )
        tree = retype_time(annotate_types(tree, schema=mapping, dialect=LoomPostgres))
    except OptimizeError as err:
        message = str(err)
        position = re.match(r"Unknown output column: (\d+)", message)
        if position:
            raise ProgrammingError(
                f"ORDER BY position {position.group(1)} is not in select list", sqlstate="42P10"
            ) from None
        if message.startswith("Column '") or "could not be resolved" in message:
            name = re.match(r"Column '([^']+)'", message)
            if name and _tables_having(tree, ctx, name.group(1)) > 1:
                raise ProgrammingError(
                    f'column reference "{name.group(1)}" is ambiguous', sqlstate="42702"
                ) from None
            raise ProgrammingError(f"column does not exist: {message}", sqlstate="42703") from None
        raise ProgrammingError(message) from None
    except SqlglotError as err:
        raise ProgrammingError(str(err)) from None
    return tree
