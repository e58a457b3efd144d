"""Reading row versions for whole-branch operations: the rows changed since a commit, and
the versions a lineage sees of them, found by identity or by key, never by a table scan.

Version ids grow with commit ids, so "written after commit c" is a rowid range:
the cost follows the changes, not the table size.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from ...catalog import TableSchema
from ...types import from_storage
from ...versioning.lineage import Lineage

if TYPE_CHECKING:
    from ..session import Session
    from ..store import Store

HIDDEN = 4  # _loom_vid, _loom_rid, _loom_bid, _loom_seq follow the user columns


# ----------------------------------------------------------------------------- reading versions


def first_vid_after(store: Store, physical: str, seq: int) -> int:
    """The smallest version id written by a commit after ``seq`` (binary search:
    version ids and commit ids grow together within a physical table)."""
    backend = store.backend
    top = next(backend.execute(f'SELECT COALESCE(max(_vid), 0) FROM "{physical}"'))[0]
    lo, hi = 1, int(top) + 1
    probe = f'SELECT _seq FROM "{physical}" WHERE _vid >= ? ORDER BY _vid LIMIT 1'
    while lo < hi:
        mid = (lo + hi) // 2
        row = next(backend.execute(probe, (mid,)), None)
        if row is None or row[0] > seq:
            hi = mid
        else:
            lo = mid + 1
    return lo


def changed_rids(store: Store, physical: str, ranges: list[tuple[int, int, int | None]]) -> set[int]:
    """Row identities with a version on ``bid`` in ``(after, upto]`` for any of ``ranges``."""
    out: set[int] = set()
    for bid, after, upto in ranges:
        # A branch's versions all come after the commit it was created at.
        after = max(after, store.branch_by_id(bid).start)
        if upto is not None and upto <= after:
            continue
        if store.allocator is not None:  # version ids do not follow the commit order
            # Version ids do not follow commits: the (_seq, _bid) index answers.
            sql = f'SELECT _rid FROM "{physical}" WHERE _bid = ? AND _seq > ?'
            params: list[Any] = [bid, after]
            if upto is not None:
                sql += " AND _seq <= ?"
                params.append(upto)
            out.update(r[0] for r in store.backend.execute(sql, params))
            continue
        start = first_vid_after(store, physical, after)
        sql = f'SELECT _rid FROM "{physical}" WHERE _vid >= ? AND _bid = ? AND _seq > ?'
        params = [start, bid, after]
        if upto is not None:
            sql += " AND _vid < ? AND _seq <= ?"
            params += [first_vid_after(store, physical, upto), upto]
        out.update(r[0] for r in store.backend.execute(sql, params))
    return out


class Version(NamedTuple):
    values: tuple[Any, ...]
    vid: int
    rid: int
    bid: int
    seq: int


def rows_at(store: Store, schema: TableSchema, lineage: Lineage, rids: set[int]) -> dict[int, Version]:
    """The visible version of each row identity in ``rids`` through ``lineage``."""
    if not rids:
        return {}
    view = store.view_sql(schema, lineage, "t", True, rid_param=1)
    out = {}
    for row in store.backend.execute(f"SELECT * FROM {view} AS t", (json.dumps(sorted(rids)),)):
        version = version_of(row)
        out[version.rid] = version
    return out


def version_by_id(session: Session, schema: TableSchema, vid: int) -> Version:
    """The version ``vid`` as this handle's view shows it."""
    view = session.store.view_sql(schema, session.lineage, "t", True, vid_param=1)
    return version_of(next(session.store.backend.execute(f"SELECT * FROM {view} AS t", (f"[{int(vid)}]",))))


def versions_by_key(
    store: Store, schema: TableSchema, lineage: Lineage, keys: set[Any]
) -> dict[Any, Version]:
    """The visible version holding each PRIMARY KEY value in ``keys``, where there is one."""
    if not keys:
        return {}
    view = store.view_sql(schema, lineage, "t", True)
    cond = " AND ".join(f't."{c}" = ?' for c in schema.primary_key)
    sql = f"SELECT * FROM {view} AS t WHERE {cond}"
    out = {}
    for key in keys:
        for row in store.backend.execute(sql, list(key)):
            out[key] = version_of(row)
    return out


def by_identity(schema: TableSchema, versions: dict[int, Version]) -> dict[Any, Version]:
    """Key the versions the way merge and diff match rows across snapshots: by
    PRIMARY KEY where the table has one (a key deleted and inserted again is
    the same row), else by loomdb's row identity."""
    if not schema.primary_key:
        return dict(versions)
    positions = [schema.column_names.index(c) for c in schema.primary_key]
    return {tuple(v.values[i] for i in positions): v for v in versions.values()}


def version_of(row: tuple[Any, ...]) -> Version:
    """A Version from a view row whose hidden columns come last."""
    vid, rid, bid, seq = row[-HIDDEN:]
    return Version(tuple(row[:-HIDDEN]), vid, rid, bid, seq)


def decode_row(schema: TableSchema, values: tuple[Any, ...] | None) -> dict[str, Any] | None:
    """A row's storage values as a dict of Python values by column name (None stays None)."""
    if values is None:
        return None
    return {c.name: from_storage(v, c.type) for c, v in zip(schema.columns, values, strict=True)}


def row_key(schema: TableSchema, values: tuple[Any, ...], rid: int) -> dict[str, Any]:
    """How a row is named to the caller: its PRIMARY KEY values, else its row identity ``_rid``."""
    if schema.primary_key:
        row = decode_row(schema, values) or {}
        return {name: row[name] for name in schema.primary_key}
    return {"_rid": rid}


# ----------------------------------------------------------------------------- merge
