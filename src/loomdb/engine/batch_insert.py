"""Batches of ``INSERT ... ON CONFLICT DO NOTHING`` (or plain INSERTs into tables
without keys) as one INSERT per row that skips the row when the branch already
has its key: no key lookups of their own. On PostgreSQL the batch is then one
round trip; on SQLite it is fewer statements and less Python. A single INSERT
outside a transaction is such a batch too.

``execute_batch``'s usual path there takes two round trips: BEGIN with every
key lookup, then the writes with COMMIT, because the client decides from the
lookups what to write. When every statement of a batch is an ``INSERT ...
ON CONFLICT DO NOTHING`` into a table with one key, or an INSERT into a table
with none, of rows the client can build alone (values from parameters or
literals, defaults that are constants, ``now()`` or a random UUID), the
server can decide instead, and the batch is one round trip:

    BEGIN; the branch lock; the commit row (its id kept in the transaction's
    ``loom.batch_seq`` setting); one INSERT per row, which inserts nothing
    when the branch view has the row's key already; a check that fails on
    purpose when no row was inserted, so that COMMIT is skipped and the
    transaction rolled back (no commit, no WAL flush); COMMIT.

Each row's INSERT also checks that the schema epoch is the one the client
planned with, and inserts nothing otherwise: the client then refreshes its
caches and runs the batch the usual way. So it does after any error (the
server skips the rest of the batch, COMMIT included, and the client rolls
back): the usual path reports what is wrong.

On SQLite, where statements cost no round trip, the batch takes the write
lock first and plans after it, so the schema cannot move under it; each
row's INSERT carries its version id, and a batch that inserted nothing is
rolled back (no commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from .. import errors
from ..catalog import TableSchema
from ..cursor import Cursor, Row
from ..layout import INF_SEQ, version_insert_sql
from ..time_values import now_text
from .plans import InsertPlan
from .transaction import Txn
from .writes.common import Defaults, check_row, default_kind
from .writes.insert import conflict_target, insert_plan, insert_rows

if TYPE_CHECKING:
    from .session import Session

Parsed = list[tuple[str, exp.Expression, list[list[Any]]]]


def run(session: Session, parsed: Parsed) -> list[Cursor] | None:
    """Run the batch (outside any transaction) and return its cursors, or None when
    it does not qualify (or, on PostgreSQL, the schema moved): the caller then
    takes the usual path."""
    plans = []
    for text, tree, _ in parsed:
        plan = _plan(session, tree, text)
        if plan is None:
            return None
        plans.append(plan)
    if session.store.pipelined is not None:
        return _one_trip(session, parsed, plans)
    # On SQLite the gain is the key lookups skipped: none for tables without keys.
    return _local(session, parsed) if any(plan.schema.keys for plan in plans) else None


def _local(session: Session, parsed: Parsed) -> list[Cursor] | None:
    store = session.store
    counts: list[int] = []
    try:
        with store.write_transaction(session.bid, session.fork(), explicit=True) as txn:
            for text, tree, batches in parsed:
                plan = _plan(session, tree, text)  # after the lock: on the schema as it is now
                if plan is None:
                    raise _Unplanned
                schema = plan.schema
                sql = _row_insert_sql(session, plan)
                defaults = Defaults(session, schema, txn)
                inserted = 0
                for params in batches:
                    for row in insert_rows(session, plan, params, text, defaults):
                        check_row(schema, row)
                        seq = store.ensure_commit(txn)
                        values = [row.get(c.name) for c in schema.columns]
                        store.backend.execute(
                            sql, [store.allocate_vid(schema.physical), txn.bid, seq, *values]
                        )
                        inserted += store.backend.changes()
                counts.append(inserted)
            # Every key was taken: no commit (the commit row goes with the rollback).
            txn.changed = any(counts)
    except _Unplanned:
        return None
    return [Cursor(None, rowcount=n, row_type=Row) for n in counts]


class _Unplanned(Exception):
    """A statement of the batch cannot run as conditional INSERTs (rolled back, then run the usual way)."""


def _local_sql(schema: TableSchema, view: str, key: list[tuple[str, int]]) -> str:
    """The row INSERT of SQLite: ?1 its _vid, ?2 the branch, ?3 the commit, then the columns."""
    marks = "".join(f", ?{i + 4}" for i in range(len(schema.columns)))
    head = version_insert_sql(schema.physical, [c.phys for c in schema.columns])
    sql = f"{head} SELECT ?1, ?1, ?2, ?3, {INF_SEQ}, 0{marks}"
    if key:
        same = " AND ".join(f't."{name}" = ?{i + 4}' for name, i in key)
        sql += f" WHERE NOT EXISTS (SELECT 1 FROM {view} AS t WHERE {same})"
    return sql


def _one_trip(session: Session, parsed: Parsed, plans: list[InsertPlan]) -> list[Cursor] | None:
    store = session.store
    txn = Txn(session.bid, session.fork(), None, None, now_text(), True)
    steps: list[tuple[str, Sequence[Any]]] = []
    owners: list[int] = []  # for each row's INSERT, the statement it belongs to
    tables: set[str] = set()
    for index, ((text, _, batches), plan) in enumerate(zip(parsed, plans, strict=True)):
        sql = _row_insert_sql(session, plan)
        defaults = Defaults(session, plan.schema, txn)
        for params in batches:
            for row in insert_rows(session, plan, params, text, defaults):
                check_row(plan.schema, row)
                steps.append(
                    (sql, [txn.bid, str(store.epoch), *(row.get(c.name) for c in plan.schema.columns)])
                )
                owners.append(index)
        tables.add(plan.schema.physical)
    if not steps:
        return None
    try:
        outcome = store.transactions.insert_batch(
            txn.bid, store.commit_row_sql(txn), steps, sorted(tables), str(store.epoch), store.drop_commit_sql
        )
    except errors.OperationalError:
        # The connection failed: the batch may have committed before the answer
        # was lost, so running it again could write it twice. The caller hears.
        raise
    except errors.Error:
        return None  # rolled back; the usual path runs the batch and reports what is wrong
    if int(outcome.epoch or 0) != store.epoch:
        store.refresh(epoch_text=outcome.epoch)  # nothing was inserted, and the commit row is gone
        return None
    counts = [0] * len(parsed)
    for owner, rowcount in zip(owners, outcome.counts, strict=True):
        counts[owner] += rowcount
    if outcome.seq is not None and any(counts):
        txn.seq = outcome.seq
        store.committed(txn)
    return [Cursor(None, rowcount=n, row_type=Row) for n in counts]


def _plan(session: Session, tree: exp.Expression, text: str) -> InsertPlan | None:
    """The INSERT's plan when it can run as conditional INSERTs, else None."""
    if type(tree) is not exp.Insert or tree.args.get("returning") is not None:
        return None
    conflict = tree.args.get("conflict")
    if conflict is not None and (conflict.args.get("expressions") or conflict.args.get("constraint")):
        return None
    try:
        plan = insert_plan(session, tree, text)
        if plan.query is not None or plan.rows is None or len(plan.schema.keys) > 1:
            return None
        if conflict is None:
            if plan.schema.keys:
                return None  # a taken key is an error, which the usual path raises
        else:
            conflict_target(session, plan.schema, conflict)  # raises for a target that is no key
    except errors.Error:
        return None
    if any(c.identity == "always" for c in plan.columns):
        return None  # a value for it is an error, which the usual path raises
    defaulted = list(plan.unlisted)
    for sources in plan.rows:
        for column, source in zip(plan.columns, sources, strict=True):
            if source[0] == "d":
                defaulted.append(column)
            elif source[0] not in ("p", "v"):
                return None  # an expression: computed by the server on the usual path
    for column in defaulted:
        if column.type.kind == "serial":
            return None
        if column.default is not None and default_kind(session, column)[0] == "expr":
            return None
    return plan


def _row_insert_sql(session: Session, plan: InsertPlan) -> str:
    """The INSERT of one of ``plan``'s rows that skips a key the branch has (cached):
    the engine's own on PostgreSQL, :func:`_local_sql` on SQLite."""
    schema = plan.schema
    cache_key = (schema.tid, schema.physical, session.lineage, id(schema))
    sql = session.store.plans.absent_inserts.get(cache_key)
    if sql is None:
        position = {c.name: i for i, c in enumerate(schema.columns)}
        key = [(name, position[name]) for name in (schema.keys[0] if schema.keys else ())]
        view = session.store.view_sql(schema, session.lineage, "t", False)
        if session.store.pipelined is not None:
            sql = session.store.pipelined.absent_insert_sql(
                schema.physical, [(c.phys, c.type) for c in schema.columns], view, key
            )
        else:
            sql = _local_sql(schema, view, key)
        session.store.plans.absent_inserts[cache_key] = sql
    return sql
