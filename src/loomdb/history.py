"""Merge, diff, revert and reset: whole-branch operations over row versions.

Each works from the row identities changed since a common point, found by
scanning the versions written after it (version ids grow with commit ids, so
"written after commit c" is a rowid range), never from a scan of the table:
the cost follows the changes, not the table size.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from . import errors
from .catalog import TableSchema
from .executor import _KeyChecker, _VersionWriter
from .results import Change, Conflict, DiffStat, MergeResult, TableChanges
from .types import from_storage, to_storage
from .versioning.lineage import Lineage
from .versioning.merge import Conflicted, difference, intersection, merge_row, resolve

if TYPE_CHECKING:
    from .database import Database
    from .store import Store

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
        if not store.backend.ordered_versions:
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
        version = _version(row)
        out[version.rid] = version
    return out


def version_by_id(db: Database, schema: TableSchema, vid: int) -> Version:
    """The version ``vid`` as this handle's view shows it."""
    view = db._store.view_sql(schema, db._lineage, "t", True, vid_param=1)
    return _version(next(db._store.backend.execute(f"SELECT * FROM {view} AS t", (f"[{int(vid)}]",))))


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
            out[key] = _version(row)
    return out


def by_identity(schema: TableSchema, versions: dict[int, Version]) -> dict[Any, Version]:
    """Key the versions the way merge and diff match rows across snapshots: by
    PRIMARY KEY where the table has one (a key deleted and inserted again is
    the same row), else by loomdb's row identity."""
    if not schema.primary_key:
        return dict(versions)
    positions = [schema.column_names.index(c) for c in schema.primary_key]
    return {tuple(v.values[i] for i in positions): v for v in versions.values()}


def _version(row: tuple[Any, ...]) -> Version:
    """A Version from a view row whose hidden columns come last."""
    vid, rid, bid, seq = row[-HIDDEN:]
    return Version(tuple(row[:-HIDDEN]), vid, rid, bid, seq)


def _decode(schema: TableSchema, values: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {c.name: from_storage(v, c.type) for c, v in zip(schema.columns, values, strict=True)}


def _key(schema: TableSchema, values: tuple[Any, ...], rid: int) -> dict[str, Any]:
    if schema.primary_key:
        row = _decode(schema, values) or {}
        return {name: row[name] for name in schema.primary_key}
    return {"_rid": rid}


# ----------------------------------------------------------------------------- merge


def merge_base(store: Store, source: Lineage, target: Lineage) -> tuple[Lineage, Lineage, Lineage]:
    """``(base, seen on source, seen on target)`` for merging ``source`` into ``target``.

    After an earlier merge between the two branches (either direction), the
    base is the merged side's head at that merge; otherwise it is what both
    lineages share. The "seen" lineages bound which rows need examining.
    """
    s, t = source.bid, target.bid
    row = next(
        store.backend.execute(
            "SELECT seq, bid, merge_parent FROM loom_commits"
            " WHERE (bid = ? AND merge_bid = ?) OR (bid = ? AND merge_bid = ?) ORDER BY seq DESC LIMIT 1",
            (t, s, s, t),
        ),
        None,
    )
    if row is None:
        shared = intersection(source, target)
        return shared, shared, shared
    merge_commit, into, merged_head = row
    if into == t:
        # The source was merged into the target: the target holds the source up
        # to merged_head. Target rows changed before that merge and not on the
        # source since are kept as they are, so the target side only needs the
        # rows it changed after the merge commit.
        base = store.lineage(s, merged_head)
        return base, base, store.lineage(t, merge_commit)
    # The target was merged into the source: everything the source did itself
    # (before or after that merge) is still new to the target.
    base = store.lineage(t, merged_head)
    return base, base, base


def _merged_schemas(
    base: dict[str, TableSchema], ours: dict[str, TableSchema], theirs: dict[str, TableSchema]
) -> dict[str, tuple[TableSchema | None, TableSchema]]:
    """For each table the source has: (the target's schema before, the merged schema)."""
    out: dict[str, tuple[TableSchema | None, TableSchema]] = {}
    for name, their in theirs.items():
        our, old = ours.get(name), base.get(name)
        if our is None:
            if old is None or old.tid != their.tid:
                out[name] = (None, their)  # created on the source
            continue  # dropped on the target: its rows stay dropped
        if our.tid != their.tid:
            raise errors.NotSupportedError(
                f"table {name!r} was created separately on both branches; loomdb cannot merge two different tables"
            )
        known = {c.name for c in our.columns}
        added = tuple(
            c for c in their.columns if c.name not in known and (old is None or old.column(c.name) is None)
        )
        out[name] = (our, our.with_columns(our.columns + added) if added else our)
    return out


def merge(
    db: Database,
    target: Database,
    source_name: str,
    on_conflict: str | Callable[[Conflict], dict[str, Any] | None],
    message: str | None,
    author: str | None,
) -> MergeResult:
    store = db._store
    if not (on_conflict in ("fail", "ours", "theirs") or callable(on_conflict)):
        raise errors.ProgrammingError(
            f"on_conflict must be 'fail', 'ours', 'theirs' or a callable, not {on_conflict!r}"
        )
    source_info = store.branch_by_name(source_name)
    if source_info.bid == target._bid:
        raise errors.ProgrammingError(f"cannot merge branch {source_name!r} into itself")
    if store.txn is not None:
        raise errors.ProgrammingError("merge() makes its own commit; call it outside transaction()")
    target._check_writable()
    message = message or f"merge {source_name} into {target.branch_name}"
    txn = store.begin(target._bid, target._fork(), message, author, explicit=True)
    try:
        source = pinned_lineage(store, source_info.bid)
        base, seen_source, seen_target = merge_base(store, source, target._lineage)
        source_head = store.head(source)
        result = MergeResult(source_name, target.branch_name, None)
        conflicts: list[Conflict] = []
        plans = []
        theirs_schemas = store.schemas(source)
        merged = _merged_schemas(store.schemas(base), target._schemas(), theirs_schemas)
        for before, schema in merged.values():
            rids = changed_rids(store, schema.physical, difference(source, seen_source))
            rids |= changed_rids(store, schema.physical, difference(target._lineage, seen_target))
            old = rows_at(store, schema, base, rids)
            ours = rows_at(store, schema, target._lineage, rids) if before is not None else {}
            theirs = rows_at(store, schema, source, rids)
            plan = []
            sides = [by_identity(schema, side) for side in (old, ours, theirs)]
            if schema.primary_key:
                # A side may hold a key through a row it did not change since
                # it was last merged; find those rows by key.
                wanted = set().union(*sides)
                lineages = (base, target._lineage if before is not None else None, source)
                for side, lineage in zip(sides, lineages, strict=True):
                    if lineage is not None:
                        side.update(versions_by_key(store, schema, lineage, wanted - side.keys()))
            ours_rids = {v.rid for v in sides[1].values()}
            for ident in sorted(set().union(*sides), key=repr):
                vb, vo, vt = (side.get(ident) for side in sides)
                b, o, t = (v.values if v else None for v in (vb, vo, vt))
                outcome = merge_row(b, o, t)
                row = outcome.result
                if outcome.conflict is not None:
                    rid = next(v.rid for v in (vo, vt, vb) if v is not None)
                    conflict = _conflict(schema, rid, outcome.conflict, b, o, t)
                    if on_conflict == "fail":
                        conflicts.append(conflict)
                        continue
                    row = _settle(schema, conflict, outcome.conflict, b, o, t, on_conflict)
                    result.conflicts_resolved += 1
                if row != o:
                    # A row new to the target keeps the source's identity, unless
                    # the target already uses that identity for another row.
                    rid = vt.rid if vt is not None and vt.rid not in ours_rids else None
                    plan.append((rid, vo, row, b, t))
            plans.append((before, schema, plan))
        if conflicts:
            raise errors.MergeConflict(conflicts)
        for before, schema, plan in plans:
            if before is None or before is not schema:
                store.write_schema(txn, schema.name, schema)
            counts = _apply(target, schema, plan, txn, on_conflict, conflicts, result)
            if counts != (0, 0, 0) or before is None:
                result.tables[schema.name] = TableChanges(*counts)
        if conflicts:
            raise errors.MergeConflict(conflicts)
        if not txn.changed and result.conflicts_resolved:
            # No row changed, but the resolution is recorded: the next merge
            # starts from here instead of raising the same conflicts again.
            store.ensure_commit(txn)
        if not txn.changed:
            store.finish(commit=False)
            return result
        store.backend.execute(
            "UPDATE loom_commits SET merge_parent = ?, merge_bid = ? WHERE seq = ?",
            (source_head, source_info.bid, txn.seq),
        )
        result.commit = txn.seq
        store.finish(commit=True)
        return result
    except BaseException:
        store.finish(commit=False)
        raise


def _conflict(
    schema: TableSchema, rid: int, conflict: Conflicted, base: Any, ours: Any, theirs: Any
) -> Conflict:
    some = next(r for r in (ours, theirs, base) if r is not None)
    return Conflict(
        schema.name,
        _key(schema, some, rid),
        conflict.kind,
        _decode(schema, base),
        _decode(schema, ours),
        _decode(schema, theirs),
        tuple(schema.columns[i].name for i in conflict.columns),
    )


def _settle(
    schema: TableSchema,
    conflict: Conflict,
    conflicted: Conflicted,
    base: Any,
    ours: Any,
    theirs: Any,
    policy: str | Callable[[Conflict], dict[str, Any] | None],
) -> tuple[Any, ...] | None:
    if isinstance(policy, str):
        return resolve(base, ours, theirs, conflicted, policy)
    chosen = policy(conflict)
    if chosen is None:
        return None
    if not isinstance(chosen, dict):
        raise errors.ProgrammingError(
            f"the on_conflict callable must return a dict or None, not {type(chosen).__name__}"
        )
    template = conflict.ours or conflict.theirs or {}
    unknown = set(chosen) - {c.name for c in schema.columns}
    if unknown:
        raise errors.ProgrammingError(
            f"the on_conflict callable returned unknown columns: {', '.join(sorted(unknown))}"
        )
    row = {**template, **chosen}
    return tuple(to_storage(row.get(c.name), c.type, c.name) for c in schema.columns)


def _apply(
    target: Database,
    schema: TableSchema,
    plan: list[tuple[int | None, Version | None, Any, Any, Any]],
    txn: Any,
    policy: Any,
    conflicts: list[Conflict],
    result: MergeResult,
) -> tuple[int, int, int]:
    """Write the merged rows on the target; insert/insert key clashes become conflicts."""
    if not plan:
        return 0, 0, 0
    writer = _VersionWriter(target, schema, txn)
    checker = _KeyChecker(target, schema) if schema.keys else None
    added = modified = deleted = 0
    names = schema.column_names
    # Deletions and updates first, so a key a row gives up is free for a row that takes it.
    plan = sorted(plan, key=lambda step: step[2] is not None and step[1] is None)
    for rid, ours, row, base, theirs in plan:
        values = None if row is None else dict(zip(names, row, strict=True))
        if checker is not None and values is not None:
            clash = checker.conflict(values, own_rid=ours.rid if ours is not None else rid)
            if clash is not None:
                holder = version_by_id(target, schema, clash[2])
                other = holder.values
                conflict = Conflict(
                    schema.name,
                    {c: from_storage(values[c], schema.column(c).type) for c in clash[0]},
                    "insert/insert",
                    _decode(schema, base),
                    _decode(schema, other),
                    _decode(schema, theirs),
                    clash[0],
                )
                if policy == "fail":
                    conflicts.append(conflict)
                    continue
                result.conflicts_resolved += 1
                if policy == "ours":
                    continue
                if callable(policy):
                    chosen = _settle(
                        schema, conflict, Conflicted("insert/insert", ()), base, other, theirs, policy
                    )
                    # The callable's row replaces the target's row; the source's copy is not added.
                    if chosen is None:
                        writer.supersede(holder[1:], None)
                        deleted += 1
                    else:
                        writer.supersede(holder[1:], dict(zip(names, chosen, strict=True)))
                        modified += 1
                    continue
                # "theirs": the target's row gives way to the source's.
                writer.supersede(holder[1:], None)
                checker.forget({c: values[c] for c in names})
        if ours is None:
            if values is None:
                continue
            vid = writer.insert(values, rid=rid)
            rid = rid if rid is not None else vid
            added += 1
        elif values is None:
            writer.supersede((ours.vid, ours.rid, ours.bid, ours.seq), None)
            if checker is not None:
                checker.forget(dict(zip(names, ours.values, strict=True)))
            deleted += 1
            continue
        else:
            vid = writer.supersede((ours.vid, ours.rid, ours.bid, ours.seq), values) or ours.vid
            rid = ours.rid
            modified += 1
        if checker is not None:
            checker.remember(values, rid, vid)
    return added, modified, deleted


# ----------------------------------------------------------------------------- diff


def pinned_lineage(store: Store, bid: int) -> Lineage:
    """Branch ``bid``'s lineage at its newest commit: later commits stay out."""
    return store.lineage(bid, store.head(store.lineage(bid, None)))


def snapshot_lineage(db: Database, when: str | int | dt.datetime) -> Lineage:
    """A branch name's lineage at its current head, a commit's, or this handle's
    history at a time.

    A branch is pinned at its head when asked for: its writers do not wait for
    a merge, diff or reset reading it (on PostgreSQL, and between the
    statements of a diff on SQLite), and a commit landing meanwhile must count
    entirely or not at all.
    """
    store = db._store
    if isinstance(when, str):
        return pinned_lineage(store, store.branch_by_name(when).bid)
    if isinstance(when, dt.datetime):
        return store.lineage(db._bid, store.commit_at(db._lineage, when))
    if isinstance(when, int) and not isinstance(when, bool):
        seq, bid = store.commit_info(when)
        return store.lineage(bid, seq)
    raise errors.ProgrammingError(
        f"expected a branch name, a commit id or a datetime, not {type(when).__name__}"
    )


def _paired_tables(
    a: dict[str, TableSchema], b: dict[str, TableSchema]
) -> Iterator[tuple[str, TableSchema | None, TableSchema | None]]:
    for name in sorted(set(a) | set(b)):
        yield name, a.get(name), b.get(name)


def diff(db: Database, a: Any, b: Any, table: str | None) -> Iterator[Change]:
    store = db._store
    la, lb = snapshot_lineage(db, a), snapshot_lineage(db, b)
    ranges = difference(la, lb) + difference(lb, la)
    for name, sa, sb in _paired_tables(store.schemas(la), store.schemas(lb)):
        if table is not None and name != table:
            continue
        if sa is not None and sb is not None and sa.tid == sb.tid:
            names_a = set(sa.column_names)
            schema = sa.with_columns(sa.columns + tuple(c for c in sb.columns if c.name not in names_a))
            rids = changed_rids(store, schema.physical, ranges)
            before, after = rows_at(store, schema, la, rids), rows_at(store, schema, lb, rids)
        else:  # the table exists on one side only (or is a different table): every row differs
            schema = sa or sb  # type: ignore[assignment]
            before = _all_rows(db, sa, la) if sa is not None else {}
            after = _all_rows(db, sb, lb) if sb is not None else {}
            if sa is not None and sb is not None:
                schema = sb
            rids = set(before) | set(after)
        before_by, after_by = by_identity(schema, before), by_identity(schema, after)
        for ident in sorted(set(before_by) | set(after_by), key=repr):
            old, new = before_by.get(ident), after_by.get(ident)
            rid = (new or old).rid  # type: ignore[union-attr]
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
                name, kind, _key(schema, nv or ov, rid), _decode(schema, ov), _decode(schema, nv), columns
            )


def _all_rows(db: Database, schema: TableSchema, lineage: Lineage) -> dict[int, Version]:
    view = db._store.view_sql(schema, lineage, "t", True)
    out = {}
    for row in db._store.backend.execute(f"SELECT * FROM {view} AS t"):
        version = _version(row)
        out[version.rid] = version
    return out


def diff_stat(db: Database, a: Any, b: Any) -> dict[str, DiffStat]:
    counts: dict[str, list[int]] = {}
    for change in diff(db, a, b, None):
        slot = counts.setdefault(change.table, [0, 0, 0])
        slot[("added", "removed", "modified").index(change.kind)] += 1
    return {name: DiffStat(*c) for name, c in counts.items()}


# ----------------------------------------------------------------------------- revert and reset


def revert(db: Database, commit: int, message: str | None, author: str | None) -> int | None:
    store = db._store
    seq, bid = store.commit_info(commit)
    row = next(store.backend.execute("SELECT parent FROM loom_commits WHERE seq = ?", (seq,)))
    if row[0] is None:
        raise errors.ProgrammingError(f"commit {seq} created the store; there is nothing to revert")
    if next(store.backend.execute("SELECT 1 FROM loom_schema WHERE seq = ? LIMIT 1", (seq,)), None):
        raise errors.NotSupportedError(
            f"commit {seq} changed the schema; reverting schema changes is not supported"
        )
    after, before = store.lineage(bid, seq), store.lineage(bid, int(row[0]))
    return _rewrite(
        db,
        message or f"revert commit {seq}",
        author,
        lambda schema: changed_rids(store, schema.physical, [(bid, seq - 1, seq)]),
        base=after,
        theirs=before,
        schemas=store.schemas(after),
    )


def reset(db: Database, to: Any, message: str | None, author: str | None) -> int | None:
    store = db._store
    goal = snapshot_lineage(db, to)
    current = db._lineage
    ranges = difference(current, goal) + difference(goal, current)
    return _rewrite(
        db,
        message or f"reset {db.branch_name} to {to}",
        author,
        lambda schema: changed_rids(store, schema.physical, ranges),
        base=None,
        theirs=goal,
        schemas=store.schemas(goal),
    )


def _rewrite(
    db: Database,
    message: str,
    author: str | None,
    candidates: Callable[[TableSchema], set[int]],
    base: Lineage | None,
    theirs: Lineage,
    schemas: dict[str, TableSchema],
) -> int | None:
    """Make rows of this branch follow ``theirs``: all of them (base None: reset)
    or, three-way from ``base``, only what changed between base and theirs (revert)."""
    store = db._store
    if store.txn is not None:
        raise errors.ProgrammingError(
            "revert() and reset() make their own commit; call them outside transaction()"
        )
    db._check_writable()
    txn = store.begin(db._bid, db._fork(), message, author, explicit=True)
    try:
        ours_schemas = db._schemas()
        conflicts: list[Conflict] = []
        if base is None:  # reset: the schema follows too
            for name in set(ours_schemas) | set(schemas):
                mine, goal = ours_schemas.get(name), schemas.get(name)
                if (mine.to_json() if mine else None) != (goal.to_json() if goal else None):
                    store.write_schema(txn, name, goal)
        for name, schema in schemas.items():
            mine = db._schemas().get(name)
            if mine is None or mine.tid != schema.tid:
                continue
            rids = candidates(schema)
            old = rows_at(store, schema, base, rids) if base is not None else {}
            ours = rows_at(store, schema, db._lineage, rids)
            goal = rows_at(store, schema, theirs, rids)
            plan = []
            for rid in sorted(rids):
                o = ours[rid].values if rid in ours else None
                t = goal[rid].values if rid in goal else None
                if base is None:
                    row = t
                else:
                    b = old[rid].values if rid in old else None
                    outcome = merge_row(b, o, t)
                    if outcome.conflict is not None:
                        conflicts.append(_conflict(schema, rid, outcome.conflict, b, o, t))
                        continue
                    row = outcome.result
                if row != o:
                    plan.append((rid, ours.get(rid), row, None, t))
            if not conflicts:
                _apply(db, schema, plan, txn, "theirs", conflicts, MergeResult("", "", None))
        if conflicts:
            raise errors.MergeConflict(conflicts)
        seq = txn.seq if txn.changed else None
        store.finish(commit=True)
        return seq
    except BaseException:
        store.finish(commit=False)
        raise
