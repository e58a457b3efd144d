"""diff and diff_stat: the rows that differ between two snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ... import errors
from ...catalog import TableSchema
from ...connection import Snapshot
from ...results import Change, DiffStat
from ...versioning.lineage import Lineage
from ...versioning.merge import difference
from .merge_base import snapshot_lineage
from .rows import Version, by_identity, changed_rids, decode_row, row_key, rows_at, version_of

if TYPE_CHECKING:
    from ..session import Session


def _paired_tables(
    a: dict[str, TableSchema], b: dict[str, TableSchema]
) -> Iterator[tuple[str, TableSchema | None, TableSchema | None]]:
    """Every table name of either side, sorted, with its schema on each side (None: absent there)."""
    for name in sorted(set(a) | set(b)):
        yield name, a.get(name), b.get(name)


def diff(session: Session, a: Snapshot, b: Snapshot, table: str | None) -> Iterator[Change]:
    """The rows that differ between snapshots ``a`` and ``b`` (of ``table`` only, when given):
    one Change per row, tables by name, rows matched by PRIMARY KEY (else row identity)."""
    store = session.store
    la, lb = snapshot_lineage(session, a), snapshot_lineage(session, b)
    ranges = difference(la, lb) + difference(lb, la)
    for name, sa, sb in _paired_tables(store.schemas(la), store.schemas(lb)):
        if table is not None and name != table:
            continue
        if sa is not None and sb is not None and sa.tid == sb.tid:
            names_a = set(sa.column_names)
            schema = sa.with_columns(sa.columns + tuple(c for c in sb.columns if c.name not in names_a))
            rids = changed_rids(store, schema.physical, ranges)
            before, after = rows_at(store, schema, la, rids), rows_at(store, schema, lb, rids)
        else:
            # On one side only, or a different table under the same name (dropped
            # and created again): every row of a's is removed, every row of b's
            # added, each in its own table's columns.
            if sa is not None:
                yield from _row_changes(name, sa, _all_rows(session, sa, la), {})
            if sb is not None:
                yield from _row_changes(name, sb, {}, _all_rows(session, sb, lb))
            continue
        yield from _row_changes(name, schema, before, after)


def _row_changes(
    name: str, schema: TableSchema, before: dict[int, Version], after: dict[int, Version]
) -> Iterator[Change]:
    """The Changes between the versions ``before`` and ``after`` of table ``name``
    (both read with ``schema``), rows matched by PRIMARY KEY, else row identity."""
    before_by, after_by = by_identity(schema, before), by_identity(schema, after)
    for ident in sorted(set(before_by) | set(after_by), key=repr):
        old, new = before_by.get(ident), after_by.get(ident)
        present = new if new is not None else old
        if present is None:
            raise errors.InternalError(f'diff of "{name}": row {ident!r} is on neither side')
        ov, nv = (old.values if old else None), (new.values if new else None)
        if ov == nv:
            continue
        if ov is None:
            kind, columns = "added", tuple(schema.column_names)
        elif nv is None:
            kind, columns = "removed", tuple(schema.column_names)
        else:
            kind = "modified"
            columns = tuple(c.name for c, x, y in zip(schema.columns, ov, nv, strict=True) if x != y)
        yield Change(
            name,
            kind,
            row_key(schema, present.values, present.rid),
            decode_row(schema, ov),
            decode_row(schema, nv),
            columns,
        )


def _all_rows(session: Session, schema: TableSchema, lineage: Lineage) -> dict[int, Version]:
    """Every version ``lineage`` sees of ``schema``'s table, by row identity."""
    view = session.store.view_sql(schema, lineage, "t", True)
    out = {}
    for row in session.store.backend.execute(f"SELECT * FROM {view} AS t"):
        version = version_of(row)
        out[version.rid] = version
    return out


def diff_stat(session: Session, a: Snapshot, b: Snapshot) -> dict[str, DiffStat]:
    """Per table, how many rows ``diff`` reports added, removed and modified."""
    counts: dict[str, list[int]] = {}
    for change in diff(session, a, b, None):
        slot = counts.setdefault(change.table, [0, 0, 0])
        slot[("added", "removed", "modified").index(change.kind)] += 1
    return {name: DiffStat(*c) for name, c in counts.items()}


# ----------------------------------------------------------------------------- revert and reset
