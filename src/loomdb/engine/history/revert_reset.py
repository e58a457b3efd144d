"""revert (undo one commit) and reset (follow another snapshot), each as one new commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ... import errors
from ...catalog import TableSchema
from ...connection import Snapshot
from ...results import Conflict, MergeResult
from ...versioning.lineage import Lineage
from ...versioning.merge import difference, merge_row
from .merge_base import snapshot_lineage
from .row_merge import PlanStep, apply_plan, conflict_of
from .rows import changed_rids, rows_at

if TYPE_CHECKING:
    from ..session import Session


def revert(session: Session, commit: int, message: str | None, author: str | None) -> int | None:
    """Undo commit ``commit`` on this branch as one new commit, three-way, so later changes
    stay; returns its id (None: nothing to undo). MergeConflict when a later change clashes."""
    store = session.store
    seq, bid = store.commit_info(commit)
    parent = store.commit_parent(seq)
    if parent is None:
        raise errors.ProgrammingError(f"commit {seq} created the store; there is nothing to revert")
    if store.changed_schema(seq):
        raise errors.NotSupportedError(
            f"commit {seq} changed the schema; reverting schema changes is not supported"
        )
    after, before = store.lineage(bid, seq), store.lineage(bid, parent)
    return rewrite(
        session,
        message or f"revert commit {seq}",
        author,
        lambda schema: changed_rids(store, schema.physical, [(bid, seq - 1, seq)]),
        base=after,
        theirs=before,
        schemas=store.schemas(after),
    )


def reset(session: Session, to: Snapshot, message: str | None, author: str | None) -> int | None:
    """Make this branch's tables and rows those of snapshot ``to``, as one new commit;
    returns its id (None: they already were)."""
    store = session.store
    goal = snapshot_lineage(session, to)
    current = session.lineage
    ranges = difference(current, goal) + difference(goal, current)
    return rewrite(
        session,
        message or f"reset {session.name} to {to}",
        author,
        lambda schema: changed_rids(store, schema.physical, ranges),
        base=None,
        theirs=goal,
        schemas=store.schemas(goal),
    )


def rewrite(
    session: Session,
    message: str,
    author: str | None,
    candidates: Callable[[TableSchema], set[int]],
    base: Lineage | None,
    theirs: Lineage,
    schemas: dict[str, TableSchema],
) -> int | None:
    """Make rows of this branch follow ``theirs``: all of them (base None: reset)
    or, three-way from ``base``, only what changed between base and theirs (revert)."""
    store = session.store
    if store.txn is not None:
        raise errors.ProgrammingError(
            "revert() and reset() make their own commit; call them outside transaction()"
        )
    session.check_writable()
    with store.write_transaction(session.bid, session.fork(), message, author, explicit=True) as txn:
        ours_schemas = session.schemas()
        conflicts: list[Conflict] = []
        if base is None:  # reset: the schema follows too
            for name in set(ours_schemas) | set(schemas):
                mine, wanted = ours_schemas.get(name), schemas.get(name)
                if (mine.to_json() if mine else None) != (wanted.to_json() if wanted else None):
                    store.write_schema(txn, name, wanted)
        for name, schema in schemas.items():
            current = session.schemas().get(name)
            if current is None or current.tid != schema.tid:
                continue
            rids = candidates(schema)
            old = rows_at(store, schema, base, rids) if base is not None else {}
            ours = rows_at(store, schema, session.lineage, rids)
            goal = rows_at(store, schema, theirs, rids)
            plan: list[PlanStep] = []
            for rid in sorted(rids):
                o = ours[rid].values if rid in ours else None
                t = goal[rid].values if rid in goal else None
                if base is None:
                    row = t
                else:
                    b = old[rid].values if rid in old else None
                    outcome = merge_row(b, o, t)
                    if outcome.conflict is not None:
                        conflicts.append(conflict_of(schema, rid, outcome.conflict, b, o, t))
                        continue
                    row = outcome.result
                if row != o:
                    plan.append((rid, ours.get(rid), row, None, t))
            if not conflicts:
                apply_plan(session, schema, plan, txn, "theirs", conflicts, MergeResult("", "", None))
        if conflicts:
            raise errors.MergeConflict(conflicts)
    return txn.seq if txn.changed else None
