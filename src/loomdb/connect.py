"""``loomdb.connect``: the composition root that picks a storage engine."""

from __future__ import annotations

import os

from . import errors
from .backend.protocol import Backend
from .database import Database
from .engine.local import LocalConnection
from .engine.store import Store


def open_store(
    path: str | os.PathLike[str],
    durability: str = "full",
    timeout: float = 60.0,
    vfs: str | None = None,
    schema: str | None = None,
    create: bool = True,
) -> Store:
    """The engine's store at ``path`` (see :func:`connect` for the arguments and errors)."""
    target = os.fspath(path)
    if target.startswith(("postgresql://", "postgres://")):
        if vfs is not None:
            raise errors.ProgrammingError("vfs applies to SQLite files, not to a PostgreSQL URL")
        try:
            from .backend.postgres import PostgresBackend
        except ImportError as exc:
            raise errors.NotSupportedError(
                f"the PostgreSQL engine needs psycopg 3: pip install 'loomdb[postgres]' ({exc})"
            ) from None

        backend: Backend = PostgresBackend(
            target, schema=schema, durability=durability, timeout=timeout, create=create
        )
    else:
        if schema is not None:
            raise errors.ProgrammingError("schema applies to a PostgreSQL URL, not to a SQLite file")
        if target == ":memory:" or not target:
            raise errors.NotSupportedError(
                "loomdb stores live in a file; pass a path such as 'agent-runs.loom'"
            )
        if "://" in target:
            raise errors.NotSupportedError(
                f"unknown store URL {target.split('://')[0]!r}://: use a file path or postgresql://"
            )
        from .backend.sqlite import SQLiteBackend

        if not create and not os.path.exists(target):
            raise errors.OperationalError(f"no store at {target!r}")
        backend = SQLiteBackend(target, durability=durability, timeout=timeout, vfs=vfs)
    return Store(backend, create=create)


def connect(
    path: str | os.PathLike[str],
    branch: str = "main",
    durability: str = "full",
    timeout: float = 60.0,
    vfs: str | None = None,
    schema: str | None = None,
    create: bool = True,
) -> Database:
    """Open (or create) a loomdb store and return a handle on ``branch``.

    ``path`` is a file path (the embedded engine: one SQLite file) or a
    ``postgresql://user@host:port/db`` URL (the PostgreSQL engine; the store
    lives in ``schema``, or in ``?schema=`` of the URL, default ``public``).
    ``durability``: ``"full"`` (default) makes every returned commit survive
    a power cut (SQLite: fsync per commit; PostgreSQL:
    ``synchronous_commit=on``); ``"normal"`` makes it survive a killed
    process (PostgreSQL: ``synchronous_commit=off``). ``timeout``: seconds a
    writer waits in line for a lock before OperationalError. ``vfs``: an
    apsw VFS name to open a SQLite file through (tests use it to simulate
    power cuts). ``create=False`` opens only an existing store and raises
    OperationalError (creating nothing) when there is none.

    Raises NotALoomStoreError (the file or schema is something else; it is
    left untouched), StoreVersionError (written by a newer loomdb),
    BranchNotFoundError (no such branch) or OperationalError (cannot open
    or connect).
    """
    store = open_store(path, durability, timeout, vfs, schema, create)
    try:
        return handle(store, branch, owner=True)
    except errors.Error:
        store.close()
        raise


def handle(store: Store, branch: str = "main", *, owner: bool = False) -> Database:
    """A Database handle on ``branch`` of the open ``store`` (BranchNotFoundError
    when there is no such branch); ``owner``: closing it closes the store."""
    return Database(LocalConnection.open(store, branch), owner=owner)
