"""``LoomSaver``: a LangGraph checkpointer over a loomdb store (embedded or PostgreSQL).

Checkpoints, channel values and pending writes live in three ordinary loomdb
tables (see ``schema`` and docs/langgraph.md), so they can be read with SQL,
branched and merged like any other rows. Only ``loomdb.Database``'s public
API is used.

This module holds the class with its construction, branches and reads; it
takes its writes from ``write.SaverWrites``, its whole-thread methods from
``threads.SaverThreads`` and its async methods from ``aio.SaverAsync``.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, get_checkpoint_id
from langgraph.checkpoint.serde.base import SerializerProtocol

from ... import errors
from ...connect import connect
from ...database import Database
from ...results import Conflict, MergeResult
from .aio import SaverAsync
from .codec import ListCache
from .config import address, checkpoint_config
from .memory import Lru, Stored
from .read import RawValue, decode_writes, fetch_writes, load_refs, write_refs
from .schema import CHECKPOINT_COLUMNS, DDL
from .threads import SaverThreads
from .write import SaverWrites

__all__ = ["LoomSaver"]


class LoomSaver(SaverWrites, SaverThreads, SaverAsync):
    """A LangGraph checkpointer storing checkpoints in a loomdb store.

    ``db`` is the handle whose branch the saver reads and writes.

    With ``defer_writes`` (the default) a task's ordinary pending writes are
    committed together with the next checkpoint of their thread, in its
    transaction: one commit (one fsync) per LangGraph step. Writes to
    LangGraph's special channels (an error, an interrupt, a resume, a
    schedule) commit at once, and so does every deferred write before any
    read, delete, copy or prune, and on ``flush()``. A process killed in the
    middle of a superstep then re-runs that superstep's finished tasks as well
    (LangGraph runs tasks at least once in any case). ``defer_writes=False``
    commits every ``put_writes`` on its own.

    A channel whose new value is a list extending its previous value stores
    only the appended items; after ``list_snapshot_after`` such deltas, once
    they hold as many items as the list's last whole copy, the list is stored
    whole again, so a rebuild reads at most about twice the list and the
    whole copies add up to at most about twice its final size.
    """

    def __init__(
        self,
        db: Database,
        *,
        serde: SerializerProtocol | None = None,
        defer_writes: bool = True,
        list_snapshot_after: int = 256,
    ) -> None:
        super().__init__(serde=serde)
        if not isinstance(db, Database):
            raise errors.ProgrammingError(f"LoomSaver needs a loomdb.Database, not {type(db).__name__}")
        if list_snapshot_after < 1:
            raise errors.ProgrammingError("list_snapshot_after must be at least 1")
        self.db = db
        self.defer_writes = defer_writes
        self.list_snapshot_after = list_snapshot_after
        self._pending = {}
        # The newest checkpoint put per (thread, namespace): writes against an
        # older one have no later put to ride with, so they commit at once.
        self._newest = Lru[tuple[str, str], str](4096)
        # Savers made from this one by fork/checkout: a merge commits their deferred writes first.
        self._family: list[weakref.ref[LoomSaver]] = [weakref.ref(self)]
        self._lists = ListCache()
        self._heads = Lru[tuple[str, str, str], Stored](256)
        self._known = Lru[tuple[str, str], None](8192)
        self._lock = threading.Lock()
        self._is_setup = False

    # -- construction ------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        branch: str = "main",
        durability: str = "full",
        serde: SerializerProtocol | None = None,
        defer_writes: bool = True,
        list_snapshot_after: int = 256,
    ) -> Iterator[LoomSaver]:
        """Open a store (file path or ``postgresql://`` URL), set the tables up, yield a saver.

        On exit, deferred writes are committed and the store is closed.
        """
        db = connect(conn_string, branch=branch, durability=durability)
        try:
            saver = cls(db, serde=serde, defer_writes=defer_writes, list_snapshot_after=list_snapshot_after)
            saver.setup()
            yield saver
            saver.flush()
        finally:
            db.close()

    def setup(self) -> None:
        """Create the saver's tables if they do not exist (idempotent)."""
        for ddl in DDL:
            self.db.execute(ddl)
        try:
            self.db.execute("SELECT writes FROM checkpoint_writes LIMIT 0").fetchall()
        except errors.ProgrammingError:
            raise errors.ProgrammingError(
                "checkpoint_writes has the layout of an earlier LoomSaver (one row per write):"
                " this one stores a task's writes in one row; drop or rename the table to set it up anew"
            ) from None
        self._is_setup = True

    def _ready(self) -> None:
        """Set the tables up unless this saver (or the one it was made from) has."""
        if not self._is_setup:
            self.setup()

    # -- branches ------------------------------------------------------------------------------

    def _on(self, db: Database) -> LoomSaver:
        """A saver with this one's settings on handle ``db``, in this one's family (see ``merge``)."""
        clone = LoomSaver(
            db, serde=self.serde, defer_writes=self.defer_writes, list_snapshot_after=self.list_snapshot_after
        )
        clone._is_setup = self._is_setup
        clone._family = self._family
        self._family[:] = [r for r in self._family if r() is not None] + [weakref.ref(clone)]
        return clone

    def fork(self, config: RunnableConfig, branch: str) -> tuple[LoomSaver, RunnableConfig]:
        """Fork a LangGraph thread at a checkpoint onto a new loomdb branch.

        ``config`` names the checkpoint (its thread, and ``checkpoint_id`` or
        the thread's latest). Returns a saver bound to branch ``branch``
        (created from this saver's branch head) and the config of that
        checkpoint: compile the graph with the saver and invoke it with the
        config to continue the thread there, apart from this branch.
        Raises ``BranchExistsError`` if the branch exists, ``ProgrammingError``
        if there is no such checkpoint.
        """
        tup = self.get_tuple(config)
        if tup is None:
            raise errors.ProgrammingError(f"no checkpoint to fork for {config.get('configurable')!r}")
        return self._on(self.db.branch(branch)), tup.config

    def checkout(self, branch: str) -> LoomSaver:
        """A saver on the existing loomdb branch ``branch`` (``BranchNotFoundError`` otherwise)."""
        return self._on(self.db.checkout(branch))

    def merge(
        self,
        source: str,
        into: str | None = None,
        *,
        on_conflict: str | Callable[[Conflict], dict[str, Any] | None] = "fail",
        message: str | None = None,
    ) -> MergeResult:
        """Merge the checkpoints of branch ``source`` into ``into`` (default: this saver's branch).

        Checkpoints written on either side are all kept, so the merged
        branch lists both continuations of a forked thread. Rows both sides
        changed differently (say, pending writes of the fork checkpoint's
        task with different results) raise ``loomdb.MergeConflict``, changing
        nothing, unless ``on_conflict`` (``"ours"``, ``"theirs"`` or a
        callable, as in ``Database.merge``) settles them.
        """
        for ref in list(self._family):
            member = ref()
            if member is not None:
                member.flush()
        return self.db.merge(source, into=into, on_conflict=on_conflict, message=message)

    # -- reads ---------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``, or the thread's latest), or None."""
        self._ready()
        self.flush()
        thread_id, ns, checkpoint_id = address(config)
        if checkpoint_id:
            row = self.db.execute(
                f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints"
                " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
                [thread_id, ns, checkpoint_id],
            ).fetchone()
        else:
            row = self.db.execute(
                f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s"
                " ORDER BY checkpoint_id DESC LIMIT 1",
                [thread_id, ns],
            ).fetchone()
        if row is None:
            return None
        stored = Stored.of(row)
        write_rows = fetch_writes(self.db, thread_id, ns, [row["checkpoint_id"]])
        raws = load_refs(self.db, thread_id, {*stored.refs.values(), *write_refs(write_rows)})
        self._remember(thread_id, ns, row["checkpoint_id"], stored, raws)
        writes = decode_writes(self.serde, thread_id, write_rows, raws)
        return self._tuple(row, stored, raws, writes.get(row["checkpoint_id"], []))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by ``checkpoint_id``), of one thread (and namespace) or all.

        ``filter`` matches metadata by JSON containment (``metadata @> filter``),
        ``before`` keeps checkpoint ids below its ``checkpoint_id``.
        """
        self._ready()
        self.flush()
        where, params = [], []
        if config is not None:
            thread_id, _, checkpoint_id = address(config)
            where.append("thread_id = %s")
            params.append(thread_id)
            ns = config["configurable"].get("checkpoint_ns")
            if ns is not None:
                where.append("checkpoint_ns = %s")
                params.append(ns)
            if checkpoint_id:
                where.append("checkpoint_id = %s")
                params.append(checkpoint_id)
        if filter:
            where.append("metadata @> %s")
            params.append(dict(filter))
        if before is not None and (before_id := get_checkpoint_id(before)):
            where.append("checkpoint_id < %s")
            params.append(before_id)
        sql = f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY checkpoint_id DESC, thread_id, checkpoint_ns"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        rows = self.db.execute(sql, params).fetchall()
        page = 32
        for start in range(0, len(rows), page):
            yield from self._tuples(rows[start : start + page])

    def _tuples(self, rows: Sequence[Any]) -> Iterator[CheckpointTuple]:
        """The CheckpointTuples of ``rows``, in order; values and writes are loaded per thread and namespace."""
        groups: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            groups.setdefault((row["thread_id"], row["checkpoint_ns"]), []).append(row)
        loaded = {}
        for (thread_id, ns), members in groups.items():
            write_rows = fetch_writes(self.db, thread_id, ns, [r["checkpoint_id"] for r in members])
            hashes = {h for row in members for h in (row["channel_refs"] or {}).values()}
            raws = load_refs(self.db, thread_id, hashes | write_refs(write_rows))
            loaded[(thread_id, ns)] = (raws, decode_writes(self.serde, thread_id, write_rows, raws))
        for row in rows:
            raws, writes = loaded[(row["thread_id"], row["checkpoint_ns"])]
            yield self._tuple(row, Stored.of(row), raws, writes.get(row["checkpoint_id"], []))

    def _tuple(self, row: Any, stored: Stored, raws: Mapping[str, RawValue], writes: list) -> CheckpointTuple:
        """The CheckpointTuple of a ``checkpoints`` row, its channel values from ``stored`` and ``raws``."""
        thread_id, ns = row["thread_id"], row["checkpoint_ns"]
        checkpoint = dict(row["checkpoint"])
        checkpoint["id"] = row["checkpoint_id"]
        if "ts" not in checkpoint and row["ts"] is not None:
            ts = row["ts"]  # a TIMESTAMP: naive, its UTC wall time
            checkpoint["ts"] = (ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts).isoformat()
        values = {}
        for ch in checkpoint["channel_versions"]:
            if ch in stored.inline:
                values[ch] = stored.inline[ch]
            elif ch in stored.refs and (raw := raws.get(stored.refs[ch])) is not None:
                values[ch] = raw.decode(self.serde)
        checkpoint["channel_values"] = values
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config=checkpoint_config(thread_id, ns, row["checkpoint_id"]),
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=row["metadata"],
            parent_config=checkpoint_config(thread_id, ns, parent) if parent else None,
            pending_writes=writes,
        )

    def _remember(
        self, thread_id: str, ns: str, checkpoint_id: str, stored: Stored, raws: Mapping[str, RawValue]
    ) -> None:
        """Remember what a read of a checkpoint found, for the thread's next put."""
        # A thread is read before a run continues it: what was read lets its next put
        # carry unchanged channels, skip stored values and store lists as deltas.
        with self._lock:
            self._heads.put((thread_id, ns, checkpoint_id), stored)
            for h in raws:
                self._known.put((thread_id, h), None)
            for ch, h in stored.refs.items():
                raw = raws.get(h)
                if raw is not None and raw.list_state is not None:
                    self._lists.put((thread_id, ns, ch), raw.list_state)

    # -- versions ------------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A zero-padded counter and a short random suffix: increasing as strings, short to store,
        and unlikely to repeat on two branches that continue one thread."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:010d}.{random.getrandbits(16):04x}"
