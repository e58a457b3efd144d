"""The contract every storage engine fulfils.

loomdb's upper layers (SQL compilation, versioning, the public ``Database``)
talk to an engine only through this protocol: they hand it SQL in the
engine's dialect and positional parameters, and it runs them. An engine knows
nothing of branches; it stores the physical tables it is told to create.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class PhysicalColumn(Protocol):
    phys: str
    affinity: str


class Backend(Protocol):
    #: The sqlglot dialect (class) that generates this engine's SQL.
    dialect: Any
    #: A short engine name: "sqlite" or "postgres".
    name: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Run one statement; iterate the result rows as tuples.

        Raises loomdb errors (ProgrammingError, IntegrityError, DataError,
        OperationalError...) translated from the engine's own.
        """
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...

    def changes(self) -> int:
        """Rows changed by the last INSERT/UPDATE/DELETE."""
        ...

    def last_insert_rowid(self) -> int:
        """The integer key the last INSERT on this connection assigned."""
        ...

    def begin_write(self) -> None:
        """Start a transaction that holds the engine's write lock until commit.

        Waits in line behind other writers (up to the connection timeout) and
        raises OperationalError only when that timeout passes.
        """
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

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, str]]) -> None:
        """Create the versioned physical table ``table`` with user columns
        ``(physical name, affinity)`` after loomdb's version columns."""
        ...

    def add_physical_column(self, table: str, column: str, affinity: str) -> None: ...

    def create_physical_index(self, table: str, index: str, columns: Sequence[str]) -> None: ...

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        """The engine's plan for ``sql``, one line per step."""
        ...

    def close(self) -> None: ...
