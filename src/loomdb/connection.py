"""The interface a ``Database`` handle delegates to.

``Database`` is a facade: it checks arguments, holds the connection's lock
and hands each call to a :class:`Connection`: one store seen from one
branch. The embedded and PostgreSQL engines implement it in
``loomdb.engine.local``; a remote client (``loomdb.connect("http://…")``)
implements the same methods over HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .cursor import Cursor
from .results import Branch, Change, Commit, Conflict, DiffStat, MergeResult

Params = Sequence[Any] | Mapping[str, Any]
Snapshot = str | int | dt.datetime
ConflictPolicy = str | Callable[[Conflict], dict[str, Any] | None]


class Connection(Protocol):
    """One store seen from one branch (and maybe a snapshot). Every method raises
    loomdb errors only; see ``Database`` for what each promises."""

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Serialises the statements of every handle sharing this connection."""
        ...

    @property
    def branch_name(self) -> str:
        """The branch this connection reads and writes."""
        ...

    @property
    def snapshot(self) -> int | None:
        """The commit a read-only snapshot is pinned at (None: the live head)."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the shared connection is closed."""
        ...

    @property
    def location(self) -> str:
        """What reopens the store: a file path or URL (with credentials)."""
        ...

    def describe(self) -> str:
        """The store's location for messages (no password)."""
        ...

    def head(self) -> int: ...

    def execute(self, sql: str, params: Params | None) -> Cursor: ...

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> Cursor: ...

    def execute_batch(self, statements: Sequence[tuple[str, Iterable[Params]]]) -> list[Cursor]: ...

    def explain(self, sql: str, params: Params | None) -> str: ...

    def transaction(
        self, message: str | None, author: str | None, savepoints: bool
    ) -> AbstractContextManager[None]:
        """One commit of every statement inside the block; rolled back if it raises."""
        ...

    def branch(self, name: str, from_: Snapshot | None) -> Connection: ...

    def checkout(self, name: str) -> Connection: ...

    def as_of(self, when: int | dt.datetime) -> Connection: ...

    def branches(self) -> list[Branch]: ...

    def drop_branch(self, name: str) -> None: ...

    def log(self, branch: str | None, limit: int | None) -> list[Commit]: ...

    def table_names(self) -> list[str]: ...

    def merge(
        self,
        source: str,
        into: str | None,
        on_conflict: ConflictPolicy,
        message: str | None,
        author: str | None,
    ) -> MergeResult: ...

    def diff(self, a: Snapshot, b: Snapshot, table: str | None) -> list[Change]: ...

    def diff_stat(self, a: Snapshot, b: Snapshot) -> dict[str, DiffStat]: ...

    def revert(self, commit: int, message: str | None, author: str | None) -> int | None: ...

    def reset(
        self, to: Snapshot, branch: str | None, message: str | None, author: str | None
    ) -> int | None: ...

    def vector_cache_bytes(self) -> int: ...

    def close(self) -> None:
        """Close the shared connection (every handle on it)."""
        ...
