"""The contract every storage engine fulfils.

loomdb's upper layers (SQL compilation, versioning, the public ``Database``)
talk to an engine only through this protocol: they hand it SQL in the
engine's dialect and positional parameters, and it runs them. An engine knows
nothing of branches; it stores the physical tables it is told to create.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from ..types import ColumnType


class Backend(Protocol):
    #: The sqlglot dialect (class) that generates this engine's SQL.
    dialect: Any
    #: A short engine name: "sqlite" or "postgres".
    name: str
    #: Whether version ids grow with the commit order (one writer at a time).
    #: The in-memory vector copy and the version-id range search need it.
    ordered_versions: bool
    #: Whether the visibility predicate uses ``+column`` to steer the planner.
    plus_hints: bool
    #: Whether SERIAL counters are the engine's own sequences (serial_next,
    #: serial_bump, serial_value, serial_set); else loomdb keeps them in a table.
    native_serials: bool
    #: Whether a write transaction writes its commit row with BEGIN (where a
    #: round trip costs more than a commit row that a no-op rolls back).
    eager_commit: bool
    #: Whether ``others_committed`` is cheap; if not, queries go through
    #: ``execute_probed`` with the schema epoch as the probe.
    cheap_change_check: bool
    #: What the store is called in messages and what reopens it (a file path or URL).
    path: str

    def describe(self) -> str:
        """The store's location for messages (no password)."""
        ...

    def is_empty(self) -> bool:
        """True when the file or schema holds nothing yet."""
        ...

    def has_table(self, name: str) -> bool: ...

    def prepare_new_store(self) -> None:
        """Engine settings a new store needs before its catalog is written."""
        ...

    def catalog_sql(self, statement: str) -> str:
        """A catalog statement (written in SQLite's types) in this engine's types."""
        ...

    def id_list_sql(self, param: int) -> str:
        """A subquery yielding the integers of the JSON array bound to parameter ``param``."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Run one statement; iterate the result rows as tuples.

        Raises loomdb errors (ProgrammingError, IntegrityError, DataError,
        OperationalError...) translated from the engine's own.
        """
        ...

    @property
    def has_deferred(self) -> bool:
        """Whether deferred writes wait for the next statement."""
        ...

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a write whose result nobody reads, now or, on an engine where round
        trips are dear, together with the next statement (its errors then
        surface there; a rollback discards it)."""
        ...

    def execute_probed(
        self, probe: str, sql: str, params: Sequence[Any] = ()
    ) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
        """Run ``probe``, then ``sql``, in one round trip (engines without a cheap change check)."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...

    def changes(self) -> int:
        """Rows changed by the last INSERT/UPDATE/DELETE."""
        ...

    def begin_write(
        self, lock: int = 0, probes: Sequence[tuple[str, Sequence[Any]]] = ()
    ) -> list[tuple[Any, ...] | None]:
        """Start a write transaction holding the lock of branch ``lock`` (0: the catalog).

        Writers of one branch are ordered; an engine may also order writers
        of different branches (SQLite has one write lock). Waits in line up
        to the connection timeout and raises OperationalError only then.
        An engine with ``eager_commit`` then runs ``probes`` (SQL, params)
        in the same round trip and returns each one's first row.
        """
        ...

    def lock_catalog(self) -> None:
        """Also hold the catalog lock until the open transaction ends."""
        ...

    def begin_read(self) -> None:
        """Start a read-only transaction that sees one committed state."""
        ...

    def allocating_insert_sql(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> str | None:
        """An INSERT of one version that allocates its _vid and returns it
        (parameters: _rid or None, _bid, _seq, _end, _del, user columns), or
        None when loomdb allocates ids itself (engines with ordered versions)."""
        ...

    def sync_sequences(self, physical_tables: Sequence[str]) -> None:
        """After a bulk load with explicit ids, move id generators past them."""
        ...

    # Engines with ``eager_commit`` only (see loomdb.batch_insert):

    def absent_insert_sql(
        self, table: str, columns: Sequence[tuple[str, ColumnType]], view: str, key: Sequence[tuple[str, int]]
    ) -> str:
        """An INSERT of one new row that inserts nothing when a row of ``view`` has
        its ``key`` ((user name, index into columns) pairs), or when the schema
        epoch is not parameter ?2; ?1 is the branch, then the columns."""
        ...

    def write_in_one_trip(
        self, lock: int, steps: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[tuple[tuple[Any, ...] | None, int]]:
        """BEGIN, the lock of branch ``lock``, ``steps``, COMMIT in one round trip:
        each step's first row (or None) and row count. On an error nothing is
        committed, the transaction is rolled back, and the error is raised."""
        ...

    def commit(self) -> None:
        """Make the open transaction durable (per the durability setting)."""
        ...

    def rollback(self) -> None:
        """Discard the open transaction."""
        ...

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this connection."""
        ...

    def others_committed(self) -> bool:
        """True when another connection committed since the last call (cheap)."""
        ...

    def set_statement_time(self, now: str | None) -> None:
        """The value SQL's NOW() returns until the next call (None: the clock at the call)."""
        ...

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        """Create the versioned physical table ``table`` with user columns
        ``(physical name, type)`` after loomdb's version columns."""
        ...

    def add_physical_column(self, table: str, column: str, ctype: ColumnType) -> None: ...

    def create_physical_index(
        self,
        table: str,
        index: str,
        columns: Sequence[str],
        method: str | None = None,
        opclass: str | None = None,
    ) -> None:
        """A B-tree index on ``columns`` plus the version columns, or a vector
        index (``method`` hnsw/ivfflat with ``opclass``) where the engine builds one."""
        ...

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        """The engine's plan for ``sql``, one line per step."""
        ...

    def close(self) -> None: ...
