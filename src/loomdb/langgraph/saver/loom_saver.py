"""``LoomSaver``: a LangGraph checkpointer over a loomdb store (embedded or PostgreSQL).

Checkpoints, channel values and pending writes live in three ordinary loomdb
tables (see ``schema`` and docs/langgraph.md), so they can be read
with SQL, branched and merged like any other rows. Only ``loomdb.Database``'s
public API is used.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, NamedTuple, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ... import errors
from ...connect import connect
from ...database import Database
from ...results import Conflict, MergeResult
from . import maintenance
from .codec import (
    DELTA,
    INLINE_MAX,
    ListCache,
    ListState,
    ValueRow,
    WriteEntry,
    array_header,
    content_hash,
    encode_write,
    for_storage,
    is_json_primitive,
    json_row,
    pack_writes,
    split_array,
    write_indexes,
)
from .read import RawValue, chunks, decode_writes, fetch_writes, load_refs, write_refs
from .schema import (
    CHECKPOINT_COLUMNS,
    DDL,
    INSERT_CHECKPOINT,
    INSERT_VALUES,
    INSERT_WRITES,
    UPSERT_CHECKPOINT,
    UPSERT_WRITES,
    placeholders,
)

__all__ = ["LoomSaver"]

_K = TypeVar("_K")
_V = TypeVar("_V")

# Releases the GIL for a moment (Unix); elsewhere a no-op.
_yield_gil: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


class LoomSaver(BaseCheckpointSaver[str]):
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
        self._pending: dict[str, list[_Writes]] = {}
        # The newest checkpoint put per (thread, namespace): writes against an
        # older one have no later put to ride with, so they commit at once.
        self._newest = _Lru[tuple[str, str], str](4096)
        # Savers made from this one by fork/checkout: a merge commits their deferred writes first.
        self._family: list[weakref.ref[LoomSaver]] = [weakref.ref(self)]
        self._lists = ListCache()
        self._heads = _Lru[tuple[str, str, str], _Stored](256)
        self._known = _Lru[tuple[str, str], None](8192)
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
        if not self._is_setup:
            self.setup()

    # -- branches ------------------------------------------------------------------------------

    def _on(self, db: Database) -> LoomSaver:
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
        thread_id, ns, checkpoint_id = _address(config)
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
        stored = _Stored.of(row)
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
            thread_id, _, checkpoint_id = _address(config)
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
            yield self._tuple(row, _Stored.of(row), raws, writes.get(row["checkpoint_id"], []))

    def _tuple(
        self, row: Any, stored: _Stored, raws: Mapping[str, RawValue], writes: list
    ) -> CheckpointTuple:
        thread_id, ns = row["thread_id"], row["checkpoint_ns"]
        checkpoint = dict(row["checkpoint"])
        checkpoint["id"] = row["checkpoint_id"]
        if "ts" not in checkpoint and row["ts"] is not None:
            checkpoint["ts"] = row["ts"].astimezone(dt.UTC).isoformat()
        values = {}
        for ch in checkpoint["channel_versions"]:
            if ch in stored.inline:
                values[ch] = stored.inline[ch]
            elif ch in stored.refs and (raw := raws.get(stored.refs[ch])) is not None:
                values[ch] = raw.decode(self.serde)
        checkpoint["channel_values"] = values
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config=_config(thread_id, ns, row["checkpoint_id"]),
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=row["metadata"],
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=writes,
        )

    def _remember(
        self, thread_id: str, ns: str, checkpoint_id: str, stored: _Stored, raws: Mapping[str, RawValue]
    ) -> None:
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

    # -- writes --------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint in one commit; return its config.

        Channels whose version did not change since the parent checkpoint
        keep the parent's stored value; changed ones are encoded (a growing
        list as the items it appended).
        """
        self._ready()
        # LangGraph submits a step's put_writes before its put, to other threads:
        # let a put_writes waiting for the GIL go first (sched_yield releases it),
        # so its writes ride with this commit rather than needing one of their own.
        _yield_gil()
        thread_id, ns, parent_id = _address(config)
        versions = checkpoint["channel_versions"]
        values = checkpoint["channel_values"]
        parent = self._parent(thread_id, ns, parent_id) if parent_id else None
        stored = _Stored({}, {}, {})
        rows: list[ValueRow] = []
        new_lists: dict[str, ListState] = {}
        with self._lock:
            encoded = [w.encoded for w in self._pending.get(thread_id, ())]
        known = {k: v for e in encoded for k, v in e.items()} if encoded else {}
        for ch, version in versions.items():
            if ch not in new_versions and parent is not None and parent.holds(ch, version):
                stored.carry(parent, ch, version)
                continue
            if ch not in values:
                continue
            stored.versions[ch] = str(version)
            value = values[ch]
            if is_json_primitive(value) and not (type(value) is str and len(value) >= INLINE_MAX):
                stored.inline[ch] = value
                continue
            hit = known.get(id(value))
            ref, extra, state = self._encode_channel(
                thread_id, ns, ch, value, hit[1] if hit is not None and hit[0] is value else None
            )
            stored.refs[ch] = ref
            rows.extend(extra)
            if state is not None:
                new_lists[ch] = state
        with self._lock:
            pending = self._pending.pop(thread_id, [])
            self._newest.put((thread_id, ns), checkpoint["id"])
        rows = self._unknown(thread_id, [*(r for w in pending for r in w.values), *rows])
        # The id and (when the ts column gives it back exactly) ts are columns: not stored twice.
        body = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
        if _ts_in_column(body.get("ts")):
            del body["ts"]
        meta = get_serializable_checkpoint_metadata(config, metadata)
        with self._lock:
            # An id this saver stored already is put again (LangGraph updates a
            # checkpoint in place): upsert. Any other id LangGraph has just made.
            again = (thread_id, ns, checkpoint["id"]) in self._heads
        try:
            # One commit (on PostgreSQL one round trip), all or nothing.
            self._write_batch(
                thread_id,
                rows,
                pending,
                self._checkpoint_params(thread_id, ns, checkpoint, parent_id, meta, body, stored),
                again,
            )
        except BaseException:
            self._requeue(thread_id, pending)
            raise
        with self._lock:
            self._heads.put((thread_id, ns, checkpoint["id"]), stored)
            for r in rows:
                self._known.put((thread_id, r.hash), None)
            for ch, state in new_lists.items():
                self._lists.put((thread_id, ns, ch), state)
        return _config(thread_id, ns, checkpoint["id"])

    def _checkpoint_params(
        self,
        thread_id: str,
        ns: str,
        checkpoint: Checkpoint,
        parent_id: str | None,
        meta: Mapping[str, Any],
        body: dict[str, Any],
        stored: _Stored,
    ) -> list[Any]:
        """The parameters of INSERT_CHECKPOINT and UPSERT_CHECKPOINT for ``checkpoint``."""
        run_id, step, source = meta.get("run_id"), meta.get("step"), meta.get("source")
        return [
            thread_id,
            ns,
            checkpoint["id"],
            parent_id,
            run_id if isinstance(run_id, str) else None,
            step if type(step) is int else None,
            source if isinstance(source, str) else None,
            checkpoint.get("ts") or None,
            body,
            dict(meta),
            stored.inline_json(),
            stored.refs,
        ]

    def _parent(self, thread_id: str, ns: str, parent_id: str) -> _Stored | None:
        """What the parent checkpoint stores per channel: from memory, else from its row."""
        with self._lock:
            found = self._heads.get((thread_id, ns, parent_id))
        if found is not None:
            return found
        row = self.db.execute(
            "SELECT checkpoint, channel_values, channel_refs FROM checkpoints"
            " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
            [thread_id, ns, parent_id],
        ).fetchone()
        return _Stored.of(row) if row is not None else None

    def _encode_channel(
        self, thread_id: str, ns: str, ch: str, value: Any, encoded: ValueRow | None = None
    ) -> tuple[str, list[ValueRow], ListState | None]:
        """Store one channel value: whole, or as the items appended to the list stored before it.

        ``encoded``: the content row a pending write made of this very object, if any.
        """
        if type(value) is str and is_json_primitive(value):  # a long string: content-addressed, still JSON
            row = encoded if encoded is not None else json_row(value)
            return row.hash, [row], None
        if encoded is not None and encoded.blob is not None:
            type_, data, whole = encoded.type, encoded.blob, encoded
        else:
            type_, data = self.serde.dumps_typed(value)
            whole = ValueRow(content_hash(type_, data), type_, blob=data)
        parts = split_array(data) if type_ == "msgpack" else None
        if parts is None:
            return whole.hash, [whole], None
        with self._lock:
            prev = self._lists.get((thread_id, ns, ch))
        if (
            prev is not None
            and prev.wrap == parts.wrap
            and parts.count > prev.count
            and parts.body.startswith(prev.body)
            and not self._time_for_whole_copy(prev, parts.count)
        ):
            appended = array_header(parts.count - prev.count) + parts.body[len(prev.body) :]
            node_hash = content_hash(DELTA, f"{prev.ref}:{parts.count}:{parts.wrap}:".encode() + appended)
            node = ValueRow(
                node_hash, DELTA, base=prev.ref, root=prev.root, wrap=parts.wrap, items=parts.count
            )
            extra = []
            if len(appended) >= INLINE_MAX:
                content = ValueRow(content_hash("msgpack", appended), "msgpack", blob=appended)
                node, extra = node._replace(ref=content.hash), [content]
            else:
                node = node._replace(blob=appended)
            state = ListState(
                node_hash, parts.wrap, parts.count, parts.body, prev.root, prev.root_count, prev.chain + 1
            )
            return node_hash, [*extra, node], state
        state = ListState(whole.hash, parts.wrap, parts.count, parts.body, whole.hash, parts.count, 0)
        return whole.hash, [whole], state

    def _time_for_whole_copy(self, prev: ListState, count: int) -> bool:
        return prev.chain + 1 >= self.list_snapshot_after and count - prev.root_count >= prev.root_count

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against a checkpoint: one row per call (and per special write).

        Writes to special channels (errors, interrupts, ...) replace an earlier
        one of the task and commit at once; others are kept as first stored,
        per ``(task_id, idx)`` (a retry is a no-op) and, with ``defer_writes``,
        commit with the thread's next checkpoint (or the next read, ``flush()``).
        """
        if not writes:
            return
        self._ready()
        thread_id, ns, checkpoint_id = _address(config)
        if not checkpoint_id:
            raise errors.ProgrammingError("put_writes needs config['configurable']['checkpoint_id']")
        entries: list[WriteEntry] = []
        contents: dict[str, ValueRow] = {}
        encoded: dict[int, tuple[Any, ValueRow]] = {}
        for idx, (channel, value) in enumerate(writes):
            entry, extra = encode_write(self.serde, WRITES_IDX_MAP.get(channel, idx), channel, value)
            entries.append(entry)
            if extra is not None:
                contents[extra.hash] = extra
                encoded[id(value)] = (value, extra)
        special = all(ch in WRITES_IDX_MAP for ch, _ in writes)
        # A special write (negative idx) has a row of its own, so a later one can replace it.
        # In a call of special writes only, the last of an idx wins (they replace); else the first.
        singles: dict[int, WriteEntry] = {}
        for e in entries:
            if e.idx < 0 and (special or e.idx not in singles):
                singles[e.idx] = e
        groups = [(e,) for e in singles.values()]
        regular = tuple(e for e in entries if e.idx >= 0)
        if regular:
            groups.insert(0, regular)
        rows = [_WriteRow(ns, checkpoint_id, task_id, task_path, group) for group in groups]
        values = [contents[e.ref] for row in rows for e in row.entries if e.ref is not None]
        batch = _Writes(rows, values, special, encoded)
        if self.defer_writes and not singles:
            with self._lock:
                # LangGraph runs put_writes and the next put in background
                # threads, in either order: a write that arrives after its
                # checkpoint's successor was put must not wait for another put.
                newest = self._newest.get((thread_id, ns))
                if newest is None or newest == checkpoint_id:
                    self._pending.setdefault(thread_id, []).append(batch)
                    return
        with self._lock:
            pending = self._pending.pop(thread_id, [])
        self._commit_writes(thread_id, [*pending, batch])

    def _commit_writes(self, thread_id: str, batches: list[_Writes]) -> None:
        """Commit write batches of one thread in one transaction."""
        values = self._unknown(thread_id, [r for b in batches for r in b.values])
        try:
            self._write_batch(thread_id, values, batches)
        except BaseException:
            self._requeue(thread_id, [b for b in batches if not b.replace])
            raise
        with self._lock:
            for r in values:
                self._known.put((thread_id, r.hash), None)

    def _write_batch(
        self,
        thread_id: str,
        values: list[ValueRow],
        batches: list[_Writes],
        checkpoint: list[Any] | None = None,
        again: bool = False,
    ) -> None:
        """Store value rows, write rows and a checkpoint row in one commit.

        A checkpoint row is inserted unless its key is taken (``again``: it is
        upserted). A taken key means the id was stored by another saver or
        before a restart, and it is then replaced, in a second commit.

        Ordinary write rows are inserted unless their key is taken. A taken key
        is an earlier ``put_writes`` of the same task: its writes are kept, and
        those of ours it lacks (a longer retry) get a row of their own, in a
        second commit.

        (Checking first would cost every step a round trip on PostgreSQL, where
        a batch of inserts that skip taken keys is one round trip. A lost second
        commit loses what a crash just before the first would have.)
        """
        statements: list[tuple[str, list[Any]]] = []
        if values:
            statements.append((INSERT_VALUES, [(thread_id, *for_storage(r)) for r in values]))
        inserts = [row for b in batches if not b.replace for row in b.rows]
        if inserts:
            statements.append((INSERT_WRITES, [row.params(thread_id) for row in inserts]))
        replaces = [row for b in batches if b.replace for row in b.rows]
        if replaces:
            statements.append((UPSERT_WRITES, [row.params(thread_id) for row in replaces]))
        if checkpoint is not None:
            statements.append((UPSERT_CHECKPOINT if again else INSERT_CHECKPOINT, [checkpoint]))
        if not statements:
            return
        counts = [c.rowcount for c in self.db.execute_batch(statements)]
        gaps = bool(inserts) and counts[1 if values else 0] < len(inserts)
        taken = checkpoint is not None and not again and counts[-1] == 0
        if gaps or taken:
            with self.db.transaction(savepoints=False):
                if gaps:
                    self._fill_gaps(thread_id, inserts)
                if taken:
                    self.db.execute(UPSERT_CHECKPOINT, checkpoint)

    def _fill_gaps(self, thread_id: str, rows: list[_WriteRow]) -> None:
        """Store the ordinary writes of ``rows`` whose ``(task_id, idx)`` no stored row holds."""
        tasks = {(r.ns, r.checkpoint_id, r.task_id) for r in rows}
        held: dict[tuple[str, str, str], set[int]] = {t: set() for t in tasks}
        ids = sorted({r.checkpoint_id for r in rows})
        for part in chunks(ids):
            for found in self.db.execute(
                "SELECT checkpoint_ns, checkpoint_id, task_id, idx, writes FROM checkpoint_writes"
                f" WHERE thread_id = %s AND idx >= 0 AND checkpoint_id IN ({placeholders(len(part))})",
                [thread_id, *part],
            ):
                key = (found["checkpoint_ns"], found["checkpoint_id"], found["task_id"])
                if key in held:
                    held[key].update(write_indexes(found["idx"], found["writes"]))
        missing: dict[tuple[str, str, str, str], list[WriteEntry]] = {}
        for r in rows:
            taken = held[(r.ns, r.checkpoint_id, r.task_id)]
            for e in r.entries:
                if e.idx >= 0 and e.idx not in taken:
                    taken.add(e.idx)
                    missing.setdefault((r.ns, r.checkpoint_id, r.task_id, r.task_path), []).append(e)
        if missing:
            self.db.executemany(
                INSERT_WRITES,
                [
                    _WriteRow(ns, cid, task, path, tuple(sorted(es, key=lambda e: e.idx))).params(thread_id)
                    for (ns, cid, task, path), es in missing.items()
                ],
            )

    def _unknown(self, thread_id: str, rows: list[ValueRow]) -> list[ValueRow]:
        """The value rows not known to be stored already, each hash once."""
        out: dict[str, ValueRow] = {}
        with self._lock:
            for r in rows:
                if (thread_id, r.hash) not in self._known:
                    out.setdefault(r.hash, r)
        return list(out.values())

    def _requeue(self, thread_id: str, batches: list[_Writes]) -> None:
        if batches:
            with self._lock:
                self._pending[thread_id] = batches + self._pending.get(thread_id, [])

    def flush(self) -> None:
        """Commit every deferred pending write now (one transaction per thread)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for thread_id, batches in pending.items():
            self._commit_writes(thread_id, batches)

    # -- deletion and copies -------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, value and write of a thread (a no-op for an unknown one).

        As every loomdb delete, the rows stay readable in the store's history
        (``as_of``, earlier commits); they leave the branch's current state.
        """
        self._ready()
        self.flush()
        maintenance.delete_threads(self.db, [str(thread_id)])
        self._forget({str(thread_id)})

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that runs ``run_ids`` created.

        Values no remaining checkpoint uses are deleted too. A checkpoint
        whose parent is deleted becomes a root. As LangGraph warns, deleting
        a run a ``DeltaChannel``'s later state is rebuilt from loses that state.
        """
        if isinstance(run_ids, str):
            raise TypeError("run_ids must be a sequence of run IDs, not a str")
        self._ready()
        self.flush()
        threads = maintenance.delete_runs(self.db, [str(r) for r in run_ids])
        self._forget(threads)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, value and write of one thread into a new thread.

        Raises ``loomdb.IntegrityError`` when the target thread already has
        checkpoints (delete it first); copying an unknown thread does nothing.
        """
        self._ready()
        self.flush()
        maintenance.copy_thread(self.db, str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``"keep_latest"`` keeps each namespace's latest checkpoint, ``"delete"`` all.

        ``keep_latest`` also keeps the ancestors (and their writes) a
        ``DeltaChannel`` of the kept checkpoint is rebuilt from, back to its
        nearest snapshot, so pruning never changes a thread's state. A kept
        checkpoint whose parent is deleted becomes a root. Raises
        ``TypeError`` for a single str, ``ValueError`` for an unknown strategy.
        """
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        self._ready()
        ids = [str(t) for t in thread_ids]
        if not ids:
            return
        self.flush()
        if strategy == "delete":
            maintenance.delete_threads(self.db, ids)
        else:
            for thread_id in ids:
                maintenance.keep_latest(self.db, thread_id)
        self._forget(set(ids))

    def _forget(self, thread_ids: set[str]) -> None:
        # Rows of these threads may be gone: nothing remembered about them may be trusted.
        with self._lock:
            self._lists.forget_threads(thread_ids)
            self._heads.drop(lambda key: key[0] in thread_ids)
            self._known.drop(lambda key: key[0] in thread_ids)

    # -- DeltaChannel --------------------------------------------------------------------------

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Per channel, the writes on the target's ancestor path since the nearest stored value.

        Walks parent links from the target's parent; each channel stops at
        the first ancestor holding a value for it (its ``seed``) and collects
        the writes of every ancestor visited (the seed ancestor's included),
        oldest first and by ``writes_sort_key`` within a checkpoint.
        """
        if not channels:
            return {}
        self._ready()
        self.flush()
        thread_id, ns, checkpoint_id = _address(config)
        walk = maintenance.delta_walk(self.db, thread_id, ns, checkpoint_id, list(channels))
        all_ids = sorted({cid for ids in walk.chain.values() for cid in ids})
        write_rows = fetch_writes(self.db, thread_id, ns, all_ids)
        seed_refs = {h for h in walk.seed_ref.values() if h is not None}
        seeds = load_refs(self.db, thread_id, seed_refs | write_refs(write_rows))
        writes = decode_writes(self.serde, thread_id, write_rows, seeds)
        result: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            collected = [w for cid in reversed(walk.chain[ch]) for w in writes.get(cid, []) if w[1] == ch]
            entry: DeltaChannelHistory = {"writes": collected}
            if ch in walk.seed_inline:
                entry["seed"] = walk.seed_inline[ch]
            elif (h := walk.seed_ref.get(ch)) is not None and h in seeds:
                entry["seed"] = seeds[h].decode(self.serde)
            result[ch] = entry
        return result

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

    # -- async: the sync methods in a worker thread (loomdb is synchronous) ----------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        tuples = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for tup in tuples:
            yield tup

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)
        )


def _address(config: RunnableConfig) -> tuple[str, str, str | None]:
    """``(thread_id, checkpoint_ns, checkpoint_id)`` of a config; ProgrammingError without a thread."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise errors.ProgrammingError("config['configurable'] needs a 'thread_id'")
    return str(thread_id), configurable.get("checkpoint_ns") or "", get_checkpoint_id(config)


def _ts_in_column(ts: Any) -> bool:
    """Whether the ``ts`` column gives this checkpoint ``ts`` back as the same text (UTC ISO 8601)."""
    if type(ts) is not str:
        return False
    try:
        parsed = dt.datetime.fromisoformat(ts)
    except ValueError:
        return False
    return parsed.utcoffset() == dt.timedelta(0) and parsed.astimezone(dt.UTC).isoformat() == ts


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


class _WriteRow(NamedTuple):
    """A ``checkpoint_writes`` row: writes of one task from one ``put_writes`` call."""

    ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    entries: tuple[WriteEntry, ...]

    def params(self, thread_id: str) -> tuple:
        idx, writes, blob = pack_writes(self.entries)
        return (thread_id, self.ns, self.checkpoint_id, self.task_id, idx, self.task_path, writes, blob)


class _Writes(NamedTuple):
    """One ``put_writes`` call: its rows, the value rows they need, whether they replace."""

    rows: list[_WriteRow]
    values: list[ValueRow]
    replace: bool
    # id(value) -> (value, its content row): a checkpoint put next holds the same
    # objects as channel values (LangGraph's LastValue keeps what was written),
    # and reuses the bytes and hash instead of encoding them again.
    encoded: dict[int, tuple[Any, ValueRow]]


class _Stored:
    """Where a checkpoint keeps each channel's value: inline JSON, or a hash, per channel version."""

    __slots__ = ("versions", "inline", "refs")

    def __init__(self, versions: dict[str, str], inline: dict[str, Any], refs: dict[str, str]):
        self.versions, self.inline, self.refs = versions, inline, refs

    @classmethod
    def of(cls, row: Any) -> _Stored:
        versions = {ch: str(v) for ch, v in row["checkpoint"]["channel_versions"].items()}
        return cls(versions, dict(row["channel_values"] or {}), dict(row["channel_refs"] or {}))

    def holds(self, ch: str, version: Any) -> bool:
        return self.versions.get(ch) == str(version) and (ch in self.inline or ch in self.refs)

    def carry(self, other: _Stored, ch: str, version: Any) -> None:
        self.versions[ch] = str(version)
        if ch in other.inline:
            self.inline[ch] = other.inline[ch]
        else:
            self.refs[ch] = other.refs[ch]

    def inline_json(self) -> dict[str, Any]:
        return self.inline


class _Lru(Generic[_K, _V]):
    """A small bounded mapping, least recently used out first."""

    def __init__(self, size: int):
        self._size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: _K) -> _V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, doomed: Callable[[_K], bool]) -> None:
        for key in [k for k in self._items if doomed(k)]:
            del self._items[key]
