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

import json
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .catalog import TableSchema
from .connect import connect
from .database import Database
from .types import ColumnType, to_storage

# Catalog tables and their columns, in the order they are copied.
_CATALOG = (
    ("loom_meta", ("key", "value")),
    ("loom_branches", ("bid", "name", "parent", "fork", "start", "created", "dropped")),
    ("loom_commits", ("seq", "bid", "parent", "merge_parent", "merge_bid", "message", "author", "time")),
    ("loom_schema", ("id", "bid", "seq", "name", "definition")),
    ("loom_tables", ("tid", "physical", "columns")),
    ("loom_serial", ("tid", "phys", "value")),
)
_HIDDEN = ("_vid", "_rid", "_bid", "_seq", "_end", "_del")
_BATCH = 2000


@dataclass
class CopyResult:
    """What was copied: counts, and what the verification compared."""

    source: str
    destination: str
    branches: int = 0
    commits: int = 0
    versions: int = 0
    tables: list[str] = field(default_factory=list)
    verified: bool = False


def copy(source: str, destination: str, *, verify: bool = True) -> CopyResult:
    """Copy the store at ``source`` into the new, empty store at ``destination``.

    Either may be a SQLite file path or a ``postgresql://`` URL. Raises
    OperationalError when there is no store at ``source``,
    ProgrammingError when the destination already holds history, and
    DataError when ``verify`` finds a difference (the copy is then
    incomplete and should be discarded).
    """
    src = connect(source, create=False)
    try:
        dst = connect(destination)
        try:
            result = _copy(src, dst, source, destination)
            if verify:
                _verify(src, dst)
                result.verified = True
            return result
        finally:
            dst.close()
    finally:
        src.close()


def _copy(src: Database, dst: Database, source: str, destination: str) -> CopyResult:
    s_backend, d_backend = src._store.backend, dst._store.backend
    if _count(d_backend, "loom_commits") > 1 or _count(d_backend, "loom_branches") > 1:
        raise errors.ProgrammingError(
            f"{d_backend.describe()} already holds a loomdb store with history; copy into a new one"
        )
    result = CopyResult(source, destination)
    s_backend.begin_read()
    try:
        d_backend.begin_write()
        try:
            for table, columns in _CATALOG:
                names = ", ".join(columns)
                rows = list(s_backend.execute(f"SELECT {names} FROM {table} ORDER BY 1"))
                d_backend.execute(f"DELETE FROM {table}")
                marks = ", ".join("?" for _ in columns)
                d_backend.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
                if table == "loom_branches":
                    result.branches = sum(1 for r in rows if not r[-1])
                elif table == "loom_commits":
                    result.commits = len(rows)
            definitions = [
                TableSchema.from_json(d)
                for (d,) in s_backend.execute(
                    "SELECT definition FROM loom_schema WHERE definition IS NOT NULL"
                )
            ]
            physical_tables = list(
                s_backend.execute("SELECT tid, physical, columns FROM loom_tables ORDER BY tid")
            )
            for tid, physical, columns in physical_tables:
                schemas = [d for d in definitions if d.tid == tid]
                result.versions += _copy_table(s_backend, d_backend, physical, json.loads(columns), schemas)
                result.tables.append(physical)
            d_backend.sync_sequences([physical for _, physical, _ in physical_tables])
            serials = {(d.tid, c.phys) for d in definitions for c in d.columns if c.type.kind == "serial"}
            for tid, phys in sorted(serials):
                dst._store.set_serial(tid, phys, src._store.serial_value(tid, phys))
            d_backend.commit()
        except BaseException:
            d_backend.rollback()
            raise
    finally:
        s_backend.rollback()
    dst._store.refresh(force=True)
    return result


def _copy_table(
    s_backend: Any, d_backend: Any, physical: str, columns: dict[str, str], schemas: list[TableSchema]
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
    quoted = ", ".join([*_HIDDEN, *(f'"{p}"' for p in phys)])
    insert = f'INSERT INTO "{physical}" ({quoted}) VALUES ({", ".join("?" for _ in range(len(_HIDDEN) + len(phys)))})'
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
                cols = [schema.column(c).phys for c in index.columns]  # type: ignore[union-attr]
                d_backend.create_physical_index(physical, index.phys, cols, index.method, index.opclass)
    return copied


def _count(backend: Any, table: str) -> int:
    return int(next(backend.execute(f"SELECT count(*) FROM {table}"))[0])


# -- verification ------------------------------------------------------------------------------


def _verify(src: Database, dst: Database) -> None:
    """Raise DataError unless both stores have the same branches, logs and rows."""
    s_names = sorted(b.name for b in src.branches())
    d_names = sorted(b.name for b in dst.branches())
    if s_names != d_names:
        raise errors.DataError(f"copy verification: branches differ ({s_names} vs {d_names})")
    for name in s_names:
        s, d = src.checkout(name), dst.checkout(name)
        try:
            if [_commit(c) for c in s.log()] != [_commit(c) for c in d.log()]:
                raise errors.DataError(f"copy verification: the log of branch {name!r} differs")
            tables = sorted(s._schemas())
            if tables != sorted(d._schemas()):
                raise errors.DataError(f"copy verification: the tables of branch {name!r} differ")
            for table in tables:
                if _rows(s, table) != _rows(d, table):
                    raise errors.DataError(f"copy verification: rows of {table!r} on branch {name!r} differ")
        finally:
            s.close()
            d.close()


def _commit(commit: Any) -> tuple[Any, ...]:
    return (commit.id, commit.branch, commit.message, commit.author, commit.time, commit.parents)


def _rows(db: Database, table: str) -> list[str]:
    cursor = db.execute(f'SELECT * FROM "{table}"')
    # Sorted keys: PostgreSQL's jsonb orders object keys its own way.
    return sorted(json.dumps([_plain(v) for v in row], sort_keys=True) for row in cursor.fetchall())


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (dict, list, str, int, float, bool)) or value is None:
        return value
    return str(value)
