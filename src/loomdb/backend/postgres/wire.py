"""Batches of statements over one PostgreSQL connection, one round trip each.

psycopg's cursors and ``Connection.pipeline()`` are general (any row
factory, server-side cursors, notifications, async), and on a persisted
agent step that generality cost about twice the client CPU of everything
else loomdb does (measured with cProfile in ``bench/bench_postgres.py``).
This module drives libpq's pipeline mode directly through psycopg's
low-level ``pq`` interface instead, still using psycopg's adapters (and so
the loaders and dumpers the backend registers) to turn values into bytes
and back.

A batch is sent in one go and ends with one Sync, so its statements reach
the server in one round trip; the first error aborts the rest of the batch
(PostgreSQL skips them) and is raised once every result has been read, so
the connection is always left ready for the next batch.

A statement seen twice is prepared (its parse and plan are kept by the
server) in the same round trip as its second run, like psycopg's own
``prepare_threshold``; only a bounded number stay prepared.
"""

from __future__ import annotations

import re
import select
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pgerrors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_EMPTY_QUERY = pq.ExecStatus.EMPTY_QUERY
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_BINARY = pq.Format.BINARY
_DONE = (_TUPLES_OK, _COMMAND_OK, _EMPTY_QUERY)

# Statements never prepared: schema changes run once, and they change what
# other prepared statements mean.
_ONE_OFF = re.compile(r"\s*(?:CREATE|ALTER|DROP|TRUNCATE|COMMENT|GRANT|REVOKE|DEALLOCATE)\b", re.IGNORECASE)

# PostgreSQL's complaint when a prepared statement's result columns changed.
_STALE_PLAN = "cached plan must not change result type"

# How many statements stay prepared per connection (the least recently used
# goes), and how many not-yet-prepared ones are counted.
MAX_PREPARED = 256
_MAX_COUNTED = 4096


class Result(NamedTuple):
    """One statement's outcome: its rows (None when it returns none) and the
    row count of its command tag (-1 when it has none)."""

    rows: list[tuple[Any, ...]] | None
    rowcount: int


class Wire:
    """Runs batches of statements with native ``$n`` placeholders on ``conn``
    (an autocommit psycopg connection whose adapters are already set up)."""

    def __init__(self, conn: psycopg.Connection[Any]):
        """A wire over ``conn``, nothing prepared yet."""
        self.conn = conn
        self.pgconn = conn.pgconn
        self.encoding = conn.info.encoding
        self.transformer = Transformer(conn)
        self._poll = select.poll()
        self._poll.register(self.pgconn.socket, select.POLLIN)
        self._names: OrderedDict[tuple[str, tuple[int, ...]], bytes] = OrderedDict()
        self._counts: dict[tuple[str, tuple[int, ...]], int] = {}
        self._next_name = 0
        self._to_deallocate: list[bytes] = []

    def adapters_changed(self) -> None:
        """Use the connection's adapters as they are now (dumpers and loaders
        are looked up once per type and then kept)."""
        self.transformer = Transformer(self.conn)

    def run(self, statements: Sequence[tuple[str, Sequence[Any] | None]]) -> list[Result]:
        """Run ``statements`` (SQL, parameters) in one round trip; their results
        in order. Raises the first failing statement's psycopg error."""
        idle = self.pgconn.transaction_status == pq.TransactionStatus.IDLE
        try:
            return self._run(statements)
        except pgerrors.FeatureNotSupported as exc:
            if not (idle and _STALE_PLAN in str(exc)):
                raise
            # Another connection changed a table under a prepared statement
            # (its result would have other columns). Nothing of this batch
            # happened (it ran in one implicit transaction), so it runs again,
            # its statements prepared afresh.
            return self._run(statements)

    def _run(self, statements: Sequence[tuple[str, Sequence[Any] | None]]) -> list[Result]:
        """One pipeline: pending DEALLOCATEs, ``statements``, one Sync; their
        results. Closes the connection when interrupted halfway."""
        pgconn = self.pgconn
        tx = self.transformer
        # What each result read back belongs to: an int is a statement's
        # index, bytes a statement being prepared, None a DEALLOCATE.
        slots: list[int | bytes | None] = []
        pgconn.enter_pipeline_mode()
        try:
            try:
                if self._to_deallocate and pgconn.transaction_status == pq.TransactionStatus.IDLE:
                    # Outside a transaction, where a DEALLOCATE cannot fail.
                    for name in self._to_deallocate:
                        pgconn.send_query_params(b'DEALLOCATE "' + name + b'"', None)
                        slots.append(None)
                    self._to_deallocate = []
                for index, (sql, params) in enumerate(statements):
                    self._send(sql, params or (), index, slots, tx)
                pgconn.pipeline_sync()
                while pgconn.flush():
                    select.select([], [pgconn.socket], [])
                return self._receive(len(statements), slots)
            finally:
                if pgconn.pipeline_status != pq.PipelineStatus.OFF:
                    try:
                        pgconn.exit_pipeline_mode()
                    except psycopg.Error:
                        self.conn.close()  # results still pending: a broken connection
        except psycopg.Error:
            raise
        except BaseException:
            # Interrupted halfway through the protocol (Ctrl-C while waiting):
            # results of unknown statements may still arrive, so the
            # connection cannot be trusted any more. Closing it rolls back
            # the open transaction; the backend opens a fresh one next time.
            self.conn.close()
            raise

    def _send(
        self,
        sql: str,
        params: Sequence[Any],
        index: int,
        slots: list[int | bytes | None],
        tx: Any,
    ) -> None:
        """Queue one statement (preparing it on its second sighting), noting in
        ``slots`` which results will belong to it."""
        pgconn = self.pgconn
        values = tx.dump_sequence(params, [PyFormat.AUTO] * len(params)) if params else None
        types = tx.types if params else ()
        formats = tx.formats if params else None
        key = (sql, types)
        name = self._names.get(key)
        if name is not None:
            self._names.move_to_end(key)
        elif not _ONE_OFF.match(sql):
            seen = self._counts.get(key, 0) + 1
            if seen >= 2:
                self._counts.pop(key, None)
                self._next_name += 1
                name = b"loom_%d" % self._next_name
                pgconn.send_prepare(name, sql.encode(), types or None)
                slots.append(name)
                self._names[key] = name
                if len(self._names) > MAX_PREPARED:
                    self._to_deallocate.append(self._names.popitem(last=False)[1])
            else:
                if len(self._counts) >= _MAX_COUNTED:
                    self._counts.clear()
                self._counts[key] = seen
        if name is not None:
            pgconn.send_query_prepared(name, values, formats, _BINARY)
        else:
            pgconn.send_query_params(sql.encode(), values, types or None, formats, _BINARY)
        slots.append(index)

    def _receive(self, count: int, slots: list[int | bytes | None]) -> list[Result]:
        """Read results up to the Sync: ``count`` statements' results in order;
        raises the first error once all are read."""
        pgconn = self.pgconn
        tx = self.transformer
        results: list[Result] = [Result(None, -1)] * count
        error: Exception | None = None
        position = 0
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                res = pgconn.get_result()
                if res is None:
                    if pgconn.status == pq.ConnStatus.BAD:  # no more results will ever come
                        raise error or psycopg.OperationalError("the connection to the server was lost")
                    continue  # the end of one statement's results
                status = res.status
                if status == _PIPELINE_SYNC:
                    if error is not None:
                        raise error
                    return results
                if position == len(slots):
                    # A result no statement asked for: the server saying why it
                    # ends the session (pg_terminate_backend, shutdown).
                    if error is None and status == _FATAL_ERROR:
                        error = pgerrors.error_from_result(res, encoding=self.encoding)
                    continue
                slot = slots[position]
                position += 1
                if status in _DONE:
                    if isinstance(slot, int):
                        rows = None
                        if status == _TUPLES_OK:
                            tx.set_pgresult(res)
                            rows = tx.load_rows(0, res.ntuples, tuple)
                        tuples = res.command_tuples
                        results[slot] = Result(rows, -1 if tuples is None else tuples)
                elif status == _FATAL_ERROR:
                    if isinstance(slot, bytes):
                        self._forget(slot)
                    if error is None:
                        error = pgerrors.error_from_result(res, encoding=self.encoding)
                        if _STALE_PLAN in str(error):
                            self._reset_prepared()
                else:  # aborted by an earlier error in this batch
                    if isinstance(slot, bytes):
                        self._forget(slot)
            self._poll.poll()

    def _forget(self, name: bytes) -> None:
        """``name`` was never prepared (its batch failed first)."""
        for key, value in list(self._names.items()):
            if value == name:
                del self._names[key]

    def _reset_prepared(self) -> None:
        """Forget every prepared statement (deallocated at the next idle batch)."""
        self._to_deallocate.extend(self._names.values())
        self._names.clear()
