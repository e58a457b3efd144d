"""The engine's :class:`~loomdb.connection.Connection`: a session on a local store.

Every method here runs under the caller's lock (``Database`` holds it) and
raises loomdb errors only. Statements go to :mod:`.statements`; branches,
history and merges to the store and :mod:`.history`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .. import errors
from ..connection import ConflictPolicy, Connection, Params, Snapshot
from ..cursor import Cursor
from ..results import Branch, Change, Commit, DiffStat, MergeResult
from ..time_values import parse_timestamp
from . import statements as stmts
from .history import diff as history_diff
from .history import revert_reset, row_merge
from .session import Session
from .store import Store


class LocalConnection:
    """One store (its connection shared with every derived handle) seen from one branch."""

    def __init__(self, session: Session):
        self.session = session
        self.store: Store = session.store

    @property
    def lock(self) -> AbstractContextManager[Any]:
        return self.store.lock

    @classmethod
    def open(cls, store: Store, branch: str) -> LocalConnection:
        """A connection on ``branch`` of ``store`` (BranchNotFoundError when it does not exist)."""
        if branch == "main":
            return cls(Session(store, 1, "main"))
        info = store.branch_by_name(branch)
        return cls(Session(store, info.bid, info.name))

    # -- identity ------------------------------------------------------------------------------

    @property
    def branch_name(self) -> str:
        return self.session.name

    @property
    def snapshot(self) -> int | None:
        return self.session.snapshot

    @property
    def closed(self) -> bool:
        return self.store.closed

    @property
    def location(self) -> str:
        return str(self.store.backend.path)

    def describe(self) -> str:
        return str(self.store.backend.describe())

    def head(self) -> int:
        return self.session.head()

    # -- statements ----------------------------------------------------------------------------

    def execute(self, sql: str, params: Params | None) -> Cursor:
        return stmts.execute(self.session, sql, params)

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> Cursor:
        return stmts.executemany(self.session, sql, seq_of_params)

    def execute_batch(self, statements: Sequence[tuple[str, Iterable[Params]]]) -> list[Cursor]:
        return stmts.execute_batch(self.session, statements)

    def explain(self, sql: str, params: Params | None) -> str:
        return stmts.explain(self.session, sql, params)

    @contextlib.contextmanager
    def transaction(self, message: str | None, author: str | None, savepoints: bool) -> Iterator[None]:
        """One write transaction around the block (nested blocks join the outer one)."""
        session, store = self.session, self.store
        session.check_writable()
        if store.txn is not None:
            session.check_txn_branch(store.txn)
            yield
            return
        with store.write_transaction(
            session.bid, session.fork(), message, author, explicit=True, savepoints=savepoints
        ):
            yield

    # -- branches and history ------------------------------------------------------------------

    def branch(self, name: str, from_: Snapshot | None) -> LocalConnection:
        session, store = self.session, self.store
        if from_ is None:
            parent, fork = session.bid, store.head(session.lineage)
        elif isinstance(from_, str):
            source = store.branch_by_name(from_)
            parent, fork = source.bid, store.head(store.lineage(source.bid, None))
        elif isinstance(from_, dt.datetime):
            parent, fork = session.bid, store.commit_at(session.lineage, from_)
        elif isinstance(from_, int) and not isinstance(from_, bool):
            fork, parent = store.commit_info(from_)
        else:
            raise errors.ProgrammingError(
                f"from_ must be a branch name, a commit id or a datetime, not {type(from_).__name__}"
            )
        info = store.create_branch(name, parent, fork)
        return LocalConnection(session.at(info.bid, info.name))

    def checkout(self, name: str) -> LocalConnection:
        info = self.store.branch_by_name(name)
        return LocalConnection(self.session.at(info.bid, info.name))

    def as_of(self, when: int | dt.datetime) -> LocalConnection:
        session, store = self.session, self.store
        if isinstance(when, dt.datetime):
            seq = store.commit_at(session.lineage, when)
        elif isinstance(when, int) and not isinstance(when, bool):
            seq, bid = store.commit_info(when)
            if not session.lineage.contains(bid, seq):
                raise errors.CommitNotFoundError(
                    f"commit {when} is not part of branch {session.name!r}'s history"
                )
        else:
            raise errors.ProgrammingError(f"as_of takes a commit id or a datetime, not {type(when).__name__}")
        return LocalConnection(session.at(session.bid, session.name, snapshot=seq))

    def branches(self) -> list[Branch]:
        store = self.store
        infos = store.list_branches()
        names = {i.bid: i.name for i in infos}
        out = []
        for info in infos:
            parent = None
            if info.parent is not None:
                parent = names.get(info.parent) or store.branch_by_id(info.parent).name
            head = store.head(store.lineage(info.bid, None))
            out.append(Branch(info.name, parent, info.fork, head, parse_timestamp(info.created)))
        return out

    def drop_branch(self, name: str) -> None:
        if self.store.txn is not None:
            raise errors.ProgrammingError("cannot drop a branch inside a transaction")
        self.store.drop_branch(name)

    def log(self, branch: str | None, limit: int | None) -> list[Commit]:
        store = self.store
        lineage = (
            self.session.lineage if branch is None else store.lineage(store.branch_by_name(branch).bid, None)
        )
        return [
            Commit(seq, name, message, author, time, tuple(p for p in (parent, merge) if p is not None))
            for seq, name, message, author, time, parent, merge in store.log(lineage, limit)
        ]

    def table_names(self) -> list[str]:
        return sorted(self.session.schemas())

    # -- merge, diff, revert, reset --------------------------------------------------------------

    def merge(
        self,
        source: str,
        into: str | None,
        on_conflict: ConflictPolicy,
        message: str | None,
        author: str | None,
    ) -> MergeResult:
        self.store.refresh()
        target = self.session if into is None else self.checkout(into).session
        return row_merge.merge(self.session, target, source, on_conflict, message, author)

    def diff(self, a: Snapshot, b: Snapshot, table: str | None) -> list[Change]:
        self.store.refresh()
        return list(history_diff.diff(self.session, a, b, table))

    def diff_stat(self, a: Snapshot, b: Snapshot) -> dict[str, DiffStat]:
        self.store.refresh()
        return history_diff.diff_stat(self.session, a, b)

    def revert(self, commit: int, message: str | None, author: str | None) -> int | None:
        self.store.refresh()
        return revert_reset.revert(self.session, commit, message, author)

    def reset(self, to: Snapshot, branch: str | None, message: str | None, author: str | None) -> int | None:
        self.store.refresh()
        target = self.session if branch is None else self.checkout(branch).session
        return revert_reset.reset(target, to, message, author)

    # -- lifecycle -------------------------------------------------------------------------------

    def vector_cache_bytes(self) -> int:
        return sum(c.nbytes for c in self.store.vector_caches.values())

    def close(self) -> None:
        self.store.close()


def _conforms(connection: LocalConnection) -> Connection:
    """mypy proves here that LocalConnection is a Connection."""
    return connection
