"""The one public surface: a handle on a store, bound to a branch (and maybe a snapshot).

Handles are cheap. ``branch()``, ``checkout()`` and ``as_of()`` return new
handles that share the connection of the handle they came from. Closing the
handle ``connect`` returned closes that connection (and so every handle on
it); closing a derived handle closes only that handle. Use separate
``connect`` calls for independent connections, e.g. one per process.

``Database`` is a facade: it checks that the handle is open, holds the
connection's lock (so a handle may be used from several threads) and
delegates to a :class:`~loomdb.connection.Connection`, which the engine
implements for local stores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from . import errors
from .connection import Connection
from .cursor import Cursor
from .results import Branch, Change, Commit, Conflict, DiffStat, MergeResult

Params = Sequence[Any] | Mapping[str, Any]

#: Makes ``Database.run``'s ``loomdb.Run`` objects; set by ``loomdb.run`` (an upper
#: layer, which the facade does not import) when it is imported.
_run_factory: Callable[..., Any] | None = None


def register_run_factory(factory: Callable[..., Any]) -> None:
    """Let ``Database.run`` build runs with ``factory`` (``loomdb.run.Run``)."""
    global _run_factory
    _run_factory = factory


class Database:
    """A handle on a loomdb store, bound to one branch (see ``loomdb.connect``)."""

    def __init__(self, connection: Connection, *, owner: bool = False):
        self._conn = connection
        self._owner = owner
        self._closed = False

    # -- identity ------------------------------------------------------------------------

    @property
    def branch_name(self) -> str:
        """The name of the branch this handle reads and writes."""
        return self._conn.branch_name

    @property
    def read_only(self) -> bool:
        """True for a snapshot handle from ``as_of``."""
        return self._conn.snapshot is not None

    @property
    def location(self) -> str:
        """What reopens this store in another process: its file path or URL."""
        return self._conn.location

    @property
    def head(self) -> int:
        """The newest commit this handle sees (its snapshot for ``as_of`` handles)."""
        with self._conn.lock:
            self._check_open()
            return self._conn.head()

    def __repr__(self) -> str:
        snapshot = self._conn.snapshot
        at = f" as of commit {snapshot}" if snapshot is not None else ""
        return f"<loomdb.Database {self._conn.describe()!r} branch={self.branch_name!r}{at}>"

    # -- statements ------------------------------------------------------------------------

    def execute(self, sql: str, params: Params | None = None) -> Cursor:
        """Run one PostgreSQL-flavoured statement and return its cursor.

        A write that changes at least one row, or the schema, is one commit
        (unless a ``transaction()`` block is open). Raises ProgrammingError
        for malformed SQL or parameters, NotSupportedError for constructs
        outside loomdb's SQL, DataError/IntegrityError for values that do
        not fit; the store is unchanged by a failed statement.
        """
        with self._conn.lock:
            self._check_open()
            return self._conn.execute(sql, params)

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> Cursor:
        """Run one statement once per parameter set, all in one commit."""
        with self._conn.lock:
            self._check_open()
            return self._conn.executemany(sql, seq_of_params)

    def execute_batch(self, statements: Sequence[tuple[str, Iterable[Params]]]) -> list[Cursor]:
        """Run write statements in order, each once per parameter set, as one commit;
        return one cursor per statement.

        ``statements``: ``(sql, seq_of_params)`` pairs, as ``executemany`` takes
        them. The result is that of ``executemany`` for each inside
        ``transaction(savepoints=False)``: a failing statement rolls the whole
        batch back and raises its error. Inside an open ``transaction()`` the
        batch joins it (and its rules). Outside one, on PostgreSQL, the key
        lookups of every INSERT travel with BEGIN, and the writes with COMMIT:
        two round trips for the whole batch where statement by statement costs
        one or more each. A batch of ``INSERT ... ON CONFLICT DO NOTHING``
        into tables with one key, or of INSERTs into tables without keys, of
        rows the client builds alone, is one round trip (see ``batch_insert``).
        """
        with self._conn.lock:
            self._check_open()
            return self._conn.execute_batch(statements)

    def explain(self, sql: str, params: Params | None = None) -> str:
        """The SQL loomdb runs for a query on this branch, and the engine's plan for it."""
        with self._conn.lock:
            self._check_open()
            return self._conn.explain(sql, params)

    def commit(self) -> None:
        """PEP 249 ``commit``: a no-op, since every write outside ``transaction()`` commits itself."""

    def rollback(self) -> None:
        """PEP 249 ``rollback``: nothing is pending outside ``transaction()``, so a no-op."""

    @contextlib.contextmanager
    def transaction(
        self, message: str | None = None, author: str | None = None, *, savepoints: bool = True
    ) -> Iterator[Database]:
        """Make every statement in the block one commit; roll back if the block raises.

        The block holds the store's write lock throughout (other writers wait).
        ``savepoints``: with True (the default) a statement that fails inside
        the block is undone alone and the block may go on. With False, as in
        PostgreSQL itself, a failing statement fails the whole transaction: it
        is rolled back at once, and every later statement of the block, and the
        block's end, raise TransactionFailedError. Statements then cost no
        savepoint, and on PostgreSQL a write whose result nobody needs travels
        with the next statement instead of taking a round trip of its own.
        Nested blocks join the outer one (and its ``savepoints``).
        """
        with self._conn.lock:
            self._check_open()
            with self._conn.transaction(message, author, savepoints):
                yield self

    # -- branches and history -------------------------------------------------------------

    def branch(self, name: str, from_: str | int | dt.datetime | None = None) -> Database:
        """Create branch ``name`` in O(1) and return a handle bound to it.

        ``from_``: None (this handle's head or snapshot), a branch name, a
        commit id, or a datetime (the newest commit of this handle's
        lineage at or before it). ``self`` stays on its branch.
        """
        with self._conn.lock:
            self._check_open()
            return Database(self._conn.branch(name, from_))

    def checkout(self, name: str) -> Database:
        """A handle on the existing branch ``name`` (BranchNotFoundError otherwise)."""
        with self._conn.lock:
            self._check_open()
            return Database(self._conn.checkout(name))

    def as_of(self, when: int | dt.datetime) -> Database:
        """A read-only handle on this branch's history at a commit id or a time."""
        with self._conn.lock:
            self._check_open()
            return Database(self._conn.as_of(when))

    def branches(self) -> list[Branch]:
        """Every live branch, oldest first."""
        with self._conn.lock:
            self._check_open()
            return self._conn.branches()

    def drop_branch(self, name: str) -> None:
        """Remove branch ``name`` (not ``main``). Branches forked from it keep working."""
        with self._conn.lock:
            self._check_open()
            self._conn.drop_branch(name)

    def log(self, branch: str | None = None, limit: int | None = None) -> list[Commit]:
        """Commits of ``branch`` (default: this handle's), newest first, through its lineage."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise errors.ProgrammingError(f"limit must be a non-negative int, not {limit!r}")
        with self._conn.lock:
            self._check_open()
            return self._conn.log(branch, limit)

    def table_names(self) -> list[str]:
        """The names of the tables this handle sees, sorted."""
        with self._conn.lock:
            self._check_open()
            return self._conn.table_names()

    # -- merge, diff, revert, reset --------------------------------------------------------

    def merge(
        self,
        source: str,
        into: str | None = None,
        on_conflict: str | Callable[[Conflict], dict[str, Any] | None] = "fail",
        message: str | None = None,
        author: str | None = None,
    ) -> MergeResult:
        """Merge branch ``source`` into ``into`` (default: this handle's branch), three-way.

        Raises MergeConflict (changing nothing) when rows clash and
        ``on_conflict`` is "fail"; see docs/api.md for the rules.
        """
        with self._conn.lock:
            self._check_open()
            return self._conn.merge(source, into, on_conflict, message, author)

    def diff(
        self, a: str | int | dt.datetime, b: str | int | dt.datetime, table: str | None = None
    ) -> Iterator[Change]:
        """The rows that differ between snapshots ``a`` and ``b`` (branch, commit id or datetime)."""
        with self._conn.lock:
            self._check_open()
            return iter(self._conn.diff(a, b, table))

    def diff_stat(self, a: str | int | dt.datetime, b: str | int | dt.datetime) -> dict[str, DiffStat]:
        """Per table, how many rows ``b`` added, removed and modified compared with ``a``."""
        with self._conn.lock:
            self._check_open()
            return self._conn.diff_stat(a, b)

    def revert(self, commit: int, message: str | None = None, author: str | None = None) -> int | None:
        """Undo one commit with a new commit on this branch; returns its id (None: nothing to undo)."""
        with self._conn.lock:
            self._check_open()
            return self._conn.revert(commit, message, author)

    def reset(
        self,
        to: str | int | dt.datetime,
        branch: str | None = None,
        message: str | None = None,
        author: str | None = None,
    ) -> int | None:
        """Make ``branch`` (default: this handle's) equal to snapshot ``to``, as a new commit."""
        with self._conn.lock:
            self._check_open()
            return self._conn.reset(to, branch, message, author)

    # -- agent runs ---------------------------------------------------------------------------

    def run(self, run_id: str, *, table: str = "iterations", dim: int | None = None) -> Any:
        """The agent run ``run_id`` on this handle's branch (see docs/run.md).

        ``table`` holds the steps (the brief's ``iterations`` schema with
        PRIMARY KEY (run_id, step), created on first use with VECTOR(``dim``),
        default 1536); an existing table is used as it is, its dimension
        checked against ``dim`` when given (DataError).
        """
        if _run_factory is None:
            raise errors.InternalError("loomdb.run is not loaded")
        return _run_factory(self, run_id, table=table, dim=dim)

    # -- lifecycle ---------------------------------------------------------------------------

    def vector_cache_bytes(self) -> int:
        """Memory held by the in-memory vector copies of this connection."""
        with self._conn.lock:
            self._check_open()
            return self._conn.vector_cache_bytes()

    def close(self) -> None:
        """Close this handle. Closing the handle ``connect`` returned also closes the
        connection, and with it every handle derived from it; closing a derived
        handle (from branch, checkout or as_of) leaves the others open."""
        with self._conn.lock:
            self._closed = True
            if self._owner:
                self._conn.close()

    @property
    def closed(self) -> bool:
        return self._closed or self._conn.closed

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        """InterfaceError when this handle (or its connection) is closed."""
        if self._closed or self._conn.closed:
            raise errors.InterfaceError("this loomdb handle is closed")
