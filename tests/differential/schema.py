"""The differential suite's agent schema and its deterministic data.

Four tables an agent memory really has: ``runs`` (one per agent run),
``iterations`` (the brief's plan-act-observe steps), ``tool_calls`` and
``memories``. The same DDL text runs on loomdb (both engines) and on raw
PostgreSQL; the same rows go in with bound parameters on every side.

The data is generated from fixed lists (no randomness), with NULLs in every
nullable column, ties in the columns queries sort and group by, unicode,
negative numbers, nested JSON, and vectors whose components are exact in
float32 as well as some that are not (0.1).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

DDL = [
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        model TEXT,
        status TEXT,
        started_at TIMESTAMPTZ,
        budget NUMERIC(10,2),
        temperature REAL,
        score DOUBLE PRECISION,
        success BOOLEAN,
        config JSONB
    )""",
    """CREATE TABLE iterations (
        run_id TEXT,
        step INT,
        action TEXT,
        observation TEXT,
        embedding VECTOR(3),
        state_snapshot JSONB,
        tokens_used INT,
        created_at TIMESTAMPTZ,
        PRIMARY KEY (run_id, step)
    )""",
    """CREATE TABLE tool_calls (
        id INT PRIMARY KEY,
        run_id TEXT NOT NULL,
        step INT,
        tool TEXT,
        args JSONB,
        result TEXT,
        latency_ms DOUBLE PRECISION,
        ok BOOLEAN,
        cost NUMERIC(12,4),
        called_at TIMESTAMP
    )""",
    """CREATE TABLE memories (
        id BIGINT PRIMARY KEY,
        run_id TEXT,
        kind TEXT,
        content TEXT,
        tags JSONB,
        importance REAL,
        embedding VECTOR(3),
        pinned BOOLEAN,
        created_at TIMESTAMPTZ,
        expires_on DATE
    )""",
]

TABLES = ("runs", "iterations", "tool_calls", "memories")

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)

AGENTS = ["planner", "coder", "researcher", "planner"]
MODELS = ["gpt-4o", "claude-3", None, "llama-3-70b"]
STATUSES = ["done", "failed", "running", "done", None]
ACTIONS = ["search", "read_file", "write_file", "run_tests", "think", "search", None]
TOOLS = ["web_search", "python", "shell", "web_search", "browser", None]
WORDS = [
    "found 3 results",
    "Error: timeout",
    "ok",
    "naïve café résumé",
    "日本語のテキスト",
    "emoji 🚀 launch",
    "",
    "100% done_",
    "path C:\\tmp\\x",
    "It's quoted",
    "  padded  ",
    "UPPER lower MiXeD",
]
VECS = [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.5, 0.5, 0.0],
    [-1.0, 0.25, 2.0],
    [0.1, 0.2, 0.3],
    [3.0, -4.0, 0.0],
    [0.0, 0.0, 0.0],
    [1.5, -0.5, 0.125],
]


def _runs() -> list[tuple[Any, ...]]:
    rows = []
    for i in range(12):
        config = (
            None
            if i % 5 == 4
            else {
                "max_steps": 10 + i,
                "tools": ["web_search", "python"][: i % 3],
                "retry": {"count": i % 3, "backoff": 1.5 * (i % 2)},
                "label": WORDS[i % len(WORDS)],
                "flag": i % 2 == 0,
                "note": None,
            }
        )
        rows.append(
            (
                f"run-{i:02d}",
                AGENTS[i % len(AGENTS)],
                MODELS[i % len(MODELS)],
                STATUSES[i % len(STATUSES)],
                None if i == 7 else T0 + dt.timedelta(days=i // 3, hours=i, minutes=7 * i),
                None if i % 6 == 5 else Decimal(f"{(i * 37) % 200 - 50}.{(i * 13) % 100:02d}"),
                None if i == 3 else [0.0, 0.5, 0.7, 1.0, 0.25, 1.5][i % 6],
                None if i % 4 == 3 else [0.875, -1.5, 2.0 / 3.0, 0.1, 1e10, 0.0][i % 6],
                None if i == 9 else i % 3 != 1,
                config,
            )
        )
    return rows


def _iterations() -> list[tuple[Any, ...]]:
    rows = []
    for r in range(8):
        for step in range(1 + r % 4 + (3 if r < 2 else 0)):
            k = r * 7 + step
            state = (
                None
                if k % 9 == 8
                else {
                    "plan": ["step-a", "step-b"][: k % 3],
                    "tokens_used": 100 * k,
                    "depth": {"level": k % 4, "path": [k, k + 1]},
                    "goal": WORDS[k % len(WORDS)],
                    "done": k % 4 == 0,
                    "ratio": [0.5, 1.25, -2.0, 3][k % 4],
                }
            )
            rows.append(
                (
                    f"run-{r:02d}",
                    step,
                    ACTIONS[k % len(ACTIONS)],
                    None if k % 6 == 5 else WORDS[k % len(WORDS)],
                    None if k % 10 == 9 else VECS[k % len(VECS)],
                    state,
                    None if k % 8 == 7 else [120, 455, 120, 0, 2048, -3, 999999][k % 7],
                    T0 + dt.timedelta(days=r // 2, minutes=13 * step, seconds=k, microseconds=1000 * (k % 3)),
                )
            )
    return rows


def _tool_calls() -> list[tuple[Any, ...]]:
    rows = []
    for i in range(40):
        args = (
            None if i % 11 == 10 else {"q": WORDS[i % len(WORDS)], "n": i % 5, "opts": {"deep": i % 2 == 1}}
        )
        rows.append(
            (
                i + 1,
                f"run-{i % 6:02d}",
                None if i % 13 == 12 else i % 5,
                TOOLS[i % len(TOOLS)],
                args,
                None if i % 7 == 6 else WORDS[(i * 5) % len(WORDS)],
                None if i % 9 == 8 else [12.5, 250.0, 0.125, 1033.75, 12.5, 77.1][i % 6],
                None if i % 10 == 9 else i % 4 != 3,
                None
                if i % 8 == 7
                else Decimal(f"{(i * 29) % 50}.{(i * 7) % 10000:04d}") * (-1 if i % 6 == 5 else 1),
                dt.datetime(2024, 3, 1 + i // 10, (i * 5) % 24, (i * 11) % 60, i % 60, 250000 * (i % 4)),
            )
        )
    return rows


def _memories() -> list[tuple[Any, ...]]:
    rows = []
    kinds = ["fact", "preference", "episode", "fact", None]
    tag_sets = [["user", "pref"], ["code"], [], ["user", "ünïcode"], None, ["code", "bug", "urgent"]]
    for i in range(30):
        rows.append(
            (
                1000 + i * 3,
                None if i % 7 == 6 else f"run-{i % 5:02d}",
                kinds[i % len(kinds)],
                WORDS[(i * 7) % len(WORDS)],
                tag_sets[i % len(tag_sets)],
                None if i % 8 == 7 else [0.5, 0.9, 0.1, 0.5, 1.0, 0.0, -0.25][i % 7],
                None if i % 6 == 5 else VECS[(i * 3) % len(VECS)],
                None if i % 9 == 8 else i % 3 == 0,
                T0 + dt.timedelta(hours=5 * i, seconds=i),
                None if i % 4 == 3 else dt.date(2024, 1 + i % 12, 1 + (i * 3) % 28),
            )
        )
    return rows


ROWS = {"runs": _runs(), "iterations": _iterations(), "tool_calls": _tool_calls(), "memories": _memories()}
JSON_COLUMNS = {"runs": {9}, "iterations": {5}, "tool_calls": {4}, "memories": {4}}
VECTOR_COLUMNS = {"iterations": {4}, "memories": {6}}


def insert_sql(table: str) -> str:
    """INSERT with one ``%s`` per column of the table's rows."""
    return f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(ROWS[table][0]))})"


def raw_params(table: str, row: tuple[Any, ...]) -> list[Any]:
    """A row as plain psycopg binds it: Jsonb for JSON, float32 arrays for vectors."""
    out = list(row)
    for i in JSON_COLUMNS.get(table, ()):
        out[i] = None if out[i] is None else Jsonb(out[i])
    for i in VECTOR_COLUMNS.get(table, ()):
        out[i] = None if out[i] is None else np.array(out[i], dtype=np.float32)
    return out


def load_loomdb(db: Any) -> None:
    """Create the schema and insert every row into a loomdb store, one commit per table."""
    for ddl in DDL:
        db.execute(ddl)
    for table in TABLES:
        db.executemany(insert_sql(table), [list(row) for row in ROWS[table]])


def load_raw(conn: Any) -> None:
    """Create the schema and insert every row on a plain psycopg connection."""
    for ddl in DDL:
        conn.execute(ddl)
    with conn.cursor() as cur:
        for table in TABLES:
            cur.executemany(insert_sql(table), [raw_params(table, row) for row in ROWS[table]])
