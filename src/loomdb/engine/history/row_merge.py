"""Three-way merge of rows: decide per row and cell, settle conflicts by policy, write the result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ... import errors
from ...catalog import TableSchema
from ...connection import ConflictPolicy
from ...results import Conflict, MergeResult, TableChanges
from ...types import from_storage, to_storage
from ...versioning.merge import Conflicted, Row, difference, merge_row, resolve
from ..writes.common import catalog_column
from ..writes.keys import KeyChecker
from ..writes.versions import VersionWriter
from .merge_base import merge_base, pinned_lineage
from .rows import (
    Version,
    by_identity,
    changed_rids,
    decode_row,
    row_key,
    rows_at,
    version_by_id,
    versions_by_key,
)
from .schema_merge import merged_schemas

if TYPE_CHECKING:
    from ..session import Session
    from ..transaction import Txn

#: One row to write on the target: (the identity a new row takes, None: a fresh one;
#: the target's current version, None: the row is new; the row to write, None: delete
#: it; and the base and source rows, for the conflicts a key clash reports).
PlanStep = tuple[int | None, Version | None, Row, Row, Row]


def merge(
    session: Session,
    target: Session,
    source_name: str,
    on_conflict: ConflictPolicy,
    message: str | None,
    author: str | None,
) -> MergeResult:
    """Merge branch ``source_name`` into ``target``'s branch as one commit, settling
    conflicts by ``on_conflict``; MergeConflict (nothing written) when it is "fail" and any clash."""
    store = session.store
    if not (on_conflict in ("fail", "ours", "theirs") or callable(on_conflict)):
        raise errors.ProgrammingError(
            f"on_conflict must be 'fail', 'ours', 'theirs' or a callable, not {on_conflict!r}"
        )
    source_info = store.branch_by_name(source_name)
    if source_info.bid == target.bid:
        raise errors.ProgrammingError(f"cannot merge branch {source_name!r} into itself")
    if store.txn is not None:
        raise errors.ProgrammingError("merge() makes its own commit; call it outside transaction()")
    target.check_writable()
    message = message or f"merge {source_name} into {target.name}"
    with store.write_transaction(target.bid, target.fork(), message, author, explicit=True) as txn:
        source = pinned_lineage(store, source_info.bid)
        base, seen_source, seen_target = merge_base(store, source, target.lineage)
        source_head = store.head(source)
        result = MergeResult(source_name, target.name, None)
        conflicts: list[Conflict] = []
        plans: list[tuple[TableSchema | None, TableSchema, list[PlanStep]]] = []
        theirs_schemas = store.schemas(source)
        merged = merged_schemas(store.schemas(base), target.schemas(), theirs_schemas)
        for before, schema in merged.values():
            rids = changed_rids(store, schema.physical, difference(source, seen_source))
            rids |= changed_rids(store, schema.physical, difference(target.lineage, seen_target))
            old = rows_at(store, schema, base, rids)
            ours = rows_at(store, schema, target.lineage, rids) if before is not None else {}
            theirs = rows_at(store, schema, source, rids)
            plan: list[PlanStep] = []
            sides = [by_identity(schema, side) for side in (old, ours, theirs)]
            if schema.primary_key:
                # A side may hold a key through a row it did not change since
                # it was last merged; find those rows by key.
                wanted = set().union(*sides)
                lineages = (base, target.lineage if before is not None else None, source)
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
                    conflict = conflict_of(schema, rid, outcome.conflict, b, o, t)
                    if on_conflict == "fail":
                        conflicts.append(conflict)
                        continue
                    row = settle(schema, conflict, outcome.conflict, b, o, t, on_conflict)
                    result.conflicts_resolved += 1
                if row != o:
                    # A row new to the target keeps the source's identity, unless
                    # the target already uses that identity for another row.
                    new_rid = vt.rid if vt is not None and vt.rid not in ours_rids else None
                    plan.append((new_rid, vo, row, b, t))
            plans.append((before, schema, plan))
        if conflicts:
            raise errors.MergeConflict(conflicts)
        for before, schema, plan in plans:
            if before is None or before is not schema:
                store.write_schema(txn, schema.name, schema)
            counts = apply_plan(target, schema, plan, txn, on_conflict, conflicts, result)
            if counts != (0, 0, 0) or before is None:
                result.tables[schema.name] = TableChanges(*counts)
        if conflicts:
            raise errors.MergeConflict(conflicts)
        if not txn.changed and result.conflicts_resolved:
            # No row changed, but the resolution is recorded: the next merge
            # starts from here instead of raising the same conflicts again.
            store.ensure_commit(txn)
        if txn.changed:  # else nothing is written: the transaction rolls back
            store.record_merge(txn, source_head, source_info.bid)
            result.commit = txn.seq
    return result


def conflict_of(
    schema: TableSchema, rid: int, conflict: Conflicted, base: Row, ours: Row, theirs: Row
) -> Conflict:
    """The Conflict a three-way row merge reports, keyed and decoded for the caller."""
    some = next(r for r in (ours, theirs, base) if r is not None)
    return Conflict(
        schema.name,
        row_key(schema, some, rid),
        conflict.kind,
        decode_row(schema, base),
        decode_row(schema, ours),
        decode_row(schema, theirs),
        tuple(schema.columns[i].name for i in conflict.columns),
    )


def settle(
    schema: TableSchema,
    conflict: Conflict,
    conflicted: Conflicted,
    base: Row,
    ours: Row,
    theirs: Row,
    policy: ConflictPolicy,
) -> Row:
    """The row a conflict resolves to under ``policy`` (None: the row is deleted);
    ProgrammingError when a callable returns something other than a dict of known columns."""
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


def apply_plan(
    target: Session,
    schema: TableSchema,
    plan: Sequence[PlanStep],
    txn: Txn,
    policy: ConflictPolicy,
    conflicts: list[Conflict],
    result: MergeResult,
) -> tuple[int, int, int]:
    """Write the merged rows on the target; insert/insert key clashes become conflicts."""
    if not plan:
        return 0, 0, 0
    writer = VersionWriter(target, schema, txn)
    checker = KeyChecker(target, schema) if schema.keys else None
    added = modified = deleted = 0
    names = schema.column_names
    # Deletions and updates first, so a key a row gives up is free for a row that takes it.
    steps = sorted(plan, key=lambda step: step[2] is not None and step[1] is None)
    for rid, ours, row, base, theirs in steps:
        values = None if row is None else dict(zip(names, row, strict=True))
        if checker is not None and values is not None:
            clash = checker.conflict(values, own_rid=ours.rid if ours is not None else rid)
            if clash is not None:
                holder = version_by_id(target, schema, clash[2])
                other = holder.values
                conflict = Conflict(
                    schema.name,
                    {c: from_storage(values[c], catalog_column(schema, c).type) for c in clash[0]},
                    "insert/insert",
                    decode_row(schema, base),
                    decode_row(schema, other),
                    decode_row(schema, theirs),
                    clash[0],
                )
                if policy == "fail":
                    conflicts.append(conflict)
                    continue
                result.conflicts_resolved += 1
                if policy == "ours":
                    continue
                if callable(policy):
                    chosen = settle(
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
