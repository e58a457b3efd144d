"""LoomSaver's writes: ``put`` (a checkpoint), ``put_writes`` (a task's pending
writes) and ``flush`` (the deferred ones), each stored in one commit.

A checkpoint stores only the channels that changed since its parent (a
growing list as the items it appended), and values are content-addressed, so
a value stored once per thread is not stored again. With ``defer_writes``, a
task's ordinary writes wait in memory and commit with the thread's next
checkpoint.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)

from ... import errors
from .codec import (
    DELTA,
    INLINE_MAX,
    ListState,
    ValueRow,
    WriteEntry,
    array_header,
    content_hash,
    encode_write,
    for_storage,
    is_json_primitive,
    json_row,
    split_array,
    write_indexes,
)
from .config import address, checkpoint_config
from .memory import SaverState, Stored, WriteRow, Writes
from .read import chunks
from .schema import (
    INSERT_CHECKPOINT,
    INSERT_VALUES,
    INSERT_WRITES,
    UPSERT_CHECKPOINT,
    UPSERT_WRITES,
    placeholders,
)

# Releases the GIL for a moment (Unix); elsewhere a no-op.
_yield_gil: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


class SaverWrites(SaverState):
    """LoomSaver's write methods (a base class of LoomSaver)."""

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
        thread_id, ns, parent_id = address(config)
        versions = checkpoint["channel_versions"]
        values = checkpoint["channel_values"]
        parent = self._parent(thread_id, ns, parent_id) if parent_id else None
        stored = Stored({}, {}, {})
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
        return checkpoint_config(thread_id, ns, checkpoint["id"])

    def _checkpoint_params(
        self,
        thread_id: str,
        ns: str,
        checkpoint: Checkpoint,
        parent_id: str | None,
        meta: Mapping[str, Any],
        body: dict[str, Any],
        stored: Stored,
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
            _ts_value(checkpoint.get("ts") or None),
            body,
            dict(meta),
            stored.inline_json(),
            stored.refs,
        ]

    def _parent(self, thread_id: str, ns: str, parent_id: str) -> Stored | None:
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
        return Stored.of(row) if row is not None else None

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
        """Whether a list of ``count`` items extending ``prev`` is stored whole rather than as a delta."""
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
        thread_id, ns, checkpoint_id = address(config)
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
        rows = [WriteRow(ns, checkpoint_id, task_id, task_path, group) for group in groups]
        values = [contents[e.ref] for row in rows for e in row.entries if e.ref is not None]
        batch = Writes(rows, values, special, encoded)
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

    def _commit_writes(self, thread_id: str, batches: list[Writes]) -> None:
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
        batches: list[Writes],
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

    def _fill_gaps(self, thread_id: str, rows: list[WriteRow]) -> None:
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
                    WriteRow(ns, cid, task, path, tuple(sorted(es, key=lambda e: e.idx))).params(thread_id)
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

    def _requeue(self, thread_id: str, batches: list[Writes]) -> None:
        """Put write batches whose commit failed back, ahead of the thread's other deferred ones."""
        if batches:
            with self._lock:
                self._pending[thread_id] = batches + self._pending.get(thread_id, [])

    def flush(self) -> None:
        """Commit every deferred pending write now (one transaction per thread)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for thread_id, batches in pending.items():
            self._commit_writes(thread_id, batches)


def _ts_value(ts: Any) -> Any:
    """A checkpoint ``ts`` for the TIMESTAMP column: ISO text as an aware datetime, so
    that its offset converts it to UTC (text bound to a TIMESTAMP would drop the offset)."""
    if type(ts) is str:
        try:
            return dt.datetime.fromisoformat(ts)
        except ValueError:
            return ts
    return ts


def _ts_in_column(ts: Any) -> bool:
    """Whether the ``ts`` column gives this checkpoint ``ts`` back as the same text (UTC ISO 8601)."""
    if type(ts) is not str:
        return False
    try:
        parsed = dt.datetime.fromisoformat(ts)
    except ValueError:
        return False
    return parsed.utcoffset() == dt.timedelta(0) and parsed.astimezone(dt.UTC).isoformat() == ts
