"""The write transaction: one primitive that every path that writes goes through.

:meth:`WriteTransactions.write` is a context manager. Whatever happens inside
it, and whenever it happens (an error, a KeyboardInterrupt from Ctrl-C, a
SystemExit, an exception raised by a signal handler, even one that lands in
the middle of BEGIN or COMMIT), when control leaves it the transaction has
either committed or rolled back, the engine's lock is released, and the
connection is ready for the next write. Statements, ``transaction()``
blocks, batches, merges, reverts, resets, DDL and copies all use it; nothing
else calls BEGIN or COMMIT on a store.

The one outcome a client cannot always know is whether an interrupt that
landed *during* COMMIT came before or after the engine made the commit
durable: the write is then wholly there or wholly absent, never half of it,
and never visible to this handle while absent for others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from .. import errors
from ..backend.protocol import Backend, BatchOutcome, PipelinedWrites, Statement
from ..time_values import now_text


class KeyProbe(NamedTuple):
    """A key lookup sent with BEGIN: ``key`` = (table id, key columns, values)."""

    key: tuple[int, tuple[str, ...], tuple[Any, ...]]
    sql: str
    params: list[Any]


@dataclass
class Txn:
    """The write transaction open on this connection."""

    bid: int
    fork: int | None
    message: str | None
    author: str | None
    now: str
    explicit: bool
    #: The commit id: allocated at the first change, or at BEGIN on an engine
    #: where a round trip costs more than a rolled-back commit row.
    seq: int | None = None
    #: Whether anything was written (only then does the transaction commit).
    changed: bool = False
    ddl: bool = False
    #: False: a failing statement fails the whole transaction (no savepoint per statement).
    savepoints: bool = True
    #: Why the transaction was rolled back early (a statement failed), else None.
    failed: str | None = None
    #: Keys looked up with BEGIN: (table id, key columns, values) -> (rid, vid) or None.
    known_keys: dict[tuple[int, tuple[str, ...], tuple[Any, ...]], tuple[int, int] | None] = field(
        default_factory=dict
    )


class TransactionHost(Protocol):
    """What a write transaction needs from its store: the engine, the catalog's
    commit rows, and the caches a transaction's outcome makes stale."""

    backend: Backend
    pipelined: PipelinedWrites | None
    next_vids: dict[str, int]

    def refresh(self, force: bool = False, epoch_text: str | None = None) -> bool: ...

    def invalidate(self) -> None: ...

    def branch_by_id(self, bid: int, fresh: bool = False) -> Any: ...

    def commit_row_sql(self, txn: Txn, with_epoch: bool = False) -> tuple[str, tuple[Any, ...]]: ...

    def insert_commit_row(self, txn: Txn) -> int | None: ...

    def committed(self, txn: Txn) -> None: ...

    def forget_writes(self, schema_changed: bool) -> None: ...


def failed_error(txn: Txn) -> errors.TransactionFailedError:
    """The error every statement of a failed transaction raises."""
    return errors.TransactionFailedError(
        f"the transaction was rolled back when a statement of it failed ({txn.failed});"
        " leave the transaction() block and start again"
    )


#: How often an interrupted rollback is tried again before the interrupt is let through.
_ROLLBACK_TRIES = 5


class WriteTransactions:
    """The write transaction of one store's connection (at most one at a time)."""

    def __init__(self, store: TransactionHost):
        self._store = store
        self.current: Txn | None = None
        self._saved: tuple[int | None, bool, bool] = (None, False, False)

    # -- the primitive -----------------------------------------------------------------------

    @contextlib.contextmanager
    def write(
        self,
        bid: int,
        fork: int | None,
        message: str | None,
        author: str | None,
        *,
        explicit: bool,
        savepoints: bool = True,
        lookups: Sequence[KeyProbe] = (),
    ) -> Iterator[Txn]:
        """Open the write transaction of branch ``bid``, yield it, and end it.

        When the block ends normally the transaction commits if it changed
        something (else it rolls back, writing nothing), and TransactionFailedError
        is raised if one of its statements failed it. When the block, BEGIN
        or COMMIT raises anything, a BaseException included, the transaction
        is rolled back (unless the engine had already committed it) and the
        exception goes on. ``lookups``: key lookups the engine may run in
        BEGIN's round trip (see :meth:`begin`).
        """
        if self.current is not None:
            raise errors.InternalError("a write transaction is open already")
        try:
            txn = self._begin(bid, fork, message, author, explicit, lookups)
            txn.savepoints = savepoints
            yield txn
            if txn.failed is not None:
                raise failed_error(txn)
            self._finish(txn)
        except BaseException:
            self.abandon()
            raise

    @contextlib.contextmanager
    def catalog(self) -> Iterator[None]:
        """A catalog change: inside the open write transaction (under the catalog
        lock), or else a transaction of its own, committed when the block ends
        and rolled back when it raises anything."""
        backend = self._store.backend
        if self.current is not None:
            backend.lock_catalog()
            yield
            return
        try:
            backend.begin_write()
            yield
            backend.commit()
        except BaseException:
            self.abandon()
            raise

    def insert_batch(
        self,
        lock: int,
        commit: Statement,
        rows: Sequence[Statement],
        tables: Sequence[str],
        epoch: str,
        drop_commit: Callable[[str], str],
    ) -> BatchOutcome:
        """A batch of row INSERTs as one whole write transaction in one round
        trip (``PipelinedWrites.insert_batch``). Raises the first failing
        statement's error with nothing committed; after any exception at all
        the connection is ready for the next transaction."""
        if self.current is not None:
            raise errors.InternalError("a write transaction is open already")
        try:
            pipelined = self._store.pipelined
            if pipelined is None:
                raise errors.InternalError("this engine sends no transaction in one round trip")
            return pipelined.insert_batch(lock, commit, rows, tables, epoch, drop_commit)
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Roll back whatever is open on the connection and forget what it made
        stale; after it the connection is ready for a new transaction.

        An interrupt that lands in the rollback itself is held back until the
        rollback has run (a bounded number of tries), then raised."""
        txn, self.current = self.current, None
        store = self._store
        interrupted: BaseException | None = None
        for _ in range(_ROLLBACK_TRIES):
            try:
                store.backend.abandon()
                store.forget_writes(schema_changed=txn is None or txn.ddl)
                break
            except Exception:
                store.forget_writes(schema_changed=True)
                break  # the backend could not roll back: its own error handling reports it next time
            except BaseException as exc:  # interrupted again: roll back all the same
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted

    # -- inside the primitive ------------------------------------------------------------------

    def _begin(
        self,
        bid: int,
        fork: int | None,
        message: str | None,
        author: str | None,
        explicit: bool,
        lookups: Sequence[KeyProbe],
    ) -> Txn:
        """Open the write transaction. ``lookups``: key lookups to run in the same
        round trip, after the lock (engines with pipelined writes only); their
        answers land in ``txn.known_keys`` unless the schema changed meanwhile."""
        store = self._store
        backend = store.backend
        now = now_text()
        txn = Txn(bid, fork, message, author, now, explicit)
        backend.set_statement_time(now)
        if store.pipelined is not None:
            # One round trip: take the branch lock, then write the commit row
            # (a transaction that changes nothing rolls it back) and read the
            # schema epoch, which may have changed before we got the lock.
            commit, *found = backend.begin_write(
                bid,
                probes=[store.commit_row_sql(txn, with_epoch=True), *((p.sql, p.params) for p in lookups)],
            )
            self.current = txn
            if commit is None:
                raise errors.BranchNotFoundError(f"branch {store.branch_by_id(bid).name!r} was dropped")
            txn.seq = int(commit[0])
            if not store.refresh(epoch_text=commit[1]):  # else the lookups used a stale schema
                txn.known_keys = {
                    p.key: None if row is None else (int(row[0]), int(row[1]))
                    for p, row in zip(lookups, found, strict=True)
                }
        else:
            backend.begin_write(bid)
            self.current = txn
            # The schema may have changed between our last look and taking the lock.
            store.refresh()
        return txn

    def _finish(self, txn: Txn) -> None:
        """Commit ``txn`` if it changed something, else roll it back."""
        store = self._store
        if not txn.changed:
            self.current = None
            store.backend.rollback()
            if txn.seq is not None:  # the commit row written at BEGIN is gone again
                store.forget_writes(schema_changed=txn.ddl)
            return
        store.backend.commit()
        self.current = None
        store.committed(txn)

    # -- statements inside a transaction ---------------------------------------------------------

    def ensure_commit(self, txn: Txn) -> int:
        """Record that ``txn`` changes something; returns its commit id (allocated
        now unless the engine allocated it at BEGIN)."""
        if txn.seq is None:
            seq = self._store.insert_commit_row(txn)
            if seq is None:
                raise errors.BranchNotFoundError(
                    f"branch {self._store.branch_by_id(txn.bid).name!r} was dropped"
                )
            txn.seq = seq
        txn.changed = True
        return txn.seq

    def savepoint(self) -> None:
        """Mark the start of one statement inside an explicit transaction."""
        txn = self._open()
        self._saved = (txn.seq, txn.changed, txn.ddl)
        # Sent with the statement's first query (no round trip of its own).
        self._store.backend.defer("SAVEPOINT loom_statement")

    def release_savepoint(self) -> None:
        """End the current statement; writes the engine deferred reach the
        server now at the latest, so their errors belong to this statement."""
        backend = self._store.backend
        if backend.has_deferred:
            backend.execute("RELEASE loom_statement")
        else:
            backend.defer("RELEASE loom_statement")

    def rollback_to_savepoint(self) -> None:
        """Undo the current statement; the transaction stays open."""
        txn = self._open()
        store = self._store
        store.backend.execute("ROLLBACK TO loom_statement")
        store.backend.execute("RELEASE loom_statement")
        seq, changed, ddl = self._saved
        txn.seq = seq  # None again when the undone statement wrote the commit row
        txn.changed = changed
        if txn.ddl and not ddl:
            store.invalidate()
        txn.ddl = ddl
        # Version ids handed out by the undone statement are free again.
        store.next_vids.clear()

    def fail(self, reason: str) -> None:
        """Roll the open transaction back now, because one of its statements failed;
        it stays open (and failed) until the block ends, which raises
        TransactionFailedError."""
        txn = self._open()
        if txn.failed is None:
            txn.failed = reason
            self._store.backend.rollback()
            self._store.forget_writes(schema_changed=txn.ddl)

    def _open(self) -> Txn:
        """The open transaction (InternalError when none is)."""
        if self.current is None:
            raise errors.InternalError("no write transaction is open")
        return self.current
