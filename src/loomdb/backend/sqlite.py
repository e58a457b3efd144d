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
import uuid
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import apsw
import numpy as np
import sqlite_vec

from .. import errors
from ..sql.dialect import LoomSQLite
from ..types import ColumnType, load_json, now_text, to_storage

SQLITE_MAGIC = b"SQLite format 3\x00"
INF_SEQ = 9223372036854775807  # _end of a version nobody has superseded yet
VERSION_INDEX_WHERE = "_bid > 1 OR _vid <> _rid"


def _translate(exc: Exception, sql: str | None = None) -> errors.Error:
    """Map an apsw exception onto loomdb's PEP 249 hierarchy, keeping its message."""
    message = str(exc)
    for prefix in ("SQLError: ", "ConstraintError: ", "BusyError: ", "ExecutionCompleteError: "):
        message = message.removeprefix(prefix)
    if isinstance(exc, apsw.ConstraintError):
        return errors.IntegrityError(message)
    if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
        return errors.OperationalError(f"the store stayed locked by another writer: {message}")
    if isinstance(exc, apsw.NotADBError):
        return errors.NotALoomStoreError(message)
    if isinstance(exc, (apsw.BindingsError, apsw.RangeError, apsw.MismatchError)):
        return errors.ProgrammingError(message)
    if isinstance(exc, apsw.SQLError):
        if "dimension" in message.lower() or "vector" in message.lower():
            return errors.DataError(message)
        return errors.ProgrammingError(message)
    if isinstance(exc, apsw.TooBigError):
        return errors.DataError(message)
    if isinstance(exc, (apsw.IOError, apsw.FullError, apsw.CantOpenError, apsw.ReadOnlyError)):
        return errors.OperationalError(message)
    if isinstance(exc, apsw.CorruptError):
        return errors.DatabaseError(f"the store file is corrupt: {message}")
    if isinstance(exc, apsw.InterruptError):
        return errors.OperationalError(message)
    if isinstance(exc, errors.Error):
        return exc
    if isinstance(exc, apsw.Error):
        # Errors raised inside loomdb's own SQL functions arrive wrapped.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, errors.Error):
            return cause
        return errors.DatabaseError(message)
    return errors.InternalError(message)


def _jsonb_contains(left: Any, right: Any) -> bool:
    """PostgreSQL's jsonb ``@>``: does ``left`` contain ``right``?"""
    if isinstance(left, dict):
        return isinstance(right, dict) and all(
            key in left and _jsonb_contains(left[key], value) for key, value in right.items()
        )
    if isinstance(left, list):
        if isinstance(right, list):
            return all(any(_jsonb_contains(item, want) for item in left) for want in right)
        # A top-level array contains a primitive equal to one of its elements.
        return not isinstance(right, dict) and any(
            item == right and type(item) is type(right) for item in left
        )
    return type(left) is type(right) and left == right


def _as_json(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        return load_json(value)
    return value


def _as_vector(value: Any) -> np.ndarray:
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype="<f4")
    if isinstance(value, str):
        return np.asarray(load_json(value), dtype=np.float32)
    raise errors.DataError(f"expected a vector, got {type(value).__name__}")


def _inner_product(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    x, y = _as_vector(a), _as_vector(b)
    if x.shape != y.shape:
        raise errors.DataError(f"different vector dimensions {x.shape[0]} and {y.shape[0]}")
    return float(np.dot(x.astype(np.float64), y.astype(np.float64)))


def _cast_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        return to_storage(value, ColumnType.parse(kind), "value")
    except errors.Error as exc:
        raise errors.DataError(f"cannot cast {value!r} to {kind}: {exc}") from None


def _cast_timestamp(value: Any) -> Any:
    return _cast_value("TIMESTAMP", value)


def _cast_date(value: Any) -> Any:
    return _cast_value("DATE", value)


def _cast_bool(value: Any) -> Any:
    return _cast_value("BOOLEAN", value)


def _cast_numeric(value: Any) -> Any:
    return _cast_value("NUMERIC", value)


def _decimal_key(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


def _numeric_collation(a: str, b: str) -> int:
    x, y = _decimal_key(a), _decimal_key(b)
    if x is None or y is None:
        return (a > b) - (a < b)
    return (x > y) - (x < y)


class SQLiteBackend:
    """A loomdb engine over one SQLite file (see the module docstring)."""

    name = "sqlite"
    dialect = LoomSQLite
    #: One writer at a time: version ids grow with the commit order, which
    #: the vector cache and the merge's range search rely on.
    #: ``+column`` keeps SQLite's planner off an index (see lineage.visibility_sql).
    plus_hints = True
    #: SERIAL counters are rows of loom_serial (one writer at a time anyway).
    native_serials = False
    ordered_versions = True
    #: A commit row is written at the first change (an in-process call is cheap).
    eager_commit = False
    #: PRAGMA data_version tells, in-process, whether another connection committed.
    cheap_change_check = True

    def __init__(self, path: str, *, durability: str = "full", timeout: float = 60.0, vfs: str | None = None):
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
            raise _translate(exc) from None
        self._now: str | None = None
        self._data_version = -1
        self.conn.set_busy_handler(self._busy)
        sync = "FULL" if durability == "full" else "NORMAL"
        self._run(f"PRAGMA synchronous={sync}")
        self._run("PRAGMA case_sensitive_like=ON")
        self._register_functions()

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
        rows = self.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,))
        return next(rows, None) is not None

    def describe(self) -> str:
        return self.path

    def catalog_sql(self, statement: str) -> str:
        """Catalog statements are written in SQLite's types."""
        return statement

    def id_list_sql(self, param: int) -> str:
        """A subquery of the integers in the JSON array bound to parameter ``param``."""
        return f"(SELECT value FROM json_each(?{param}))"

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
                    raise _translate(exc, sql) from None
                refusals += 1
            except apsw.Error as exc:
                raise _translate(exc, sql) from None
        if str(mode).lower() != "wal":
            raise errors.OperationalError(f"could not switch {self.path} to WAL mode (got {mode})")

    def _register_functions(self) -> None:
        conn = self.conn
        try:
            conn.enable_load_extension(True)
            conn.load_extension(sqlite_vec.loadable_path())
            conn.enable_load_extension(False)
        except (apsw.Error, AttributeError) as exc:
            raise errors.OperationalError(f"cannot load sqlite-vec: {exc}") from None
        # NOW() is the transaction's start inside a write; a query outside one
        # asks the clock when (and only if) it calls NOW().
        conn.create_scalar_function("loom_now", lambda: self._now or now_text(), 0)
        conn.create_scalar_function(
            "loom_jsonb_contains",
            lambda a, b: None if a is None or b is None else int(_jsonb_contains(_as_json(a), _as_json(b))),
            2,
            deterministic=True,
        )
        conn.create_scalar_function(
            "loom_jsonb_contained",
            lambda a, b: None if a is None or b is None else int(_jsonb_contains(_as_json(b), _as_json(a))),
            2,
            deterministic=True,
        )
        conn.create_scalar_function("loom_inner_product", _inner_product, 2, deterministic=True)
        conn.create_scalar_function(
            "loom_negative_inner_product",
            lambda a, b: None if (p := _inner_product(a, b)) is None else -p,
            2,
            deterministic=True,
        )
        conn.create_scalar_function(
            "loom_vector_norm",
            lambda a: None if a is None else float(np.linalg.norm(_as_vector(a).astype(np.float64))),
            1,
            deterministic=True,
        )
        conn.create_scalar_function("gen_random_uuid", lambda: str(uuid.uuid4()), 0)
        # Casts to types SQLite lacks (see LoomSQLite's cast rules).
        conn.create_scalar_function("loom_timestamp", _cast_timestamp, 1, deterministic=True)
        conn.create_scalar_function("loom_date", _cast_date, 1, deterministic=True)
        conn.create_scalar_function("loom_bool", _cast_bool, 1, deterministic=True)
        conn.create_scalar_function("loom_numeric", _cast_numeric, 1, deterministic=True)
        conn.create_collation("loom_numeric", _numeric_collation)

    # -- running SQL ---------------------------------------------------------------------

    def _run(self, sql: str) -> None:
        for _ in self.execute(sql):
            pass

    def _busy(self, prior_calls: int) -> bool:
        # Short, randomised waits keep a queue of writers moving; give up only
        # after the configured timeout.
        if prior_calls == 0:
            self._busy_since = time.monotonic()
        elif time.monotonic() - self._busy_since > self.timeout:
            return False
        time.sleep(random.uniform(0.0002, 0.002 if prior_calls < 50 else 0.01))
        return True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, params)
        except apsw.Error as exc:
            raise _translate(exc, sql) from None
        except errors.Error:
            raise

    has_deferred = False  # defer() runs at once

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a write whose result nobody reads (in-process: nothing to save by waiting)."""
        for _ in self.execute(sql, params):
            pass

    def translate(self, exc: Exception) -> errors.Error:
        return _translate(exc)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            for _ in self.conn.executemany(sql, rows):
                pass
        except apsw.Error as exc:
            raise _translate(exc, sql) from None

    def changes(self) -> int:
        return self.conn.changes()

    def begin_write(self, lock: int = 0, probes: Sequence[tuple[str, Sequence[Any]]] = ()) -> list[Any]:
        """Take SQLite's one write lock (``lock``, a branch id, needs no lock of
        its own). Statements cost no round trip here, so none are batched."""
        if probes:
            raise errors.InternalError("the SQLite engine runs no statements with BEGIN")
        self.execute("BEGIN IMMEDIATE")
        return []

    def lock_catalog(self) -> None:
        """The write lock covers the catalog already."""

    def begin_read(self) -> None:
        self.execute("BEGIN DEFERRED")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except apsw.Error:
                pass

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def others_committed(self) -> bool:
        version = self.conn.execute("PRAGMA data_version").fetchall()[0][0]
        changed = version != self._data_version
        self._data_version = version
        return changed

    def set_statement_time(self, now: str | None) -> None:
        self._now = now

    # -- physical schema -----------------------------------------------------------------

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        user = "".join(f', "{phys}" {_declared(ctype.affinity)}' for phys, ctype in columns)
        self._run(
            f'CREATE TABLE "{table}" (_vid INTEGER PRIMARY KEY, _rid INTEGER NOT NULL,'
            f" _bid INTEGER NOT NULL, _seq INTEGER NOT NULL, _end INTEGER NOT NULL,"
            f" _del INTEGER NOT NULL{user})"
        )
        # Finding a row's versions by identity (the shadow probe of branch
        # views, merges, diffs) walks this index. A plain append on main, a
        # version with _vid = _rid on the root branch, is never a nearer
        # branch's version and is found by its rowid, so it stays out of the
        # index: the common agent write updates one index fewer.
        self._run(f'CREATE INDEX "{table}__rid" ON "{table}" (_rid, _bid, _seq) WHERE {VERSION_INDEX_WHERE}')

    def allocating_insert_sql(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        """None: loomdb hands out version ids itself (in commit order)."""

    def sync_sequences(self, physical_tables: Sequence[str]) -> None:
        """Ids come from each table's maximum already: nothing to do after a copy."""

    def add_physical_column(self, table: str, column: str, ctype: ColumnType) -> None:
        self._run(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {_declared(ctype.affinity)}')

    def create_physical_index(
        self,
        table: str,
        index: str,
        columns: Sequence[str],
        method: str | None = None,
        opclass: str | None = None,
    ) -> None:
        if method in ("hnsw", "ivfflat"):
            # Search is exact from the in-memory copy; an approximate index
            # would only cost writes, so it is recorded but not built.
            return
        # The version columns ride along, so the visibility check of a branch
        # view can be answered from the index alone: count(*), max(step) and
        # key lookups then never touch the (large) table rows.
        cols = ", ".join([f'"{c}"' for c in columns] + ["_bid", "_end", "_del", "_seq", "_rid"])
        self._run(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ({cols})')

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        rows = list(self.execute("EXPLAIN QUERY PLAN " + sql, params))
        depth: dict[int, int] = {0: 0}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            lines.append("  " * (depth[node] - 1) + str(detail))
        return lines

    def close(self) -> None:
        try:
            self.conn.close()
        except apsw.Error as exc:
            raise _translate(exc) from None


def _declared(affinity: str) -> str:
    return "TEXT COLLATE loom_numeric" if affinity == "NUMERIC_TEXT" else affinity
