"""The store file itself: format version, reopening, refusing what is not ours."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import apsw
import pytest

import loomdb


def digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_a_store_from_a_newer_format_is_refused_and_left_untouched(store_path):
    db = loomdb.connect(store_path)
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()
    raw = apsw.Connection(store_path)
    raw.execute("UPDATE loom_meta SET value = '99' WHERE key = 'format'")
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    before = digest(store_path)
    with pytest.raises(loomdb.StoreVersionError, match="format 99"):
        loomdb.connect(store_path)
    assert digest(store_path) == before


def test_a_directory_is_refused_with_an_operational_error(tmp_path):
    with pytest.raises(loomdb.OperationalError, match="directory"):
        loomdb.connect(str(tmp_path))


def test_unknown_durability_is_refused(store_path):
    with pytest.raises(loomdb.ProgrammingError, match="durability"):
        loomdb.connect(store_path, durability="sometimes")
    assert not os.path.exists(store_path)


def test_connect_to_a_missing_branch_raises_and_closes(store_path):
    loomdb.connect(store_path).close()
    with pytest.raises(loomdb.BranchNotFoundError, match="nope"):
        loomdb.connect(store_path, branch="nope")


def test_everything_survives_reopening(store_path):
    db = loomdb.connect(store_path)
    db.execute("CREATE TABLE t (k INT PRIMARY KEY, v JSONB)")
    db.execute("INSERT INTO t VALUES (1, %s)", [{"a": 1}])
    side = db.branch("side")
    side.execute("UPDATE t SET v = %s WHERE k = 1", [{"a": 2}])
    old = db.head
    db.execute("DELETE FROM t")
    db.close()

    db = loomdb.connect(store_path)
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert db.as_of(old).execute("SELECT v FROM t").fetchone()["v"] == {"a": 1}
    assert db.checkout("side").execute("SELECT v FROM t").fetchone()["v"] == {"a": 2}
    assert [b.name for b in db.branches()] == ["main", "side"]
    with pytest.raises(loomdb.IntegrityError):
        db.checkout("side").execute("INSERT INTO t VALUES (1, '{}')")
    db.close()


def test_two_processes_creating_one_new_store_at_once_both_succeed(tmp_path):
    path = str(tmp_path / "new.loom")
    code = (
        "import sys, loomdb\n"
        "db = loomdb.connect(sys.argv[1])\n"
        "db.execute('CREATE TABLE IF NOT EXISTS t (a INT)')\n"
        "db.execute('INSERT INTO t VALUES (1)')\n"
        "db.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, path], stderr=subprocess.PIPE) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    db = loomdb.connect(path)
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 4
    assert [b.name for b in db.branches()] == ["main"]


def test_explain_shows_the_branch_view_and_the_plan(fresh_db):
    fresh_db.execute("CREATE TABLE runs (run_id TEXT, step INT)")
    fresh_db.execute("CREATE INDEX runs_by_step ON runs (run_id, step)")
    branch = fresh_db.branch("b")
    text = branch.explain("SELECT step FROM runs WHERE run_id = %s ORDER BY step DESC LIMIT 1", ["r"])
    assert "SQL:" in text and "PLAN:" in text
    assert "NOT EXISTS" in text  # the shadow check of the parent's rows
    assert "runs_by_step" in text  # the user's index drives the lookup
    assert "TEMP B-TREE" not in text  # and delivers the order: no sort


def test_pep249_module_globals():
    assert loomdb.apilevel == "2.0"
    assert loomdb.paramstyle == "pyformat"
    assert loomdb.threadsafety >= 1
    assert issubclass(loomdb.BranchNotFoundError, loomdb.ProgrammingError)
    assert issubclass(loomdb.NotALoomStoreError, loomdb.DatabaseError)
    assert issubclass(loomdb.DatabaseError, loomdb.Error)
