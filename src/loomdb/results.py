"""What loomdb's operations return: commits, branches, diffs, merges.

Plain named tuples and dataclasses, shared by the public API, the engine
that builds them and any client that reproduces them (a remote store).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Commit(NamedTuple):
    """One commit in ``Database.log()``."""

    id: int
    branch: str
    message: str | None
    author: str | None
    time: dt.datetime
    parents: tuple[int, ...]


class Branch(NamedTuple):
    """One branch in ``Database.branches()``."""

    name: str
    parent: str | None
    fork: int | None
    head: int
    created: dt.datetime


class TableChanges(NamedTuple):
    added: int
    modified: int
    deleted: int


class DiffStat(NamedTuple):
    added: int
    removed: int
    modified: int


class Conflict(NamedTuple):
    """One row that changed on both sides of a merge in ways that clash."""

    table: str
    key: dict[str, Any]
    kind: str
    base: dict[str, Any] | None
    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None
    columns: tuple[str, ...]


class Change(NamedTuple):
    """One row that differs between two snapshots."""

    table: str
    kind: str  # "added", "removed", "modified"
    key: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    columns: tuple[str, ...]


@dataclass
class MergeResult:
    """What a merge did: the merge commit and row counts per table."""

    source: str
    target: str
    commit: int | None
    tables: dict[str, TableChanges] = field(default_factory=dict)
    conflicts_resolved: int = 0

    @property
    def added(self) -> int:
        return sum(t.added for t in self.tables.values())

    @property
    def modified(self) -> int:
        return sum(t.modified for t in self.tables.values())

    @property
    def deleted(self) -> int:
        return sum(t.deleted for t in self.tables.values())
