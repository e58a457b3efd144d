"""Crash safety: a process killed with SIGKILL at a random moment loses no acknowledged step.

Runs on both engines (``store_path``): a SQLite file, and a schema of the test
PostgreSQL server (there the killed process is a client; the server rolls its
open transaction back and must keep every commit it acknowledged).

A child process (``tests/durability/crash_worker.py``) runs the agent loop of
the product brief: it INSERTs one step per commit (every seventh commit is a
``transaction()`` of four steps) and, only after ``execute`` (or the
transaction block) returned, writes the step numbers to its stdout pipe. The
parent kills it with SIGKILL after a random delay -- sometimes while it is
still importing or creating the store, mostly in the middle of the write loop.

After every kill, on the same store (so later trials also exercise recovery
of a store that was itself recovered before):

* ``integrity_check`` (``tests/durability/common.py``: SQLite's ``PRAGMA
  integrity_check`` through plain apsw, or amcheck on PostgreSQL, plus
  loomdb's storage invariants, all without loomdb) is ``ok``, before loomdb
  touches the store and again after the parent wrote to it;
* loomdb opens the store; every acknowledged step is present exactly once
  with the values that were written; the only step(s) present without an
  acknowledgement are those of the one commit that was in flight at the kill,
  and they are there all together or not at all;
* every earlier trial's steps are still exactly as they were;
* writing continues: a new step can be inserted and read back.

Trials alternate ``durability="full"`` and ``"normal"`` (both must survive a
killed process). ``LOOMDB_CRASH_TRIALS`` (default 20) sets the number of trials
of the main-branch test (the branch test runs half as many, at least 10);
``LOOMDB_CRASH_SEED`` replays a run. PostgreSQL runs half as many trials.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest
from durability.common import (
    INSERT_STEP,
    ITERATIONS_DDL,
    check_step_row,
    commit_steps,
    integrity_check,
    is_postgres,
    step_params,
    store_exists,
    tagged,
    wait_disconnected,
    worker_cmd,
    worker_env,
)

import loomdb

TRIALS = int(os.environ.get("LOOMDB_CRASH_TRIALS", "20"))
SEED = int(os.environ.get("LOOMDB_CRASH_SEED", str(random.randrange(2**31))))
READY_TIMEOUT = 120.0  # generous: a noisy machine may take long to import numpy etc.


class _Worker:
    """A running crash worker and the lines it has acknowledged so far."""

    def __init__(self, config: dict) -> None:
        self.proc = subprocess.Popen(
            worker_cmd("crash_worker.py", config),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.stderr = b""
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out.start()
        self._err.start()

    def _read_stdout(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            if not raw.endswith(b"\n"):
                break  # a line cut short by the kill is not an acknowledgement
            line = raw.decode().strip()
            if line == "ready":
                self.ready.set()
            else:
                self.lines.append(line)
        self.ready.set()  # EOF: wake a waiter, who then looks at the exit status

    def _read_stderr(self) -> None:
        self.stderr = self.proc.stderr.read()

    def kill(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait()
        self._out.join()
        self._err.join()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def acked(self) -> list[int]:
        return [int(x) for x in self.lines]


def _kill_at_random(config: dict, rng: random.Random) -> list[int]:
    """Start a worker, SIGKILL it at a random moment; return the acknowledged steps."""
    worker = _Worker(config)
    try:
        if rng.random() < 0.8:
            # Mostly: kill somewhere inside the write loop.
            if not worker.ready.wait(READY_TIMEOUT):
                pytest.fail(f"crash worker not ready after {READY_TIMEOUT}s (seed {SEED})")
            time.sleep(rng.uniform(0.0, 0.35))
        else:
            # Sometimes: kill while it imports, creates the store or the branch.
            time.sleep(rng.uniform(0.0, 0.8))
        died_on_its_own = worker.proc.poll() is not None
    finally:
        rc = worker.kill()
    if died_on_its_own or rc != -signal.SIGKILL:
        pytest.fail(
            f"crash worker exited by itself with status {rc} (seed {SEED}):\n"
            + worker.stderr.decode(errors="replace")
        )
    return worker.acked()


def _in_flight(acked: list[int], start: int) -> set[int]:
    """The steps of the commit that was running when the worker was killed."""
    return set(commit_steps(acked[-1] + 1 if acked else start))


def _verify_after_kill(
    path: str,
    branch: str | None,
    run_id: str,
    start: int,
    acked: list[int],
    history: dict[str, list[int]],
    trial: int,
) -> list[int]:
    ctx = f"trial {trial}, run {run_id}, seed {SEED}"
    if store_exists(path):  # a kill during the worker's start-up may precede the store
        assert integrity_check(path) == ["ok"], f"integrity_check after the kill ({ctx})"
    else:
        assert not acked, f"the store is gone ({ctx})"

    with loomdb.connect(path) as db:
        db.execute(ITERATIONS_DDL)  # a no-op unless the kill came before the worker's
        handle = db
        if branch is not None:
            try:
                handle = db.checkout(branch)
            except loomdb.BranchNotFoundError:
                assert not acked, f"branch {branch} vanished although steps were acked ({ctx})"
                handle = db.branch(branch)

        rows = handle.execute("SELECT * FROM iterations WHERE run_id = %s ORDER BY step", [run_id]).fetchall()
        steps = [row["step"] for row in rows]
        duplicates = sorted(s for s, n in Counter(steps).items() if n > 1)
        assert not duplicates, f"steps present more than once: {duplicates} ({ctx})"
        missing = sorted(set(acked) - set(steps))
        assert not missing, f"acknowledged steps lost: {missing} of {len(acked)} ({ctx})"
        extra = set(steps) - set(acked)
        in_flight = _in_flight(acked, start)
        assert extra in (set(), in_flight), (
            f"unacknowledged steps {sorted(extra)} present; only the whole in-flight commit"
            f" {sorted(in_flight)} may be ({ctx})"
        )
        for row in rows:
            check_step_row(row, run_id, row["step"])
        history[run_id] = steps

        # Every earlier trial is untouched.
        counts = {
            r["run_id"]: (r["n"], r["lo"], r["hi"])
            for r in handle.execute(
                "SELECT run_id, count(*) AS n, min(step) AS lo, max(step) AS hi"
                " FROM iterations GROUP BY run_id"
            ).fetchall()
        }
        for rid, old_steps in history.items():
            want = (len(old_steps), min(old_steps), max(old_steps)) if old_steps else None
            assert counts.get(rid) == want, f"run {rid} changed after a later kill ({ctx})"

        # Writing continues.
        after = f"after-{run_id}"
        handle.execute(INSERT_STEP, step_params(after, 0))
        back = handle.execute("SELECT * FROM iterations WHERE run_id = %s", [after]).fetchall()
        assert len(back) == 1, f"the write after recovery was not read back once ({ctx})"
        check_step_row(back[0], after, 0)
        history[after] = [0]

        if branch is not None:
            leaked = db.execute("SELECT count(*) FROM iterations WHERE run_id LIKE 'crash-%%'").fetchone()[0]
            assert leaked == 0, f"{leaked} rows written on {branch} are visible on main ({ctx})"

    assert integrity_check(path) == ["ok"], f"integrity_check after writing on ({ctx})"
    return steps


def _crash_trials(path: str, branch: str | None, trials: int) -> None:
    rng = random.Random(SEED)
    history: dict[str, list[int]] = {}
    total_acked = 0
    start = 0
    for trial in range(trials):
        durability = ("full", "normal")[trial % 2]
        run_id = f"crash-{trial}"
        config = {
            "path": tagged(path, run_id),
            "durability": durability,
            "run_id": run_id,
            "branch": branch,
            "start": start,
        }
        acked = _kill_at_random(config, rng)
        wait_disconnected(path, run_id)  # PostgreSQL: the killed client's transaction is over
        try:
            assert acked == sorted(acked) and len(set(acked)) == len(acked), acked
            steps = _verify_after_kill(path, branch, run_id, start, acked, history, trial)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n(trial {trial}, {durability}, {len(acked)} acked;"
                f" replay with LOOMDB_CRASH_SEED={SEED})"
            ) from exc
        total_acked += len(acked)
        start = (max(steps) + 1) if steps else start
    # The harness must have killed at least some workers in the middle of writing.
    assert total_acked > 0, f"no trial acknowledged any step (seed {SEED})"


def _trials(path: str, sqlite_trials: int) -> int:
    """PostgreSQL runs half as many trials (at least 5): the killed process is only a
    client there, whose open transaction the server rolls back."""
    return max(5, sqlite_trials // 2) if is_postgres(path) else sqlite_trials


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_step(store_path):
    _crash_trials(store_path, None, _trials(store_path, TRIALS))


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_step_on_branch(store_path):
    # Rows on main before the branch exists: the branch inherits them, main never
    # sees the branch's rows.
    with loomdb.connect(store_path) as db:
        db.execute(ITERATIONS_DDL)
        db.execute(INSERT_STEP, step_params("base", 0))
    _crash_trials(store_path, "run-1/a", _trials(store_path, max(10, TRIALS // 2)))
    with loomdb.connect(store_path) as db:
        on_main = [tuple(r) for r in db.execute("SELECT run_id, step FROM iterations").fetchall()]
        assert on_main == [("base", 0)]
        branch = db.checkout("run-1/a")
        assert branch.execute("SELECT count(*) FROM iterations WHERE run_id = 'base'").fetchone()[0] == 1


def test_sigkill_single_trial_smoke(store_path):
    """One quick kill in the middle of the loop (not marked slow: runs in test-fast)."""
    worker = _Worker(
        {
            "path": tagged(store_path, "crash-smoke"),
            "durability": "full",
            "run_id": "crash-smoke",
            "branch": None,
            "start": 0,
        }
    )
    try:
        assert worker.ready.wait(READY_TIMEOUT), "crash worker never became ready"
        deadline = time.monotonic() + READY_TIMEOUT
        while len(worker.lines) < 5 and worker.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        alive = worker.proc.poll() is None
    finally:
        rc = worker.kill()
    assert alive and rc == -signal.SIGKILL, worker.stderr.decode(errors="replace")
    acked = worker.acked()
    assert len(acked) >= 5
    wait_disconnected(store_path, "crash-smoke")
    _verify_after_kill(store_path, None, "crash-smoke", 0, acked, {}, 0)
