"""The embedded engine: one SQLite file through apsw, with sqlite-vec loaded.

Concurrency contract
--------------------
* WAL mode: readers never wait; writers take SQLite's single write lock with
  ``BEGIN IMMEDIATE`` and queue for it behind each other. The busy handler
  retries with short randomised sleeps until ``timeout`` seconds pass, so
  "database is locked" never reaches a caller that waited less than that.
* ``durability="full"`` is ``synchronous=FULL`` (the WAL is fsynced on every
  commit: a returned commit survives a power cut); ``"normal"`` is
  ``synchronous=NORMAL`` (a returned commit survives a killed process).
* One connection serialises its statements (apsw holds a mutex per
  connection); loomdb's ``Database`` adds its own lock so a transaction block
  keeps the connection to itself.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apsw

from ... import errors
from ...layout import (
    IDENTITY_INDEX_COLUMNS,
    IDENTITY_INDEX_WHERE,
    VERSION_COLUMNS,
    covering_columns,
    identity_index,
)
from ...number_input import FloatNaN
from ...time_values import now_text
from ...types import ColumnType
from ..protocol import Backend, Row, Statement
from . import functions
from .dialect import LoomSQLite

SQLITE_MAGIC = b"SQLite format 3\x00"

# The declared types of the version columns: _vid is the rowid.
_VERSION_TYPES = {
    "_vid": "INTEGER PRIMARY KEY",
    "_rid": "INTEGER NOT NULL",
    "_bid": "INTEGER NOT NULL",
    "_seq": "INTEGER NOT NULL",
    "_end": "INTEGER NOT NULL",
    "_del": "INTEGER NOT NULL",
}


# SQLite's messages (the start of them) and the SQLSTATE PostgreSQL has for
# the same error.
_CONSTRAINT_SQLSTATES = (
    ("UNIQUE constraint failed", "23505"),  # unique_violation
    ("NOT NULL constraint failed", "23502"),  # not_null_violation
    ("CHECK constraint failed", "23514"),  # check_violation
    ("FOREIGN KEY constraint failed", "23503"),  # foreign_key_violation
)
_SQL_SQLSTATES = (
    ("no such table", "42P01"),  # undefined_table
    ("no such column", "42703"),  # undefined_column
    ("no such function", "42883"),  # undefined_function
    ("wrong number of arguments to function", "42883"),
    ("ambiguous column name", "42702"),  # ambiguous_column
    ("misuse of aggregate", "42803"),  # grouping_error
    ("syntax error", "42601"),  # syntax_error
    ("do not have the same number of result columns", "42601"),  # each UNION query must have...
    ("sub-select returns", "42601"),  # subquery must return only one column
    ("incomplete input", "42601"),
    ("unrecognized token", "42601"),
)


def _sqlstate_of(message: str, known: tuple[tuple[str, str], ...]) -> str | None:
    """The SQLSTATE of the first entry of ``known`` whose text ``message`` holds."""
    low = message.lower()
    return next((code for text, code in known if text.lower() in low), None)


def translate(exc: Exception) -> errors.Error:
    """The loomdb error for an apsw exception, with SQLite's message and the
    SQLSTATE PostgreSQL has for the same error where one is known (the class
    follows it as psycopg's does); a loomdb error raised inside one of loomdb's
    SQL functions comes back as it was."""
    message = str(exc)
    for prefix in ("SQLError: ", "ConstraintError: ", "BusyError: ", "ExecutionCompleteError: "):
        message = message.removeprefix(prefix)
    if isinstance(exc, apsw.ConstraintError):
        return errors.IntegrityError(message, sqlstate=_sqlstate_of(message, _CONSTRAINT_SQLSTATES))
    if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
        # PostgreSQL's lock_not_available, as the PostgreSQL engine's lock_timeout raises.
        return errors.OperationalError(
            f"the store stayed locked by another writer: {message}", sqlstate="55P03"
        )
    if isinstance(exc, apsw.NotADBError):
        return errors.NotALoomStoreError(message)
    if isinstance(exc, apsw.MismatchError):
        return errors.ProgrammingError(message, sqlstate="42804")  # datatype_mismatch
    if isinstance(exc, (apsw.BindingsError, apsw.RangeError)):
        return errors.ProgrammingError(message)
    if isinstance(exc, apsw.SQLError):
        if message == "integer overflow":
            # SQLite's sum() and abs() past 64 bits: PostgreSQL's bigint result overflows.
            return errors.DataError("bigint out of range", sqlstate="22003")
        if "dimension" in message.lower() or "vector" in message.lower():
            return errors.DataError(message, sqlstate="22000")  # data_exception, as pgvector's
        return errors.ProgrammingError(message, sqlstate=_sqlstate_of(message, _SQL_SQLSTATES))
    if isinstance(exc, apsw.TooBigError):
        return errors.DataError(message, sqlstate="22000")
    if isinstance(exc, apsw.FullError):
        return errors.OperationalError(message, sqlstate="53100")  # disk_full
    if isinstance(exc, (apsw.IOError, apsw.CantOpenError)):
        return errors.OperationalError(message, sqlstate="58030")  # io_error
    if isinstance(exc, apsw.ReadOnlyError):
        return errors.OperationalError(message)
    if isinstance(exc, apsw.CorruptError):
        return errors.InternalError(
            f"the store file is corrupt: {message}", sqlstate="XX001"
        )  # data_corrupted
    if isinstance(exc, apsw.InterruptError):
        return errors.OperationalError(message, sqlstate="57014")  # query_canceled
    if isinstance(exc, errors.Error):
        return exc
    if isinstance(exc, apsw.Error):
        # Errors raised inside loomdb's own SQL functions arrive wrapped.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, errors.Error):
            return cause
        return errors.DatabaseError(message)
    return errors.InternalError(message)


def _convert_binding(cursor: Any, number: int, value: Any) -> Any:
    """apsw's hook for a parameter of a type it cannot bind: a float NaN, which
    SQLite would store as NULL, is refused; anything else is an error."""
    if isinstance(value, FloatNaN):
        raise errors.NotSupportedError(
            "NaN is not supported by loomdb on SQLite (SQLite stores NaN as NULL): cannot store it"
        )
    raise errors.ProgrammingError(f"cannot bind parameter {number} of type {type(value).__name__}")


class SQLiteBackend:
    """A loomdb engine over one SQLite file (see the module docstring).

    Abilities: none beyond the core :class:`~loomdb.backend.protocol.Backend`
    contract; versions are ordered (loomdb allocates their ids), SERIAL
    counters are rows, statements cost no round trip and
    :meth:`others_committed` is cheap.
    """

    name = "sqlite"
    dialect = LoomSQLite

    def __init__(self, path: str, *, durability: str = "full", timeout: float = 60.0, vfs: str | None = None):
        """Open (creating it when missing) the SQLite file at ``path`` with
        sqlite-vec and loomdb's functions. Raises ProgrammingError for a bad
        ``durability``, NotALoomStoreError for a file that is not SQLite's (left
        untouched), OperationalError when it cannot be opened."""
        if durability not in ("full", "normal"):
            raise errors.ProgrammingError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path = os.path.abspath(path)
        self.timeout = float(timeout)
        self._check_header()
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        try:
            if vfs:
                self.conn = apsw.Connection(self.path, flags=flags, vfs=vfs, statementcachesize=512)
            else:
                self.conn = apsw.Connection(self.path, flags=flags, statementcachesize=512)
        except apsw.Error as exc:
            raise translate(exc) from None
        self.conn.convert_binding = _convert_binding
        self._now: str | None = None
        self._data_version = -1
        self._busy_since = 0.0
        self.conn.set_busy_handler(self._busy)
        # NOW() is the transaction's start inside a write; a query outside one
        # asks the clock when (and only if) it first calls NOW(), and keeps
        # that answer for the rest of the statement (PostgreSQL's now() is one
        # value per transaction, and a lone statement is one).
        self._functions = functions.FunctionRegistry(self.conn, self._statement_now)
        sync = "FULL" if durability == "full" else "NORMAL"
        self._run(f"PRAGMA synchronous={sync}")
        self._run("PRAGMA case_sensitive_like=ON")

    # -- opening -------------------------------------------------------------------------

    def _check_header(self) -> None:
        """Refuse, without writing, a file that is not a SQLite database."""
        if os.path.isdir(self.path):
            raise errors.OperationalError(f"{self.path} is a directory, not a loomdb store")
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(16)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise errors.OperationalError(f"cannot read {self.path}: {exc}") from None
        if head and head != SQLITE_MAGIC:
            raise errors.NotALoomStoreError(
                f"{self.path} is not a loomdb store (not a SQLite file); it was left untouched"
            )

    def is_empty(self) -> bool:
        """True for a new file with no tables at all."""
        return next(self.execute("SELECT count(*) FROM sqlite_schema"))[0] == 0

    def has_table(self, name: str) -> bool:
        """Whether the file has a table ``name``."""
        rows = self.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,))
        return next(rows, None) is not None

    def describe(self) -> str:
        """The file's absolute path."""
        return self.path

    def catalog_sql(self, statement: str) -> str:
        """Catalog statements are written in SQLite's types already."""
        return statement

    def id_list_sql(self, param: int) -> str:
        """A subquery of the integers in the JSON array bound to parameter ``param``."""
        return f"(SELECT value FROM json_each(?{param}))"

    def unindexed(self, expression: str) -> str:
        """``+expression``: SQLite's planner then drives no scan from an index on it."""
        return f"+{expression}"

    def prepare_new_store(self) -> None:
        """Switch a new file to WAL mode (readers never wait for the writer).

        Processes creating one store at once can each hold the new file's read
        lock and ask for its write lock to switch it; SQLite refuses all but
        one at once, without calling the busy handler (waiting would
        deadlock). The refused ones retry until the switch is done (then the
        PRAGMA finds WAL mode already) or the busy timeout has passed.
        """
        sql = "PRAGMA journal_mode=WAL"
        refusals = 0
        while True:
            try:
                mode = next(self.conn.execute(sql))[0]
                break
            except apsw.BusyError as exc:
                if not self._busy(refusals):  # the busy handler's waits and timeout
                    raise translate(exc) from None
                refusals += 1
            except apsw.Error as exc:
                raise translate(exc) from None
        if str(mode).lower() != "wal":
            raise errors.OperationalError(f"could not switch {self.path} to WAL mode (got {mode})")

    # -- running SQL ---------------------------------------------------------------------

    def _run(self, sql: str) -> None:
        """Run ``sql`` to its end, discarding any rows."""
        for _ in self.execute(sql):
            pass

    def _busy(self, prior_calls: int) -> bool:
        """SQLite's busy handler: wait a little and retry (True) until ``timeout`` has passed."""
        # Short, randomised waits keep a queue of writers moving.
        if prior_calls == 0:
            self._busy_since = time.monotonic()
        elif time.monotonic() - self._busy_since > self.timeout:
            return False
        time.sleep(random.uniform(0.0002, 0.002 if prior_calls < 50 else 0.01))
        return True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
        """Run ``sql``; its rows are stepped as they are iterated (errors while
        stepping are apsw's: see :meth:`translate`)."""
        try:
            self._functions.ensure(sql)
            return self.conn.execute(sql, params)
        except apsw.Error as exc:
            raise translate(exc) from None

    @property
    def has_deferred(self) -> bool:
        """Never: :meth:`defer` runs at once."""
        return False

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a write whose result nobody reads now (in-process: nothing to save by waiting)."""
        for _ in self.execute(sql, params):
            pass

    def translate(self, exc: Exception) -> errors.Error:
        """See :func:`translate`."""
        return translate(exc)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per row of ``rows``."""
        try:
            self._functions.ensure(sql)
            for _ in self.conn.executemany(sql, rows):
                pass
        except apsw.Error as exc:
            raise translate(exc) from None

    def changes(self) -> int:
        """Rows changed by the last INSERT, UPDATE or DELETE."""
        return self.conn.changes()

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        """EXPLAIN QUERY PLAN's steps, indented by their depth in the plan's tree."""
        rows = list(self.execute("EXPLAIN QUERY PLAN " + sql, params))
        depth: dict[int, int] = {0: 0}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            lines.append("  " * (depth[node] - 1) + str(detail))
        return lines

    # -- transactions --------------------------------------------------------------------

    def begin_write(self, lock: int = 0, probes: Sequence[Statement] = ()) -> list[Row | None]:
        """Take SQLite's one write lock (``lock``, a branch id, needs no lock of
        its own). Statements cost no round trip here, so none are batched:
        InternalError when given ``probes``."""
        if probes:
            raise errors.InternalError("the SQLite engine runs no statements with BEGIN")
        self._run("BEGIN IMMEDIATE")
        return []

    def lock_catalog(self) -> None:
        """Nothing to do: the one write lock covers the catalog already."""

    def begin_read(self) -> None:
        """BEGIN DEFERRED: the first read fixes the snapshot (WAL mode)."""
        self._run("BEGIN DEFERRED")

    def commit(self) -> None:
        """COMMIT (fsynced with ``durability="full"``)."""
        self._run("COMMIT")

    def rollback(self) -> None:
        """ROLLBACK the open transaction, if any; never raises."""
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except apsw.Error:
                pass

    def abandon(self) -> None:
        """Roll back whatever transaction is open (SQLite's connection survives any interrupt)."""
        self.rollback()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection."""
        return self.conn.in_transaction

    def others_committed(self) -> bool:
        """Whether PRAGMA data_version moved since the last call (another
        connection committed); True on the first call."""
        (version,) = self.conn.execute("PRAGMA data_version").fetchall()[0]
        assert isinstance(version, int)
        changed = version != self._data_version
        self._data_version = version
        return changed

    def set_statement_time(self, now: str | None) -> None:
        """What ``loom_now()`` (SQL's NOW()) returns until the next call (None:
        the clock's time when a statement first asks)."""
        self._now = now

    def _statement_now(self) -> str:
        """``loom_now()``: the time set by :meth:`set_statement_time`, else the
        clock's, read once and kept until the next call of that method."""
        if self._now is None:
            self._now = now_text()
        return self._now

    # -- physical schema -----------------------------------------------------------------

    def upgrade_timestamp_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """Nothing to rewrite: both formats store a TIMESTAMP as the text of its UTC
        wall time (``YYYY-MM-DD HH:MM:SS.ffffff+00:00``, see :mod:`loomdb.time_values`)."""

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        """The versioned table and its partial identity index (see :mod:`loomdb.layout`)."""
        version = ", ".join(f"{c} {_VERSION_TYPES[c]}" for c in VERSION_COLUMNS)
        user = "".join(f', "{phys}" {_declared(ctype)}' for phys, ctype in columns)
        self._run(f'CREATE TABLE "{table}" ({version}{user})')
        # Finding a row's versions by identity (the shadow probe of branch
        # views, merges, diffs) walks this index. A plain append on main is
        # never a nearer branch's version and is found by its rowid, so it
        # stays out of the index: the common agent write updates one index fewer.
        self._run(
            f'CREATE INDEX "{identity_index(table)}" ON "{table}"'
            f" ({', '.join(IDENTITY_INDEX_COLUMNS)}) WHERE {IDENTITY_INDEX_WHERE}"
        )

    def sync_sequences(self, physical_tables: Sequence[str]) -> None:
        """Nothing to do: ids come from each table's maximum already."""

    def add_physical_column(self, table: str, column: str, ctype: ColumnType) -> None:
        """ALTER TABLE ... ADD COLUMN with the column's declared type."""
        self._run(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {_declared(ctype)}')

    def create_physical_index(
        self,
        table: str,
        index: str,
        columns: Sequence[str],
        method: str | None = None,
        opclass: str | None = None,
    ) -> None:
        """A covering B-tree index; a vector index (hnsw, ivfflat) is not built."""
        if method in ("hnsw", "ivfflat"):
            # Search is exact from the in-memory copy; an approximate index
            # would only cost writes, so it is recorded but not built.
            return
        # The version columns ride along, so the visibility check of a branch
        # view can be answered from the index alone: count(*), max(step) and
        # key lookups then never touch the (large) table rows.
        cols = covering_columns([f'"{c}"' for c in columns])
        self._run(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ({cols})')

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        try:
            self.conn.close()
        except apsw.Error as exc:
            raise translate(exc) from None


def _declared(ctype: ColumnType) -> str:
    """The declared type of a user column: its affinity, and NUMERIC's collation."""
    if ctype.affinity == "NUMERIC_TEXT":
        return f"TEXT COLLATE {functions.NUMERIC_COLLATION}"
    return ctype.affinity


def _conforms(backend: SQLiteBackend) -> Backend:
    """Never called: mypy checks here that SQLiteBackend fulfils the contract."""
    return backend
