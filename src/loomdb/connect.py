"""``loomdb.connect``: the composition root that picks a storage engine."""

from __future__ import annotations

import os

from . import errors
from .database import Database
from .store import Store


def connect(
    path: str | os.PathLike[str],
    branch: str = "main",
    durability: str = "full",
    timeout: float = 60.0,
    vfs: str | None = None,
) -> Database:
    """Open (or create) a loomdb store and return a handle on ``branch``.

    ``path`` is a file path (the embedded engine: one SQLite file). A
    ``postgresql://`` URL is reserved for the PostgreSQL engine.
    ``durability``: ``"full"`` (default) makes every returned commit survive
    a power cut; ``"normal"`` makes it survive a killed process. ``timeout``:
    seconds a writer waits in line for the write lock before OperationalError.
    ``vfs``: an apsw VFS name to open the file through (tests use it to
    simulate power cuts).

    Raises NotALoomStoreError (the file is something else; it is left
    untouched), StoreVersionError (written by a newer loomdb),
    BranchNotFoundError (no such branch) or OperationalError (cannot open).
    """
    target = os.fspath(path)
    if target.startswith(("postgresql://", "postgres://")):
        raise errors.NotSupportedError("the PostgreSQL engine is not available in this version of loomdb")
    if target == ":memory:" or not target:
        raise errors.NotSupportedError("loomdb stores live in a file; pass a path such as 'agent-runs.loom'")
    from .backend.sqlite import SQLiteBackend

    backend = SQLiteBackend(target, durability=durability, timeout=timeout, vfs=vfs)
    store = Store(backend)
    if branch == "main":
        return Database(store, 1, "main", owner=True)
    try:
        info = store.branch_by_name(branch)
    except errors.Error:
        store.close()
        raise
    return Database(store, info.bid, info.name, owner=True)
