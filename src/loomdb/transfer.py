"""``loomdb.copy``: move a whole store, history and branches included, between engines.

The copy itself is the engine's (``loomdb.engine.copy``); this module opens
both stores and then checks the copy through the public API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .connect import handle, open_store
from .database import Database
from .engine.copy import copy_store


@dataclass
class CopyResult:
    """What was copied: counts, and what the verification compared."""

    source: str
    destination: str
    branches: int = 0
    commits: int = 0
    versions: int = 0
    tables: list[str] = field(default_factory=list)
    verified: bool = False


def copy(source: str, destination: str, *, verify: bool = True) -> CopyResult:
    """Copy the store at ``source`` into the new, empty store at ``destination``.

    Either may be a SQLite file path or a ``postgresql://`` URL. Raises
    OperationalError when there is no store at ``source``,
    ProgrammingError when the destination already holds history, and
    DataError when ``verify`` finds a difference (the copy is then
    incomplete and should be discarded).
    """
    src = open_store(source, create=False)
    try:
        dst = open_store(destination)
        try:
            counts = copy_store(src, dst)
            result = CopyResult(
                source, destination, counts.branches, counts.commits, counts.versions, counts.tables
            )
            if verify:
                _verify(handle(src), handle(dst))
                result.verified = True
        finally:
            dst.close()
    finally:
        src.close()
    return result


def _verify(src: Database, dst: Database) -> None:
    """Raise DataError unless both stores have the same branches, logs and rows."""
    s_names = sorted(b.name for b in src.branches())
    d_names = sorted(b.name for b in dst.branches())
    if s_names != d_names:
        raise errors.DataError(f"copy verification: branches differ ({s_names} vs {d_names})")
    for name in s_names:
        s, d = src.checkout(name), dst.checkout(name)
        try:
            if [_commit(c) for c in s.log()] != [_commit(c) for c in d.log()]:
                raise errors.DataError(f"copy verification: the log of branch {name!r} differs")
            tables = s.table_names()
            if tables != d.table_names():
                raise errors.DataError(f"copy verification: the tables of branch {name!r} differ")
            for table in tables:
                if _rows(s, table) != _rows(d, table):
                    raise errors.DataError(f"copy verification: rows of {table!r} on branch {name!r} differ")
        finally:
            s.close()
            d.close()


def _commit(commit: Any) -> tuple[Any, ...]:
    return (commit.id, commit.branch, commit.message, commit.author, commit.time, commit.parents)


def _rows(db: Database, table: str) -> list[str]:
    cursor = db.execute(f'SELECT * FROM "{table}"')
    # Sorted keys: PostgreSQL's jsonb orders object keys its own way.
    return sorted(json.dumps([_plain(v) for v in row], sort_keys=True) for row in cursor.fetchall())


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (dict, list, str, int, float, bool)) or value is None:
        return value
    return str(value)
