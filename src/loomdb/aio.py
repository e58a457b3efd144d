"""loomdb for asyncio: the same API, awaitable, for async agents.

loomdb is synchronous underneath. Each connection gets one worker thread:
every call on the connection (and on handles derived from it) runs there, in
the order it was made, so the event loop never blocks on I/O or a lock wait
and the connection is never used by two threads at once. A ``transaction()``
block keeps other tasks' calls on the connection out until it ends; calls
made inside the block (also from tasks it starts) join it.

>>> db = await loomdb.aio.connect("agent-runs.loom")  # doctest: +SKIP
>>> run = await db.run("run-42")  # doctest: +SKIP
>>> await run.persist(1, action="read issue", state={"plan": []})  # doctest: +SKIP
True

Cursors come back with their rows already read, so ``fetchone``/``fetchall``
on them never wait. Cancelling an await does not stop a statement that has
started: it finishes (or fails) in the worker thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from . import errors
from .connect import connect as _connect
from .cursor import Cursor, Row
from .database import Database
from .results import Branch, Change, Commit, Conflict, DiffStat, MergeResult
from .run import Resume, Run, Step

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any] | None

# The transaction() blocks the current task is in (tasks started inside a block inherit them).
_IN_TRANSACTION: contextvars.ContextVar[frozenset[object]] = contextvars.ContextVar(
    "loomdb_aio_in_transaction", default=frozenset()
)


class _Connection:
    """The worker thread and the transaction gate shared by every handle of one connection."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loomdb-aio")
        self.gate = asyncio.Lock()  # held by an open transaction() block
        self.block: object | None = None  # the open transaction() block, if any
        self.closed = False

    def inside_block(self) -> bool:
        """Whether the current task is inside this connection's open transaction() block."""
        return self.block is not None and self.block in _IN_TRANSACTION.get()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the worker thread, after any transaction block of another task."""
        if self.closed:
            raise errors.InterfaceError("this loomdb connection is closed")
        loop = asyncio.get_running_loop()
        job = functools.partial(fn, *args, **kwargs)
        if self.inside_block():
            return await loop.run_in_executor(self.executor, job)
        async with self.gate:
            return await loop.run_in_executor(self.executor, job)


async def connect(path: str | os.PathLike[str], **options: Any) -> AsyncDatabase:
    """``loomdb.connect(path, **options)`` without blocking the event loop."""
    conn = _Connection()
    try:
        db = await conn.call(_connect, path, **options)
    except BaseException:
        conn.executor.shutdown(wait=False)
        raise
    return AsyncDatabase(db, conn, owner=True)


class AsyncDatabase:
    """An awaitable ``Database``: each method does what ``Database``'s does (see docs/api.md)."""

    def __init__(self, db: Database, conn: _Connection, *, owner: bool = False) -> None:
        self._db, self._conn, self._owner = db, conn, owner

    @property
    def sync(self) -> Database:
        """The underlying handle. Call it only from inside ``run_sync``."""
        return self._db

    @property
    def branch_name(self) -> str:
        return self._db.branch_name

    @property
    def read_only(self) -> bool:
        return self._db.read_only

    def __repr__(self) -> str:
        return f"<loomdb.aio.AsyncDatabase branch={self.branch_name!r}>"

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in this connection's worker thread: for several
        calls on ``self.sync`` in one hop, or an API this class does not wrap."""
        return await self._conn.call(fn, *args, **kwargs)

    def _derive(self, db: Database) -> AsyncDatabase:
        return AsyncDatabase(db, self._conn)

    # -- statements ------------------------------------------------------------------------

    async def execute(self, sql: str, params: Params = None) -> Cursor:
        return await self._conn.call(self._db.execute, sql, params)

    async def executemany(
        self, sql: str, seq_of_params: Iterable[Sequence[Any] | Mapping[str, Any]]
    ) -> Cursor:
        return await self._conn.call(self._db.executemany, sql, list(seq_of_params))

    async def execute_batch(
        self, statements: Sequence[tuple[str, Iterable[Sequence[Any] | Mapping[str, Any]]]]
    ) -> list[Cursor]:
        return await self._conn.call(self._db.execute_batch, [(sql, list(seq)) for sql, seq in statements])

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        """``execute(sql, params).fetchone()``, decoded in the worker thread."""
        return await self._conn.call(lambda: self._db.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        """``execute(sql, params).fetchall()``, decoded in the worker thread."""
        return await self._conn.call(lambda: self._db.execute(sql, params).fetchall())

    async def explain(self, sql: str, params: Params = None) -> str:
        return await self._conn.call(self._db.explain, sql, params)

    @asynccontextmanager
    async def transaction(
        self, message: str | None = None, author: str | None = None
    ) -> AsyncIterator[AsyncDatabase]:
        """One commit of every statement in the block; rolled back if the block raises
        (or is cancelled). Other tasks' calls on this connection wait until it ends."""
        conn = self._conn
        if conn.inside_block():  # nested: join the open block
            async with _in_worker(conn, self._db.transaction(message, author)):
                yield self
            return
        async with conn.gate:
            conn.block = block = object()
            token = _IN_TRANSACTION.set(_IN_TRANSACTION.get() | {block})
            try:
                async with _in_worker(conn, self._db.transaction(message, author)):
                    yield self
            finally:
                conn.block = None
                _IN_TRANSACTION.reset(token)

    # -- branches and history -------------------------------------------------------------

    async def head(self) -> int:
        """``Database.head``: the newest commit this handle sees."""
        return await self._conn.call(lambda: self._db.head)

    async def branch(self, name: str, from_: str | int | dt.datetime | None = None) -> AsyncDatabase:
        return self._derive(await self._conn.call(self._db.branch, name, from_))

    async def checkout(self, name: str) -> AsyncDatabase:
        return self._derive(await self._conn.call(self._db.checkout, name))

    async def as_of(self, when: int | dt.datetime) -> AsyncDatabase:
        return self._derive(await self._conn.call(self._db.as_of, when))

    async def branches(self) -> list[Branch]:
        return await self._conn.call(self._db.branches)

    async def drop_branch(self, name: str) -> None:
        await self._conn.call(self._db.drop_branch, name)

    async def log(self, branch: str | None = None, limit: int | None = None) -> list[Commit]:
        return await self._conn.call(self._db.log, branch, limit)

    async def merge(
        self,
        source: str,
        into: str | None = None,
        on_conflict: str | Callable[[Conflict], dict[str, Any] | None] = "fail",
        message: str | None = None,
        author: str | None = None,
    ) -> MergeResult:
        return await self._conn.call(self._db.merge, source, into, on_conflict, message, author)

    async def diff(
        self, a: str | int | dt.datetime, b: str | int | dt.datetime, table: str | None = None
    ) -> list[Change]:
        return await self._conn.call(lambda: list(self._db.diff(a, b, table)))

    async def diff_stat(self, a: str | int | dt.datetime, b: str | int | dt.datetime) -> dict[str, DiffStat]:
        return await self._conn.call(self._db.diff_stat, a, b)

    async def revert(self, commit: int, message: str | None = None, author: str | None = None) -> int | None:
        return await self._conn.call(self._db.revert, commit, message, author)

    async def reset(
        self,
        to: str | int | dt.datetime,
        branch: str | None = None,
        message: str | None = None,
        author: str | None = None,
    ) -> int | None:
        return await self._conn.call(self._db.reset, to, branch, message, author)

    # -- agent runs ------------------------------------------------------------------------

    async def run(self, run_id: str, *, table: str = "iterations", dim: int | None = None) -> AsyncRun:
        """``Database.run``: the agent run ``run_id`` on this handle's branch."""
        return AsyncRun(await self._conn.call(self._db.run, run_id, table=table, dim=dim), self._conn)

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Close this handle; on the handle ``connect`` returned, also the connection
        and its worker thread."""
        if self._conn.closed:
            return
        await self._conn.call(self._db.close)
        if self._owner:
            self._conn.closed = True
            self._conn.executor.shutdown(wait=False)

    @property
    def closed(self) -> bool:
        return self._db.closed

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncRun:
    """An awaitable ``Run``: each method does what ``Run``'s does (see docs/run.md)."""

    def __init__(self, run: Run, conn: _Connection) -> None:
        self._run, self._conn = run, conn

    @property
    def sync(self) -> Run:
        """The underlying Run (call it only from inside ``AsyncDatabase.run_sync``)."""
        return self._run

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def branch(self) -> str:
        return self._run.branch

    @property
    def table(self) -> str:
        return self._run.table

    @property
    def dim(self) -> int:
        return self._run.dim

    @property
    def db(self) -> AsyncDatabase:
        return AsyncDatabase(self._run.db, self._conn)

    def __repr__(self) -> str:
        return f"<loomdb.aio.AsyncRun {self.run_id!r} branch={self.branch!r} table={self.table!r}>"

    async def persist(
        self,
        step: int,
        *,
        action: str | None = None,
        observation: str | None = None,
        state: Any = None,
        embedding: Any = None,
        tokens_used: int | None = None,
        **columns: Any,
    ) -> bool:
        return await self._conn.call(
            self._run.persist,
            step,
            action=action,
            observation=observation,
            state=state,
            embedding=embedding,
            tokens_used=tokens_used,
            **columns,
        )

    async def get(self, step: int) -> Step | None:
        return await self._conn.call(self._run.get, step)

    async def last(self) -> Step | None:
        return await self._conn.call(self._run.last)

    async def resume(self) -> Resume:
        return await self._conn.call(self._run.resume)

    async def steps(self, *, after: int | None = None, limit: int | None = None) -> list[Step]:
        return await self._conn.call(self._run.steps, after=after, limit=limit)

    async def similar(
        self, embedding: Any, k: int = 5, *, metric: str = "cosine", all_runs: bool = False
    ) -> list[Step]:
        return await self._conn.call(self._run.similar, embedding, k, metric=metric, all_runs=all_runs)

    async def fork(self, at_step: int, name: str | None = None) -> AsyncRun:
        return AsyncRun(await self._conn.call(self._run.fork, at_step, name), self._conn)

    async def merge(
        self,
        into: str = "main",
        *,
        on_conflict: str | Callable[[Conflict], dict[str, Any] | None] = "fail",
        message: str | None = None,
        author: str | None = None,
    ) -> MergeResult:
        return await self._conn.call(
            self._run.merge, into, on_conflict=on_conflict, message=message, author=author
        )


@asynccontextmanager
async def _in_worker(conn: _Connection, manager: Any) -> AsyncIterator[None]:
    """Enter and leave a synchronous context manager in the connection's worker thread
    (a transaction must begin and end in the thread that runs its statements)."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(conn.executor, manager.__enter__)
    try:
        yield
    except BaseException as exc:
        # Shielded: a cancelled block still rolls back before the connection is used again.
        rollback = loop.run_in_executor(conn.executor, manager.__exit__, type(exc), exc, exc.__traceback__)
        await asyncio.shield(rollback)
        raise
    await loop.run_in_executor(conn.executor, manager.__exit__, None, None, None)


__all__ = ["AsyncDatabase", "AsyncRun", "connect"]
