"""``loomdb.copy``: move a whole store, history and branches included, between engines.

The copy is physical: the catalog (branches, commits, schemas) keeps every
id, and every version of every row is copied, so the destination has the
same log, the same branches and the same rows at every commit. Values pass
through their column's storage rules, which turns each engine's form into
the other's (a SQLite float32 blob into pgvector's vector and back).

Version ids are renumbered in commit order: the embedded engine relies on
version ids growing with commits, which PostgreSQL (writers on several
branches at once) does not guarantee.

The source is read in one snapshot; the destination is written in one
transaction, so a failed copy leaves it empty. ``verify`` then compares
both stores through the public API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import errors
from ..backend.protocol import Backend
from ..catalog import TableSchema
from ..layout import VERSION_COLUMNS, version_insert_sql
from ..types import ColumnType, to_storage
from .store import Store, catalog_copy
from .writes.common import catalog_column

_BATCH = 2000


@dataclass
class CopyCounts:
    """What a copy wrote."""

    branches: int = 0
    commits: int = 0
    versions: int = 0
    tables: list[str] = field(default_factory=list)


def copy_store(src: Store, dst: Store) -> CopyCounts:
    """Copy every catalog row and every version of ``src`` into the new store ``dst``.

    Raises ProgrammingError when ``dst`` already holds history. ``src`` is
    read in one snapshot; ``dst`` is written in one transaction, so a failed
    copy leaves it as it was."""
    s_backend, d_backend = src.backend, dst.backend
    if catalog_copy.has_history(dst):
        raise errors.ProgrammingError(
            f"{d_backend.describe()} already holds a loomdb store with history; copy into a new one"
        )
    counts = CopyCounts()
    s_backend.begin_read()
    try:
        with dst.transactions.catalog():
            for table, rows in catalog_copy.catalog_rows(src):
                catalog_copy.replace_catalog(dst, table, rows)
                if table == "loom_branches":
                    counts.branches = sum(1 for r in rows if not r[-1])
                elif table == "loom_commits":
                    counts.commits = len(rows)
            definitions = catalog_copy.table_definitions(src)
            physical_tables = catalog_copy.physical_tables(src)
            for tid, physical, columns in physical_tables:
                schemas = [d for d in definitions if d.tid == tid]
                counts.versions += _copy_table(s_backend, d_backend, physical, columns, schemas)
                counts.tables.append(physical)
            d_backend.sync_sequences([physical for _, physical, _ in physical_tables])
            serials = {(d.tid, c.phys) for d in definitions for c in d.columns if c.type.kind == "serial"}
            for tid, phys in sorted(serials):
                dst.counters.set(tid, phys, src.counters.value(tid, phys))
    finally:
        s_backend.rollback()
    dst.refresh(force=True)
    return counts


def _copy_table(
    s_backend: Backend, d_backend: Backend, physical: str, columns: dict[str, str], schemas: list[TableSchema]
) -> int:
    """Create ``physical`` on the destination and copy every version; returns their number."""
    types: dict[str, ColumnType] = {}
    for schema in schemas:
        for column in schema.columns:
            types[column.phys] = column.type
    missing = [phys for phys in columns if phys not in types]
    if missing:
        raise errors.InternalError(f"{physical}: no schema names the type of column(s) {missing}")
    phys = list(columns)
    d_backend.create_physical_table(physical, [(p, types[p]) for p in phys])
    quoted = ", ".join([*VERSION_COLUMNS, *(f'"{p}"' for p in phys)])
    marks = ", ".join("?" for _ in range(len(VERSION_COLUMNS) + len(phys)))
    insert = f"{version_insert_sql(physical, phys)} VALUES ({marks})"
    select = f'SELECT {quoted} FROM "{physical}"'
    renumbered: dict[int, int] = {}
    last: tuple[int, int] | None = None
    copied = 0
    while True:
        if last is None:
            rows = list(s_backend.execute(f"{select} ORDER BY _seq, _vid LIMIT {_BATCH}"))
        else:
            rows = list(
                s_backend.execute(
                    f"{select} WHERE _seq > ? OR (_seq = ? AND _vid > ?) ORDER BY _seq, _vid LIMIT {_BATCH}",
                    (last[0], last[0], last[1]),
                )
            )
        if not rows:
            break
        out = []
        for vid, rid, bid, seq, end, dele, *values in rows:
            copied += 1
            renumbered[vid] = copied
            new_rid = renumbered.get(rid)
            if new_rid is None:
                raise errors.InternalError(
                    f"{physical}: version {vid} names row {rid}, which has no first version"
                )
            stored = [to_storage(v, types[p], p) for p, v in zip(phys, values, strict=True)]
            out.append([copied, new_rid, bid, seq, end, dele, *stored])
        d_backend.executemany(insert, out)
        last = (rows[-1][3], rows[-1][0])
    built: set[str] = set()
    for schema in schemas:
        for index in schema.indexes:
            if index.phys not in built:
                built.add(index.phys)
                cols = [catalog_column(schema, c).phys for c in index.columns]
                d_backend.create_physical_index(physical, index.phys, cols, index.method, index.opclass)
    return copied
