"""What the compile rules share: the branch's tables, the view builder, the
output dialect and the caller's options; and the keys under which rules
record what they learn in the root's ``meta``.

>>> ctx = Context.example(t="id INT, body TEXT, price NUMERIC(10, 2)")
>>> sorted(ctx.schemas), [c.type.sql for c in ctx.schemas["t"].columns]
(['t'], ['INT', 'TEXT', 'NUMERIC(10, 2)'])
>>> ctx.view_sql(ctx.schemas["t"], "x", True, 3)
'(VIEW t WITH VERSIONS LISTED IN $3)'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from ...catalog import Column, TableSchema
from ...layout import physical_table
from ...types import ColumnType
from ..dialect import parse

#: ``tuple[str, ...]``: the result column names, as PostgreSQL gives them.
NAMES = "loom_names"
#: ``str``: on a result column of any SELECT in the query (or the expression it
#: aliases), the name PostgreSQL gives it; a star's columns are named from these.
OUTPUT_NAME = "loom_output_name"
#: ``tuple[ColumnType | None, ...]``: the loomdb type of each result column.
TYPES = "loom_types"
#: ``dict[int, ColumnType]``: how each ``$n`` binds, where a rule could tell.
PARAM_TYPES = "loom_param_types"
#: ``int``: how many parameters the compiled SQL takes.
NPARAMS = "loom_nparams"
#: ``int``: the trailing parameter listing the versions RETURNING reads.
VID_PARAM = "loom_vid_param"
#: ``dict[str, str]``: each table placeholder's view SQL.
VIEWS = "loom_views"

#: ``view_sql(schema, alias, hidden, vid_param)``: the SQL of ``schema``'s
#: view on the branch, as a parenthesised subquery standing for ``alias``.
ViewSQL = Callable[[TableSchema, str, bool, int | None], str]


@dataclass(frozen=True)
class Context:
    """Everything a rule may read besides the tree.

    ``hidden_alias``, ``vid_param_probe`` and ``vid_alias`` are
    :func:`~loomdb.sql.compile.compile_query`'s options of the same names;
    ``extra_param_types`` overrides the parameter types the rules find.
    """

    schemas: Mapping[str, TableSchema]
    view_sql: ViewSQL
    dialect: Any
    hidden_alias: str | None = None
    extra_param_types: Mapping[int, ColumnType] | None = None
    vid_param_probe: int | None = None
    vid_alias: str | None = None

    @classmethod
    def example(cls, dialect: Any = "postgres", **tables: str) -> Context:
        """A context over ``tables`` (name: ``"column TYPE, ..."``) whose views
        read as ``(VIEW name ...)``, for examples and fixtures."""
        schemas = {}
        for tid, (name, columns) in enumerate(tables.items(), start=1):
            cols = []
            for spec in re.split(r",(?![^(]*\))", columns):
                col, _, ctype = spec.strip().partition(" ")
                cols.append(Column(col, ColumnType.parse(ctype), f"c{len(cols) + 1}"))
            schemas[name] = TableSchema(name, tid, physical_table(tid), tuple(cols))
        return cls(schemas, _example_view, dialect)


def _example_view(schema: TableSchema, alias: str, hidden: bool, vid_param: int | None) -> str:
    """The stand-in view of :meth:`Context.example`: names the table and what was asked of it."""
    text = f"VIEW {schema.name}"
    if hidden:
        text += " WITH VERSIONS"
    if vid_param is not None:
        text += f" LISTED IN ${vid_param}"
    return f"({text})"


def tree_of(sql: str) -> exp.Expression:
    """A fresh tree of one PostgreSQL statement, for rules to modify
    (:func:`~loomdb.sql.dialect.parse` shares its trees)."""
    return parse(sql).copy()
