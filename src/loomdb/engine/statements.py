"""Running statements on a session: queries, writes, batches and EXPLAIN.

A query is compiled against the session's branch view and run (or answered
from the vector cache); a write runs inside the store's one write-transaction
primitive (its own, or the open ``transaction()`` block's, behind a
savepoint). Parameters arrive bound (see ``sql/params.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from .. import errors
from ..backend.protocol import ProbedReads
from ..cursor import Cursor, Row
from ..layout import EPOCH_SQL
from ..sql.compile import Compiled
from ..sql.dialect import parse
from ..sql.params import bind, normalize
from ..sql.rules.refuse_unsupported import refuse_data_modifying_with
from . import batch_insert
from .session import Session
from .transaction import KeyProbe, Txn
from .vector_search import vector_plan, vector_select
from .writes import ddl, insert, update
from .writes.common import WriteResult

READ_STATEMENTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
Params = Sequence[Any] | Mapping[str, Any]
Parsed = list[tuple[str, exp.Expression, list[list[Any]]]]

# Placeholder of the schema-epoch column a query carries on engines without a
# cheap change check (see _compile_probed).
_EPOCH_PROBE = "LOOM_EPOCH_PROBE"
_BATCH_PROBES = 64  # key lookups an execute_batch sends with BEGIN


def prepare(sql: Any, params: Params | None) -> tuple[str, exp.Expression, list[Any]]:
    """``sql`` normalised, parsed and its parameters bound (ProgrammingError on bad input)."""
    if not isinstance(sql, str):
        raise errors.ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
    text, plan = normalize(sql, params is not None)
    return text, parse(text), bind(plan, params)


def _prepare_write(
    sql: Any, seq_of_params: Iterable[Params], caller: str
) -> tuple[str, exp.Expression, list[list[Any]]]:
    """A write statement normalised and parsed, with each parameter set bound
    (ProgrammingError for SQL that is no str, or a query: ``caller`` runs writes)."""
    if not isinstance(sql, str):
        raise errors.ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
    batches = list(seq_of_params)
    text, plan = normalize(sql, bool(batches))
    tree = parse(text)
    if isinstance(tree, READ_STATEMENTS):
        raise errors.ProgrammingError(f"{caller}() runs writes; use execute() for queries")
    return text, tree, [bind(plan, p) for p in batches]


def execute(session: Session, sql: str, params: Params | None) -> Cursor:
    """Run one statement (see ``Database.execute``)."""
    session.check_not_failed()
    text, tree, values = prepare(sql, params)
    store = session.store
    if isinstance(tree, READ_STATEMENTS):
        if store.probed is not None:
            return _select_probed(session, store.probed, text, tree, values)
        if store.txn is None:
            # Inside a write transaction nobody else can commit on SQLite.
            store.refresh()
        return _select(session, text, tree, values)
    # A write refreshes its caches after taking the write lock.
    return write(session, text, tree, [values])


def executemany(session: Session, sql: str, seq_of_params: Iterable[Params]) -> Cursor:
    """Run one write statement once per parameter set, in one commit."""
    # No refresh here: the write refreshes after taking the write lock, and
    # inside an open transaction the lock keeps this branch's schema still.
    return write(session, *_prepare_write(sql, seq_of_params, "executemany"))


def execute_batch(session: Session, statements: Sequence[tuple[str, Iterable[Params]]]) -> list[Cursor]:
    """Run write statements in order as one commit (see ``Database.execute_batch``)."""
    session.check_not_failed()
    parsed: Parsed = [
        _prepare_write(sql, seq_of_params, "execute_batch") for sql, seq_of_params in statements
    ]
    store = session.store
    if store.txn is not None:
        return [write(session, text, tree, values) for text, tree, values in parsed]
    session.check_writable()
    done = batch_insert.run(session, parsed)
    if done is not None:
        return done
    probes = _batch_probes(session, parsed) if store.pipelined is not None else []
    with store.write_transaction(
        session.bid, session.fork(), explicit=True, savepoints=False, lookups=probes
    ):
        return [write(session, text, tree, values) for text, tree, values in parsed]


def explain(session: Session, sql: str, params: Params | None) -> str:
    """The SQL loomdb runs for a query on this branch, and the engine's plan for it."""
    session.store.refresh()
    text, tree, values = prepare(sql, params)
    if not isinstance(tree, READ_STATEMENTS):
        raise errors.NotSupportedError("explain() takes a query (SELECT, VALUES or a set operation)")
    compiled = session.compile(tree, key=text)
    bound = session.adapt(compiled, values)
    plan_lines = session.store.backend.query_plan(compiled.sql, bound)
    return "SQL:\n  " + compiled.sql + "\nPLAN:\n" + "\n".join("  " + line for line in plan_lines)


# -- queries ------------------------------------------------------------------------------------


def _select(session: Session, key: str, tree: exp.Expression, values: list[Any]) -> Cursor:
    store = session.store
    if store.txn is None and store.allocator is None:  # version ids follow the commit order
        plan = vector_plan(session, key, tree)
        if plan is not None:
            return vector_select(session, plan, values)
    compiled = session.compile(tree, key=key)
    if store.txn is None:
        store.backend.set_statement_time(None)
    rows = session.run_compiled(compiled, values)
    return session.cursor(compiled, rows)


def _select_probed(
    session: Session, probed: ProbedReads, key: str, tree: exp.Expression, values: list[Any]
) -> Cursor:
    """A query on an engine without a cheap change check: the schema epoch
    travels with the query (as an extra last column of a plain SELECT, or
    as a second statement in the same round trip), and after a schema
    change (rare) the query is compiled and run again. Physical tables and
    columns are never dropped, so SQL compiled against the old schema
    still runs."""
    store = session.store
    try:
        compiled, carries_epoch = _compile_probed(session, tree, key)
    except errors.ProgrammingError:
        store.refresh()  # the table or column may be new: look again
        return _select(session, key, tree, values)
    bound = session.adapt(compiled, values)
    if carries_epoch:
        rows = session.run_compiled(compiled, values)
        epoch = rows[0][-1] if rows else store.read_epoch()
        rows = [row[:-1] for row in rows]
    else:
        first, rows = probed.execute_probed(EPOCH_SQL, compiled.sql, bound)
        epoch = None if first is None else first[0]
    if store.refresh(epoch_text=epoch):
        return _select(session, key, tree, values)
    return session.cursor(compiled, rows)


def _compile_probed(session: Session, tree: exp.Expression, key: str) -> tuple[Compiled, bool]:
    """``tree`` compiled with the schema epoch as an extra last result column
    where that cannot change its meaning (a plain SELECT: positional ORDER BY
    and GROUP BY refer to earlier columns, and the value is one constant);
    the Compiled it returns describes the columns without it."""
    cache_key = (key, session.lineage)
    probed = session.store.plans.probed
    found = probed.get(cache_key)
    if found is not None:
        return found
    if not isinstance(tree, exp.Select):
        found = (session.compile(tree, key=key), False)
    else:
        probe = tree.copy()
        probe.select(exp.Anonymous(this=_EPOCH_PROBE), copy=False)
        compiled = session.compile(probe, key=("probed-sql", key))
        marker = f"{_EPOCH_PROBE}()"
        if compiled.sql.count(marker) != 1:
            found = (session.compile(tree, key=key), False)
        else:
            found = (
                dataclasses.replace(
                    compiled,
                    sql=compiled.sql.replace(marker, f"({EPOCH_SQL})"),
                    names=compiled.names[:-1],
                    types=compiled.types[:-1],
                ),
                True,
            )
    probed[cache_key] = found
    return found


# -- writes -------------------------------------------------------------------------------------


def write(session: Session, key: str, tree: exp.Expression, batches: list[list[Any]]) -> Cursor:
    """Run a write statement once per parameter set: in a write transaction of
    its own, or in the open one (behind a savepoint when it has them)."""
    session.check_writable()
    store = session.store
    runner = _WRITERS.get(type(tree))
    if runner is None:
        raise _unsupported(tree)
    if tree.args.get("with_") is not None:
        refuse_data_modifying_with(tree)
    txn = store.txn
    if txn is None:
        if type(tree) is exp.Insert and store.pipelined is not None:
            # On PostgreSQL an INSERT ... ON CONFLICT DO NOTHING (or into a table
            # without keys) of rows the client builds alone is one round trip.
            # (On SQLite one such statement gains nothing: measured slower.)
            done = batch_insert.run(session, [(key, tree, batches)])
            if done is not None:
                return done[0]
        # On an engine where BEGIN is a round trip, the key lookups of a
        # one-row INSERT ride with it (they run after the branch lock).
        probes = (
            insert.key_probes(session, tree, batches[0], key)
            if store.pipelined is not None and len(batches) == 1 and type(tree) is exp.Insert
            else []
        )
        with store.write_transaction(session.bid, session.fork(), explicit=False, lookups=probes):
            result, total = _run_writer(session, runner, tree, batches, key)
    else:
        result, total = _write_in(session, txn, runner, tree, batches, key)
    if result is not None and result.returning is not None:
        return session.cursor(result.returning, result.returning_rows or [], rowcount=total)
    return Cursor(None, rowcount=total, row_type=Row)


def _write_in(
    session: Session, txn: Txn, runner: _Writer, tree: exp.Expression, batches: list[list[Any]], key: str
) -> tuple[WriteResult | None, int]:
    """A write statement inside the open transaction ``txn``: undone alone when it
    fails (savepoints), or failing the whole transaction (without)."""
    session.check_txn_branch(txn)
    session.check_not_failed()
    transactions = session.store.transactions
    if txn.known_keys and type(tree) is not exp.Insert:
        # Keys looked up with BEGIN are good until their table changes;
        # only an INSERT into it (which takes them) is tracked.
        txn.known_keys.clear()
    if txn.savepoints:
        # Inside transaction(), a failed statement must leave no trace even
        # when the caller catches the error and carries on.
        transactions.savepoint()
    try:
        done = _run_writer(session, runner, tree, batches, key)
        if txn.savepoints:
            # Writes the engine deferred reach the server here at the latest:
            # their errors belong to this statement.
            transactions.release_savepoint()
        return done
    except BaseException as exc:
        try:
            if txn.savepoints and isinstance(exc, Exception):
                transactions.rollback_to_savepoint()
            else:
                # An interrupt (KeyboardInterrupt, SystemExit...) may have landed
                # anywhere in the statement, even before its savepoint reached the
                # engine: the whole transaction goes.
                transactions.fail(f"{type(exc).__name__}: {exc}")
        except BaseException:
            # The statement could not be undone alone (interrupted again, say):
            # the whole transaction goes instead.
            transactions.fail(f"{type(exc).__name__}: {exc}")
        raise


def _run_writer(
    session: Session, runner: _Writer, tree: exp.Expression, batches: list[list[Any]], key: str
) -> tuple[WriteResult | None, int]:
    if len(batches) > 1 and type(tree) is exp.Insert:
        result = insert.run_insert_many(session, tree, batches, key)
        return result, result.rowcount
    total = 0
    last: WriteResult | None = None
    for values in batches:
        last = runner(session, tree, values, key)
        total += last.rowcount
    return last, total


def _batch_probes(session: Session, parsed: Parsed) -> list[KeyProbe]:
    """The key lookups of a batch's INSERTs, one per row, for BEGIN to carry
    (at most ``_BATCH_PROBES``: later rows look their keys up as usual)."""
    probes: dict[Any, KeyProbe] = {}
    for text, tree, batches in parsed:
        if type(tree) is not exp.Insert:
            continue
        for values in batches:
            for probe in insert.key_probes(session, tree, values, text):
                probes.setdefault(probe.key, probe)
            if len(probes) >= _BATCH_PROBES:
                return list(probes.values())
    return list(probes.values())


def _run_create(session: Session, tree: exp.Create, values: list[Any], key: str) -> WriteResult:
    kind = str(tree.args.get("kind") or "").upper()
    if kind == "TABLE":
        return ddl.run_create_table(session, tree)
    if kind == "INDEX":
        return ddl.run_create_index(session, tree)
    raise errors.NotSupportedError(f"CREATE {kind} is not supported by loomdb")


_Writer = Callable[[Session, Any, list[Any], str], WriteResult]

_WRITERS: dict[type[exp.Expression], _Writer] = {
    exp.Insert: insert.run_insert,
    exp.Update: update.run_update,
    exp.Delete: update.run_delete,
    exp.Create: _run_create,
    exp.Drop: lambda session, tree, values, key: ddl.run_drop(session, tree),
    exp.Alter: lambda session, tree, values, key: ddl.run_alter(session, tree),
    exp.TruncateTable: lambda session, tree, values, key: update.run_truncate(session, tree, key),
}


# PostgreSQL statements sqlglot does not parse; loomdb names them instead of
# calling them syntax errors.
_POSTGRES_STATEMENTS = frozenset(
    [
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "VACUUM",
        "ANALYZE",
        "COPY",
        "GRANT",
        "REVOKE",
        "LOCK",
        "PREPARE",
        "EXECUTE",
        "DEALLOCATE",
        "DO",
        "CALL",
        "CLUSTER",
        "REINDEX",
        "DISCARD",
        "CHECKPOINT",
        "COMMENT",
        "REFRESH",
        "IMPORT",
        "LOAD",
        "MOVE",
        "FETCH",
        "CLOSE",
        "DECLARE",
        "RESET",
        "SHOW",
        "SECURITY",
        "SAVEPOINT",
        "RELEASE",
    ]
)


def _unsupported(tree: exp.Expression) -> errors.Error:
    if isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
        return errors.NotSupportedError(
            "transaction statements (BEGIN/COMMIT/ROLLBACK) are not run as SQL; use `with db.transaction():`"
        )
    if isinstance(tree, exp.Command):
        return errors.NotSupportedError(f"{str(tree.this).upper()} statements are not supported by loomdb")
    if isinstance(tree, (exp.Alias, exp.Column)):
        word = tree.sql(dialect="postgres").split()[0].strip('"')
        if word.upper() in _POSTGRES_STATEMENTS:
            return errors.NotSupportedError(f"{word.upper()} statements are not supported by loomdb")
        return errors.ProgrammingError(f"syntax error at or near {word!r}", sqlstate="42601")
    name = type(tree).__name__.upper()
    return errors.NotSupportedError(f"{name} statements are not supported by loomdb")
