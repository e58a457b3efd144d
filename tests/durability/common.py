"""Shared pieces of the durability tests: the agent-loop table, rows, worker plumbing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import apsw

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)

# The table from the product brief (VECTOR(8) instead of 1536 to keep rows small).
ITERATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS iterations (run_id TEXT, step INT, action TEXT,"
    " observation TEXT, embedding VECTOR(8), state_snapshot JSONB, tokens_used INT,"
    " created_at TIMESTAMP DEFAULT NOW())"
)
INSERT_STEP = (
    "INSERT INTO iterations (run_id, step, action, observation, embedding,"
    " state_snapshot, tokens_used) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def step_params(run_id: str, step: int) -> list:
    """The parameters of one agent step; every value is derived from (run_id, step)."""
    state = {"plan": f"plan-{step}", "step": step, "tokens_used": step * 3, "todo": [step, "x"]}
    embedding = [float(step % 7) + i / 8 for i in range(8)]
    observation = f"obs-{run_id}-{step}-" + "o" * (step % 97)
    return [run_id, step, f"act-{step}", observation, embedding, state, step * 3]


def commit_steps(step: int) -> list[int]:
    """The steps the crash worker writes in the one commit that starts at ``step``.

    Usually one INSERT; every seventh commit is a ``transaction()`` of four steps.
    """
    return list(range(step, step + 4)) if step % 7 == 3 else [step]


def check_step_row(row, run_id: str, step: int) -> None:
    """Assert a row read back through loomdb holds what step_params wrote."""
    expected = step_params(run_id, step)
    assert row["run_id"] == run_id
    assert row["step"] == step
    assert row["action"] == expected[2]
    assert row["observation"] == expected[3]
    assert [float(x) for x in row["embedding"]] == expected[4]
    assert row["state_snapshot"] == expected[5]
    assert row["tokens_used"] == expected[6]


def integrity_check(path: str) -> list[str]:
    """PRAGMA integrity_check through plain apsw (no loomdb) on the store file.

    Opens without SQLITE_OPEN_CREATE: checking must never create the file.
    """
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        con.setbusytimeout(60_000)
        return [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
    finally:
        con.close()


def worker_cmd(script: str, config: dict) -> list[str]:
    return [sys.executable, os.path.join(HERE, script), json.dumps(config)]


def worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([TESTS_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_worker(script: str, config: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        worker_cmd(script, config),
        capture_output=True,
        text=True,
        env=worker_env(),
        timeout=timeout,
    )
