"""Branch views: the SQL of the rows of one table that one lineage sees.

Every table reference of a statement becomes one of these subqueries (see
``sql/compile.py``); key lookups, merges and diffs read through them too.
"""

from __future__ import annotations

from typing import Any

from ..backend.protocol import Backend
from ..catalog import TableSchema
from ..layout import indexed_version
from ..versioning.lineage import Lineage, visibility_sql


def view_sql(
    backend: Backend,
    schema: TableSchema,
    lineage: Lineage,
    hidden: bool,
    vid_param: int | None = None,
    rid_param: int | None = None,
) -> str:
    """The SQL of ``schema``'s rows visible through ``lineage``, columns under their
    user names; with ``hidden``, also ``_loom_vid``, ``_loom_rid``, ``_loom_bid``
    and ``_loom_seq``. ``vid_param`` / ``rid_param``: keep only the versions /
    rows whose ids are in the JSON array bound to that parameter."""
    cols = []
    for column in schema.columns:
        expr = f'_p."{column.phys}"'
        if column.added_seq is not None and column.fill is not None:
            expr = f"CASE WHEN _p._seq < {column.added_seq} THEN {sql_literal(column.fill)} ELSE {expr} END"
        cols.append(f'{expr} AS "{column.name}"')
    if hidden:
        cols += [
            "_p._vid AS _loom_vid",
            "_p._rid AS _loom_rid",
            "_p._bid AS _loom_bid",
            "_p._seq AS _loom_seq",
        ]
    where = visibility_sql(lineage, schema.physical, "_p", backend.unindexed)
    if vid_param is not None:
        where += f" AND _p._vid IN {backend.id_list_sql(vid_param)}"
    if rid_param is not None:
        # A row's first version is found by its rowid (= _rid), later ones
        # through the partial identity index, whose condition is repeated.
        ids = backend.id_list_sql(rid_param)
        where += f" AND (_p._vid IN {ids} OR (_p._rid IN {ids} AND {indexed_version('_p')}))"
    return f'(SELECT {", ".join(cols)} FROM "{schema.physical}" AS _p WHERE {where})'


def sql_literal(value: Any) -> str:
    """``value`` as an SQL literal (a column's constant fill)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    return "'" + str(value).replace("'", "''") + "'"
