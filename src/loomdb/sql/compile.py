"""Compile a PostgreSQL query into the backend's SQL over branch views.

:func:`compile_query` applies :data:`RULES` in order, as sqlglot's optimizer
applies its rules: each is a pure function of the tree and the shared
:class:`~loomdb.sql.rules.context.Context`, in its own module of
:mod:`loomdb.sql.rules`. The last rule leaves placeholders for the branch
views; the generated text gets the views' SQL in their place.

>>> from loomdb.sql.dialect import parse
>>> from loomdb.sql.rules.context import Context
>>> ctx = Context.example(t="id INT, j JSONB, e VECTOR(3)")
>>> tree = parse("SELECT id, j->'k' FROM t WHERE j @> $1 ORDER BY e <-> $2 LIMIT 3")
>>> compiled = compile_query(tree, ctx.schemas, ctx.view_sql, dialect="postgres")
>>> compiled.sql
'SELECT "t"."id" AS "id", "t"."j" -> \\'k\\' AS "k" FROM (VIEW t) AS "t" WHERE "t"."j" @> $1 ORDER BY "t"."e" <-> $2 LIMIT 3'
>>> compiled.names, [t.sql for t in compiled.types], compiled.nparams
(('id', '?column?'), ['INT', 'JSONB'], 2)
>>> {n: t.sql for n, t in compiled.param_types.items()}
{1: 'JSONB', 2: 'VECTOR(3)'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from ..catalog import TableSchema
from ..types import ColumnType
from .rules.check_grouping import check_grouping
from .rules.context import NAMES, NPARAMS, PARAM_TYPES, TYPES, VIEWS, Context
from .rules.count_parameters import count_parameters
from .rules.name_outputs import name_outputs
from .rules.name_star_outputs import name_star_outputs
from .rules.name_table_functions import name_table_functions
from .rules.name_values_columns import name_values_columns
from .rules.project_returning_vid import project_returning_vid
from .rules.project_versions import project_versions
from .rules.qualify_query import qualify_query
from .rules.refuse_unsupported import refuse_unsupported
from .rules.resolve_set_types import resolve_set_types
from .rules.resolve_tables import resolve_tables
from .rules.rewrite_tables import rewrite_tables, substitute_views
from .rules.type_outputs import type_outputs
from .rules.type_parameters import type_parameters
from .tree import table_key

Rule = Callable[[exp.Expression, Context], exp.Expression]

RULES: tuple[Rule, ...] = (
    refuse_unsupported,
    resolve_tables,
    name_outputs,
    name_values_columns,
    name_table_functions,
    qualify_query,
    check_grouping,
    resolve_set_types,
    name_star_outputs,
    type_outputs,
    type_parameters,
    count_parameters,
    project_versions,
    project_returning_vid,
    rewrite_tables,
)


@dataclass(frozen=True)
class Compiled:
    """A query ready to run: backend SQL, result names/types, parameter types."""

    sql: str
    names: tuple[str, ...]
    types: tuple[ColumnType | None, ...]
    param_types: Mapping[int, ColumnType]
    nparams: int


def compile_query(
    tree: exp.Expression,
    schemas: Mapping[str, TableSchema],
    view_sql: Callable[[TableSchema, str, bool, int | None], str],
    *,
    dialect: Any,
    hidden_alias: str | None = None,
    extra_param_types: Mapping[int, ColumnType] | None = None,
    vid_param_probe: int | None = None,
    vid_alias: str | None = None,
) -> Compiled:
    """Compile a query (SELECT, set operation or VALUES) for the given branch
    views, leaving ``tree`` as it was.

    ``hidden_alias`` names the table reference whose version columns
    (``_loom_vid`` ...) are projected first: UPDATE and DELETE use it, and
    ``vid_param_probe`` then keeps only the row identity bound to that parameter.
    ``vid_alias`` keeps only the versions whose ids are listed (as a JSON
    array) in one extra trailing parameter, and appends their ``_loom_vid``
    as the last column: RETURNING uses it.
    """
    ctx = Context(schemas, view_sql, dialect, hidden_alias, extra_param_types, vid_param_probe, vid_alias)
    tree = tree.copy()
    for rule in RULES:
        tree = rule(tree, ctx)
    meta = tree.meta
    # Quote every identifier: a column PostgreSQL accepts (nothing, isnull...) may be an SQLite keyword.
    sql = substitute_views(tree.sql(dialect=dialect, identify=True), meta[VIEWS])
    return Compiled(sql, meta[NAMES], meta[TYPES], meta[PARAM_TYPES], meta[NPARAMS])


__all__ = ["RULES", "Compiled", "Rule", "compile_query", "table_key"]
