"""Power-cut safety: with durability="full", a commit that returned survives losing power.

The harness (``tests/durability/powervfs.py``) is an apsw VFS inheriting from
the default one. Its model, in short (the module docstring has the details):

* written data lives in a per-path in-memory "page cache" until ``xSync`` on
  that file, which is the only way data reaches the real file;
* ``cut()`` is the power cut: unsynced writes are all lost (``"drop"``), or
  each is independently lost or kept (``"random"``: write-back in any order);
  afterwards every write, truncate, sync and delete of the dying process is
  discarded, so nothing it does while shutting down leaks to disk. A cut can
  be scheduled at the N-th write/truncate/sync call, i.e. inside a commit;
* locks and the WAL index (``-shm``) pass through to the default VFS; the WAL
  index is not durable state and is rebuilt from the real ``-wal`` file by
  the next process that opens the store; ``xDelete`` before the cut is durable
  at once; torn sectors and lost directory entries are not modelled.

Each trial runs the writer in a child process
(``tests/durability/powercut_worker.py``) that opens the store through the VFS
with ``loomdb.connect(..., vfs="powercut")``, commits steps, records which
commits returned before the cut, cuts and dies with ``os._exit`` (nothing is
closed). This process, which never opened the file through the VFS (SQLite
shares open-file state inside a process), then reopens the store with the
default VFS and checks it.

The harness is checked from both sides on raw apsw, without loomdb: with
``PRAGMA synchronous=OFF`` in WAL mode acknowledged commits ARE lost (the VFS
really discards unsynced data), with ``synchronous=FULL`` none is, and both
files pass ``integrity_check`` (the model does not invent corruption).

``LOOMDB_POWERCUT_TRIALS`` (default 12) sets the number of durability="full"
trials; ``LOOMDB_POWERCUT_SEED`` shifts every trial's random choices.
"""

from __future__ import annotations

import inspect
import json
import os
import random
from collections import Counter

import apsw
import pytest
from durability.common import (
    INSERT_STEP,
    ITERATIONS_DDL,
    check_step_row,
    integrity_check,
    run_worker,
    step_params,
)

import loomdb

TRIALS = int(os.environ.get("LOOMDB_POWERCUT_TRIALS", "12"))
BASE_SEED = int(os.environ.get("LOOMDB_POWERCUT_SEED", "20240611"))
COMMITS = 40
RUN_ID = "powercut"


def _run(config: dict) -> dict:
    result = run_worker("powercut_worker.py", config)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(f"power-cut worker failed with status {result.returncode} ({config}):\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _require_vfs_keyword() -> None:
    if "vfs" not in inspect.signature(loomdb.connect).parameters:
        pytest.fail("loomdb.connect has no vfs= keyword; the power-cut harness needs it")


def _assert_vfs_was_used(path: str, report: dict) -> None:
    """Guard against a vacuous pass: loomdb's writes really went through the VFS."""
    opened = {os.path.realpath(p) for p in report["opened"]}
    assert os.path.realpath(path) in opened, f"the store was not opened through the VFS: {opened}"
    assert report["writes"] > 0 and report["syncs"] > 0, report


def _raw_steps(path: str) -> list[int]:
    con = apsw.Connection(path)
    try:
        return [r[0] for r in con.execute("SELECT step FROM t ORDER BY step")]
    finally:
        con.close()


def _verify_store(path: str, config: dict, report: dict, *, prefix_only: bool) -> None:
    """Reopen with the default VFS and check what survived the cut.

    prefix_only=False (durability="full"): every acknowledged commit is there.
    prefix_only=True (durability="normal"): recent commits may be lost, but what
    survives is a prefix of the commit sequence.
    """
    ctx = f"config {config}, cut {report['cut']}"
    acked = report["acked"]
    assert integrity_check(path) == ["ok"], f"integrity_check after the cut ({ctx})"

    with loomdb.connect(path) as db:
        db.execute(ITERATIONS_DDL)  # no-op unless the cut came before the CREATE TABLE
        handle = db
        branch = config.get("branch")
        if branch:
            try:
                handle = db.checkout(branch)
            except loomdb.BranchNotFoundError:
                # With durability="normal" the branch's creation may be lost with the rest.
                assert prefix_only or not acked, (
                    f"branch {branch} lost although commits on it returned ({ctx})"
                )
                handle = db.branch(branch)
        rows = handle.execute("SELECT * FROM iterations WHERE run_id = %s ORDER BY step", [RUN_ID]).fetchall()
        steps = [row["step"] for row in rows]
        duplicates = sorted(s for s, n in Counter(steps).items() if n > 1)
        assert not duplicates, f"steps present more than once: {duplicates} ({ctx})"
        present = set(steps)
        if prefix_only:
            assert present == set(range(len(present))), (
                f"surviving steps are not a prefix of the commits: {sorted(present)} ({ctx})"
            )
        else:
            missing = sorted(set(acked) - present)
            assert not missing, f"{len(missing)} acknowledged commits lost: steps {missing} ({ctx})"
        # Only the commit in flight at the cut may be there without having returned.
        extra = present - set(acked)
        assert extra <= {len(acked)}, f"unacknowledged steps present: {sorted(extra)} ({ctx})"
        for row in rows:
            check_step_row(row, RUN_ID, row["step"])

        # The store accepts new writes.
        handle.execute(INSERT_STEP, step_params("after-cut", 10_000))
        back = handle.execute("SELECT * FROM iterations WHERE run_id = 'after-cut'").fetchall()
        assert len(back) == 1
        check_step_row(back[0], "after-cut", 10_000)
        if branch:
            leaked = db.execute(
                "SELECT count(*) FROM iterations WHERE run_id IN ('powercut', 'after-cut')"
            ).fetchone()[0]
            assert leaked == 0, f"rows written on {branch} are visible on main ({ctx})"
    assert integrity_check(path) == ["ok"], f"integrity_check after writing on ({ctx})"


def _loomdb_config(path: str, trial: int, durability: str) -> dict:
    seed = BASE_SEED + trial
    rng = random.Random(seed)
    config = {
        "mode": "loomdb",
        "path": path,
        "durability": durability,
        "commits": COMMITS,
        "run_id": RUN_ID,
        "cut_mode": ("drop", "random")[trial % 2],
        "seed": seed,
        "branch": "run-1/a" if trial % 3 == 2 else None,
        "cut_commit": None,
        "cut_offset": 0,
    }
    if trial % 5 != 4:  # one trial in five: the power goes after the last commit returned
        config["cut_commit"] = rng.randrange(COMMITS)
        config["cut_offset"] = rng.randrange(24)
    return config


# -- the harness itself, on raw apsw -------------------------------------------------


def test_harness_sync_off_loses_acknowledged_commits(tmp_path):
    """Negative control: synchronous=OFF never syncs, so a cut loses acknowledged commits."""
    path = str(tmp_path / "off.db")
    config = {
        "mode": "raw",
        "path": path,
        "synchronous": "OFF",
        "commits": COMMITS,
        "cut_mode": "drop",
        "seed": 1,
        "cut_commit": None,
        "cut_offset": 0,
    }
    report = _run(config)
    assert report["acked"] == list(range(COMMITS))
    assert report["pending_at_end"] > 0
    survived = set(_raw_steps(path))
    lost = set(report["acked"]) - survived
    assert lost, "the VFS let unsynced writes reach the file: the harness would not bite"
    assert integrity_check(path) == ["ok"]  # stale, but consistent


@pytest.mark.parametrize("cut_mode", ["drop", "random"])
def test_harness_sync_full_keeps_acknowledged_commits(tmp_path, cut_mode):
    """Positive control: plain SQLite with synchronous=FULL loses nothing under this model."""
    for trial in range(6):
        rng = random.Random(BASE_SEED + trial)
        path = str(tmp_path / f"full-{trial}.db")
        config = {
            "mode": "raw",
            "path": path,
            "synchronous": "FULL",
            "commits": COMMITS,
            "cut_mode": cut_mode,
            "seed": BASE_SEED + trial,
            "cut_commit": rng.randrange(COMMITS),
            "cut_offset": rng.randrange(8),
        }
        report = _run(config)
        assert report["cut"]["at_op"] > report["setup_ops"]
        survived = _raw_steps(path)
        assert set(report["acked"]) <= set(survived), (config, report)
        assert set(survived) - set(report["acked"]) <= {len(report["acked"])}
        assert integrity_check(path) == ["ok"]


# -- loomdb ---------------------------------------------------------------------------


def _trial_params(count: int, fast: int) -> list:
    return [pytest.param(t, marks=() if t < fast else pytest.mark.slow, id=f"trial{t}") for t in range(count)]


@pytest.mark.parametrize("trial", _trial_params(TRIALS, fast=2))
def test_full_durability_survives_power_cut(tmp_path, trial):
    _require_vfs_keyword()
    path = str(tmp_path / "store.loom")
    config = _loomdb_config(path, trial, "full")
    report = _run(config)
    _assert_vfs_was_used(path, report)
    if config["cut_commit"] is None:
        assert report["acked"] == list(range(COMMITS))
    _verify_store(path, config, report, prefix_only=False)


@pytest.mark.parametrize("trial", _trial_params(4, fast=0))
def test_normal_durability_power_cut_leaves_consistent_prefix(tmp_path, trial):
    """durability="normal" may lose recent commits to a power cut, never consistency."""
    _require_vfs_keyword()
    path = str(tmp_path / "store.loom")
    config = _loomdb_config(path, trial, "normal")
    report = _run(config)
    _assert_vfs_was_used(path, report)
    _verify_store(path, config, report, prefix_only=True)


@pytest.mark.parametrize("trial", _trial_params(6, fast=1))
def test_power_cut_while_creating_the_store(tmp_path, trial):
    """A cut during connect/CREATE TABLE leaves a file that loomdb opens and writes to."""
    _require_vfs_keyword()
    path = str(tmp_path / "store.loom")
    rng = random.Random(BASE_SEED + 100 + trial)
    config = _loomdb_config(path, trial, "full")
    config.update(commits=5, cut_commit=None, branch=None, setup_cut_op=rng.randrange(1, 40))
    report = _run(config)
    _verify_store(path, config, report, prefix_only=False)
