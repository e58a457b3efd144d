"""LangGraph's own checkpointers, SqliteSaver and PostgresSaver, driven directly.

One agent run is one thread; one step is one ``saver.put`` of a checkpoint
whose ``channel_values`` hold the step's row (run_id, step, action,
observation, embedding as the float64 NumPy array the workload hands over,
state, tokens_used), every channel at a new version, its parent the thread's
previous checkpoint: the least a checkpointer writes per step (a graph run
adds ``put_writes``; bench_langgraph.py measures that). Checkpoint ids are
LangGraph's own ``uuid6(clock_seq=step)``, so the newest is the latest.

- SqliteSaver: ``SqliteSaver.from_conn_string(path)`` and ``setup()`` (which sets
  WAL); ``synchronous`` left at SQLite's default, read back from the
  connection and stated. PostgresSaver: ``from_conn_string(url)`` (autocommit)
  and ``setup()``, in its own schema, ``synchronous_commit=on``.
- Resume: ``get_tuple`` of the thread (its latest checkpoint, values decoded).
- Branch: LangGraph forks a thread by writing a new checkpoint whose parent is
  an older one (what ``graph.update_state(config_with_checkpoint_id, ...)``
  does); no copy. Measured as ``get_tuple`` of the fork point plus that ``put``.
  It forks one thread, not the whole store; the savers do not implement
  ``copy_thread``. No vector search, no merge, hence no conflicts.
- Bulk store: the same ``put`` per row, with the connection's commit
  durability lowered while loading (``synchronous=OFF`` / ``synchronous_commit=off``)
  and restored before anything is timed.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from bench_langgraph import sqlite_file_bytes

from .base import CONFLICT, MERGE, TOP10, Context, Peer

CHANNELS = ("run_id", "step", "action", "observation", "embedding", "state", "tokens_used")
NO_MERGE = "LangGraph has no operation that combines two lines of checkpoints"


class SaverPeer(Peer):
    """What both savers share: checkpoints built and chained per thread."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.saver: Any = None
        self.stack: contextlib.ExitStack | None = None
        self.absent = {
            TOP10: "checkpoints are serialized blobs: no vector search",
            MERGE: NO_MERGE,
            CONFLICT: NO_MERGE,
        }
        self.how = {
            "persist": "saver.put of one checkpoint holding the row (no put_writes, no graph)",
            "resume": "saver.get_tuple(thread): the latest checkpoint, values decoded",
            "branch": "LangGraph's fork: get_tuple(fork point) + put of a child checkpoint, no copy;"
            " it forks one thread, not the store (copy_thread is not implemented by this saver)",
        }

    # -- checkpoints ---------------------------------------------------------------------

    def _reset(self) -> None:
        self.heads: dict[str, dict] = {}  # thread -> config of its latest checkpoint
        self.versions: dict[str, dict] = {}  # thread -> channel versions

    def _put(self, row: list, parent: dict | None = None) -> dict:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.base.id import uuid6

        run_id, step = row[0], row[1]
        values = dict(zip(CHANNELS, row, strict=True))
        old = self.versions.get(run_id, {})
        versions = {k: self.saver.get_next_version(old.get(k), None) for k in CHANNELS}
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=step))
        checkpoint["channel_values"] = values
        checkpoint["channel_versions"] = versions
        checkpoint["updated_channels"] = list(CHANNELS)
        config = (
            parent or self.heads.get(run_id) or {"configurable": {"thread_id": run_id, "checkpoint_ns": ""}}
        )
        head = self.saver.put(config, checkpoint, {"source": "loop", "step": step, "parents": {}}, versions)
        self.heads[run_id] = head
        self.versions[run_id] = versions
        return head

    def persist(self, row: list) -> None:
        self._put(row)

    def bulk_load(self, rows: list[list]) -> None:
        for row in rows:
            self._put(row)

    def resume(self, run_id: str) -> tuple[int, dict]:
        tup = self.saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
        values = tup.checkpoint["channel_values"]
        return values["step"], values["state"]

    def branch(self, name: str) -> None:
        parent = self.fork_point
        tup = self.saver.get_tuple(parent)
        values = tup.checkpoint["channel_values"]
        self._put([values[k] for k in CHANNELS], parent=parent)

    def start_branches(self, run_id: str) -> None:
        """Forks start from the current head of ``run_id``'s thread."""
        self.fork_point = self.heads[run_id]

    def close(self) -> None:
        if self.stack is not None:
            self.stack.close()
        self.stack = self.saver = None


class SqliteSaverPeer(SaverPeer):
    name = "LangGraph SqliteSaver"
    key = "sqlite_saver"
    family = "sqlite"

    def _open(self, kind: str) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.close()
        self._reset()
        self.path = os.path.join(self.ctx.tmp, f"sqlite-saver-{kind}.db")
        self.stack = contextlib.ExitStack()
        self.saver = self.stack.enter_context(SqliteSaver.from_conn_string(self.path))
        self.saver.setup()
        conn = self.saver.conn
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        self.sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        fsync = "fsync at every commit" if self.sync >= 2 else "no fsync at commit"
        self.durability = (
            f"its defaults: journal_mode={mode} (set by setup()), synchronous={names.get(self.sync, self.sync)}"
            f" (SQLite's default, untouched): {fsync}"
        )
        self.matches_full = mode == "wal" and self.sync >= 2
        self.details["pragmas"] = {"journal_mode": mode, "synchronous": self.sync}

    def open_persist(self) -> None:
        self._open("persist")

    def persist_bytes(self) -> int:
        self.close()
        return sqlite_file_bytes(self.path)["total"]

    def open_bulk(self) -> None:
        self._open("bulk")

    def begin_load(self) -> None:
        self.saver.conn.execute("PRAGMA synchronous=OFF")  # while loading only

    def end_load(self) -> None:
        self.saver.conn.execute(f"PRAGMA synchronous={self.sync}")


class PostgresSaverPeer(SaverPeer):
    name = "LangGraph PostgresSaver"
    key = "postgres_saver"
    family = "postgres"
    durability = "its defaults: autocommit, synchronous_commit=on"

    def _open(self, kind: str) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self.close()
        self._reset()
        pg = self.ctx.pg
        self.schema = pg.schema(f"lg_{kind}")
        pg.admin.execute(f'CREATE SCHEMA "{self.schema}"')
        self.stack = contextlib.ExitStack()
        self.saver = self.stack.enter_context(PostgresSaver.from_conn_string(pg.libpq_url(self.schema)))
        self.saver.setup()
        sc = self.saver.conn.execute("SHOW synchronous_commit").fetchone()
        self.details["synchronous_commit"] = list(sc.values())[0]
        self.matches_full = self.details["synchronous_commit"] == "on"

    def open_persist(self) -> None:
        self._open("persist")

    def persist_bytes(self) -> int:
        self.close()
        return self.ctx.pg.schema_bytes(self.schema)["total"]

    def open_bulk(self) -> None:
        self._open("bulk")

    def begin_load(self) -> None:
        self.saver.conn.execute("SET synchronous_commit = off")  # while loading only

    def end_load(self) -> None:
        self.saver.conn.execute("SET synchronous_commit = on")
