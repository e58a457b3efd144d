"""The tables LoomSaver keeps its checkpoints in, and the statements it runs on them.

Documented for users in docs/langgraph.md ("Schema"). Every table is an
ordinary loomdb table: versioned, branchable, readable with SQL.
"""

from __future__ import annotations

DDL = (
    """CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id TEXT,
    step INT,
    source TEXT,
    ts TIMESTAMP,
    checkpoint JSONB NOT NULL,
    metadata JSONB NOT NULL,
    channel_values JSONB,
    channel_refs JSONB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
)""",
    # One row per task per put_writes call: the task's writes, in order, in one JSON array
    # (a special write, whose idx is negative, has a row of its own). ``idx`` is the
    # first write's: a re-put of a task's writes meets the same key.
    """CREATE TABLE IF NOT EXISTS checkpoint_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    writes JSONB NOT NULL,
    blob BYTEA,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
)""",
    """CREATE TABLE IF NOT EXISTS checkpoint_values (
    thread_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    type TEXT NOT NULL,
    value JSONB,
    blob BYTEA,
    ref TEXT,
    base TEXT,
    root TEXT,
    wrap INT,
    items INT,
    PRIMARY KEY (thread_id, hash)
)""",
)

TABLES = ("checkpoints", "checkpoint_writes", "checkpoint_values")

VALUE_COLUMNS = "hash, type, value, blob, ref, base, root, wrap, items"

INSERT_VALUES = (
    f"INSERT INTO checkpoint_values (thread_id, {VALUE_COLUMNS})"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, hash) DO NOTHING"
)

_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, step,"
    " source, ts, checkpoint, metadata, channel_values, channel_refs)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)"
)
# A checkpoint id LangGraph has just made is new: DO NOTHING lets a step's batch be
# one round trip on PostgreSQL (Database.execute_batch); the saver upserts when not.
INSERT_CHECKPOINT = _INSERT_CHECKPOINT + " DO NOTHING"
UPSERT_CHECKPOINT = (
    _INSERT_CHECKPOINT + " DO UPDATE SET"
    " parent_checkpoint_id = EXCLUDED.parent_checkpoint_id, run_id = EXCLUDED.run_id,"
    " step = EXCLUDED.step, source = EXCLUDED.source, ts = EXCLUDED.ts,"
    " checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata,"
    " channel_values = EXCLUDED.channel_values, channel_refs = EXCLUDED.channel_refs"
)

WRITE_COLUMNS = "checkpoint_ns, checkpoint_id, task_id, idx, task_path, writes, blob"

_INSERT_WRITES = (
    f"INSERT INTO checkpoint_writes (thread_id, {WRITE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
)
INSERT_WRITES = _INSERT_WRITES + " DO NOTHING"
UPSERT_WRITES = (
    _INSERT_WRITES
    + " DO UPDATE SET task_path = EXCLUDED.task_path, writes = EXCLUDED.writes, blob = EXCLUDED.blob"
)

CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, ts, checkpoint, metadata,"
    " channel_values, channel_refs"
)


def placeholders(n: int) -> str:
    """``%s, %s, ...`` for an IN list of ``n`` parameters."""
    return ", ".join(["%s"] * n)
