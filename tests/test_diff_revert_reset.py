"""db.diff / db.diff_stat / db.revert / db.reset (docs/api.md, "Merge, diff, revert, reset").

diff compares two snapshots (branch name, commit id or datetime) row by row;
revert undoes one commit with a new commit (history kept); reset makes a
branch equal to an earlier snapshot with a new commit (history kept).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import loomdb

COLS = ("k", "a", "b")


def norm(value):
    if isinstance(value, np.ndarray):
        return ("vector", tuple(float(x) for x in value))
    if isinstance(value, dict | list):
        return ("json", json.dumps(value, sort_keys=True))
    return value


def contents(handle, table="kv"):
    rows = handle.execute(f"SELECT * FROM {table}").fetchall()
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


def kv(handle):
    return {r[0]: (r[1], r[2]) for r in handle.execute("SELECT k, a, b FROM kv ORDER BY k").fetchall()}


def row(k, a, b):
    return {"k": k, "a": a, "b": b}


def changes(db, a, b, table=None):
    """diff as {(table, kind, key-tuple): Change}, checking that each Change is well formed."""
    out = {}
    for c in db.diff(a, b, table=table) if table else db.diff(a, b):
        assert isinstance(c, loomdb.Change)
        assert c.kind in ("added", "removed", "modified")
        if c.kind == "added":
            assert c.before is None and c.after is not None
        elif c.kind == "removed":
            assert c.before is not None and c.after is None
        else:
            assert c.before is not None and c.after is not None and c.before != c.after
            assert set(c.columns) == {n for n in c.before if norm(c.before[n]) != norm(c.after[n])}
        key = tuple(sorted(c.key.items()))
        assert (c.table, c.kind, key) not in out, f"row reported twice: {c}"
        out[(c.table, c.kind, key)] = c
    return out


@pytest.fixture
def hist(fresh_db):
    """main with a small history; returns (db, {name: commit id})."""
    db = fresh_db
    db.execute("CREATE TABLE kv (k INT PRIMARY KEY, a INT, b INT)")
    db.executemany("INSERT INTO kv VALUES (%s, %s, %s)", [(k, k * 10, k * 100) for k in range(1, 6)])
    ids = {"loaded": db.head}
    db.execute("UPDATE kv SET a = -1 WHERE k = 1")
    ids["update"] = db.head
    db.execute("DELETE FROM kv WHERE k = 2")
    ids["delete"] = db.head
    db.execute("INSERT INTO kv VALUES (9, 90, 900)")
    ids["insert"] = db.head
    db.execute("UPDATE kv SET b = -3 WHERE k = 3")
    ids["other"] = db.head
    assert len(set(ids.values())) == len(ids)
    return db, ids


# -- diff ---------------------------------------------------------------------------------------


def test_diff_between_branches(hist):
    db, _ = hist
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (20, 1, 2)")
    a.execute("UPDATE kv SET a = 0, b = 0 WHERE k = 4")
    a.execute("UPDATE kv SET b = 7 WHERE k = 5")
    a.execute("DELETE FROM kv WHERE k = 3")
    got = changes(db, "main", "a")
    assert set(got) == {
        ("kv", "added", (("k", 20),)),
        ("kv", "modified", (("k", 4),)),
        ("kv", "modified", (("k", 5),)),
        ("kv", "removed", (("k", 3),)),
    }
    add = got[("kv", "added", (("k", 20),))]
    assert add.key == {"k": 20} and add.after == row(20, 1, 2) and add.before is None
    m4 = got[("kv", "modified", (("k", 4),))]
    assert (m4.before, m4.after, set(m4.columns)) == (row(4, 40, 400), row(4, 0, 0), {"a", "b"})
    m5 = got[("kv", "modified", (("k", 5),))]
    assert (m5.before, m5.after, tuple(m5.columns)) == (row(5, 50, 500), row(5, 50, 7), ("b",))
    rem = got[("kv", "removed", (("k", 3),))]
    assert rem.before == row(3, 30, -3) and rem.after is None

    # the other direction swaps added/removed and before/after
    back = changes(db, "a", "main")
    assert set(back) == {
        ("kv", "removed", (("k", 20),)),
        ("kv", "modified", (("k", 4),)),
        ("kv", "modified", (("k", 5),)),
        ("kv", "added", (("k", 3),)),
    }
    assert back[("kv", "modified", (("k", 4),))].before == row(4, 0, 0)
    assert back[("kv", "added", (("k", 3),))].after == row(3, 30, -3)

    assert db.diff_stat("main", "a") == {"kv": loomdb.DiffStat(added=1, removed=1, modified=2)}
    assert db.diff_stat("a", "main")["kv"] == (1, 1, 2)


def test_diff_between_commit_ids(hist):
    db, ids = hist
    got = changes(db, ids["loaded"], ids["other"])
    assert set(got) == {
        ("kv", "modified", (("k", 1),)),
        ("kv", "removed", (("k", 2),)),
        ("kv", "added", (("k", 9),)),
        ("kv", "modified", (("k", 3),)),
    }
    assert got[("kv", "modified", (("k", 1),))].columns == ("a",)
    assert got[("kv", "modified", (("k", 1),))].before == row(1, 10, 100)
    assert got[("kv", "modified", (("k", 1),))].after == row(1, -1, 100)
    assert got[("kv", "removed", (("k", 2),))].before == row(2, 20, 200)
    assert got[("kv", "added", (("k", 9),))].after == row(9, 90, 900)
    # one commit's own changes
    assert set(changes(db, ids["update"], ids["delete"])) == {("kv", "removed", (("k", 2),))}
    assert db.diff_stat(ids["loaded"], ids["other"]) == {"kv": loomdb.DiffStat(1, 1, 2)}


def test_diff_between_datetimes(hist):
    db, ids = hist
    times = {c.id: c.time for c in db.log()}
    got = changes(db, times[ids["update"]], times[ids["insert"]])
    assert set(got) == {("kv", "removed", (("k", 2),)), ("kv", "added", (("k", 9),))}
    # a datetime and a commit id can be mixed
    assert set(changes(db, ids["update"], times[ids["insert"]])) == set(got)


def test_diff_of_identical_snapshots_is_empty(hist):
    db, ids = hist
    a = db.branch("a")  # no commit of its own yet
    assert list(db.diff("main", "main")) == []
    assert list(db.diff("main", "a")) == []
    assert list(db.diff(ids["other"], ids["other"])) == []
    assert list(db.diff(ids["other"], "main")) == []
    assert all(s == (0, 0, 0) for s in db.diff_stat("main", "a").values())
    # a change and its undo leave nothing to report
    a.execute("UPDATE kv SET a = 0 WHERE k = 4")
    a.execute("UPDATE kv SET a = 40 WHERE k = 4")
    assert list(db.diff("main", "a")) == []


def test_diff_table_filter_and_stat_per_table(hist):
    db, _ = hist
    db.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO notes VALUES (1, 'x'), (2, 'y')")
    a = db.branch("a")
    a.execute("UPDATE notes SET body = 'z' WHERE id = 1")
    a.execute("INSERT INTO notes VALUES (3, 'w')")
    a.execute("DELETE FROM kv WHERE k = 1")
    only_notes = list(db.diff("main", "a", table="notes"))
    assert {(c.table, c.kind, c.key["id"]) for c in only_notes} == {
        ("notes", "modified", 1),
        ("notes", "added", 3),
    }
    only_kv = list(db.diff("main", "a", table="kv"))
    assert [(c.table, c.kind, c.key) for c in only_kv] == [("kv", "removed", {"k": 1})]
    assert {(c.table, c.kind) for c in db.diff("main", "a")} == {
        ("notes", "modified"),
        ("notes", "added"),
        ("kv", "removed"),
    }
    stat = db.diff_stat("main", "a")
    assert stat["notes"] == loomdb.DiffStat(added=1, removed=0, modified=1)
    assert stat["kv"] == loomdb.DiffStat(added=0, removed=1, modified=0)


def test_diff_counts_equal_the_data(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE kv (k INT PRIMARY KEY, a INT, b INT)")
    db.executemany("INSERT INTO kv VALUES (%s, %s, %s)", [(k, k % 3, k % 5) for k in range(200)])
    a = db.branch("a")
    a.execute("UPDATE kv SET a = a + 1 WHERE k % 7 = 0")
    a.execute("DELETE FROM kv WHERE k % 11 = 0 AND k % 7 <> 0")
    a.executemany("INSERT INTO kv VALUES (%s, 0, 0)", [(k,) for k in range(1000, 1013)])
    before, after = kv(db), kv(a)
    want_added = set(after) - set(before)
    want_removed = set(before) - set(after)
    want_modified = {k for k in set(before) & set(after) if before[k] != after[k]}
    got = list(db.diff("main", "a"))
    assert {c.key["k"] for c in got if c.kind == "added"} == want_added
    assert {c.key["k"] for c in got if c.kind == "removed"} == want_removed
    assert {c.key["k"] for c in got if c.kind == "modified"} == want_modified
    assert db.diff_stat("main", "a")["kv"] == (len(want_added), len(want_removed), len(want_modified))


def test_diff_of_jsonb_vector_and_keyless_tables(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE mem (id INT PRIMARY KEY, emb VECTOR(3), meta JSONB)")
    db.execute(
        "INSERT INTO mem VALUES (1, %s, %s), (2, %s, %s)", [[1, 2, 3], {"a": 1}, [0, 0, 0], {"b": [1]}]
    )
    db.execute("CREATE TABLE ev (k INT, v TEXT)")
    db.execute("INSERT INTO ev VALUES (1, 'x')")
    a = db.branch("a")
    a.execute("UPDATE mem SET meta = %s WHERE id = 1", [{"a": 2}])
    a.execute("UPDATE mem SET emb = %s WHERE id = 2", [[0, 0, 0.5]])
    a.execute("UPDATE mem SET meta = %s WHERE id = 2", [{"b": [1]}])  # the same value again
    a.execute("UPDATE ev SET v = 'y'")
    a.execute("INSERT INTO ev VALUES (1, 'x')")
    got = {(c.table, c.kind, tuple(sorted(c.key.items()))): c for c in db.diff("main", "a")}
    m1 = got[("mem", "modified", (("id", 1),))]
    assert m1.columns == ("meta",) and m1.before["meta"] == {"a": 1} and m1.after["meta"] == {"a": 2}
    m2 = got[("mem", "modified", (("id", 2),))]
    assert m2.columns == ("emb",)
    assert [float(x) for x in m2.after["emb"]] == [0, 0, 0.5]
    ev = [c for c in got.values() if c.table == "ev"]
    assert sorted(c.kind for c in ev) == ["added", "modified"]
    for c in ev:
        assert set(c.key) == {"_rid"}
    assert len(got) == 4


# -- revert --------------------------------------------------------------------------------------


def test_revert_an_update_keeps_later_changes(hist):
    db, ids = hist
    log_before = [c.id for c in db.log()]
    new = db.revert(ids["update"], message="undo update", author="agent-2")
    assert new is not None and db.head == new
    assert kv(db) == {1: (10, 100), 3: (30, -3), 4: (40, 400), 5: (50, 500), 9: (90, 900)}
    top = db.log(limit=1)[0]
    assert (top.id, top.message, top.author) == (new, "undo update", "agent-2")
    # history is kept: every earlier commit is still in the log and readable
    assert [c.id for c in db.log()][1:] == log_before
    assert kv(db.as_of(ids["update"]))[1] == (-1, 100)
    assert kv(db.as_of(ids["other"]))[1] == (-1, 100)
    # reverting it again finds nothing left to undo
    assert db.revert(ids["update"]) is None
    assert db.head == new


def test_revert_a_delete_restores_the_row(hist):
    db, ids = hist
    new = db.revert(ids["delete"])
    assert new is not None
    assert kv(db) == {1: (-1, 100), 2: (20, 200), 3: (30, -3), 4: (40, 400), 5: (50, 500), 9: (90, 900)}
    # the restored row is a normal row: the key is enforced and it can be updated
    with pytest.raises(loomdb.IntegrityError):
        db.execute("INSERT INTO kv VALUES (2, 0, 0)")
    db.execute("UPDATE kv SET a = 21 WHERE k = 2")
    assert kv(db)[2] == (21, 200)


def test_revert_an_insert_removes_the_row(hist):
    db, ids = hist
    db.revert(ids["insert"])
    assert 9 not in kv(db)
    assert kv(db) == {1: (-1, 100), 3: (30, -3), 4: (40, 400), 5: (50, 500)}


def test_revert_of_a_transaction_undoes_all_of_it_only(hist):
    db, ids = hist
    with db.transaction(message="batch"):
        db.execute("INSERT INTO kv VALUES (30, 3, 3)")
        db.execute("UPDATE kv SET a = 0 WHERE k IN (4, 5)")
        db.execute("DELETE FROM kv WHERE k = 9")
    batch = db.head
    db.execute("INSERT INTO kv VALUES (31, 3, 3)")
    db.revert(batch)
    assert kv(db) == kv(db.as_of(ids["other"])) | {31: (3, 3)}


def test_revert_merges_with_later_changes_to_other_columns(hist):
    db, ids = hist
    db.execute("UPDATE kv SET b = 1 WHERE k = 1")  # the reverted commit changed column a only
    db.revert(ids["update"])
    assert kv(db)[1] == (10, 1)


def test_revert_conflict_changes_nothing(hist):
    db, ids = hist
    db.execute("UPDATE kv SET a = -2 WHERE k = 1")  # the same column again
    head, data, log = db.head, contents(db), [c.id for c in db.log()]
    with pytest.raises(loomdb.MergeConflict) as info:
        db.revert(ids["update"])
    (c,) = info.value.conflicts
    assert c.table == "kv" and c.key == {"k": 1} and "a" in c.columns
    assert (db.head, contents(db), [c.id for c in db.log()]) == (head, data, log)


def test_revert_conflict_on_a_deleted_row(hist):
    db, ids = hist
    db.execute("DELETE FROM kv WHERE k = 1")  # the row the reverted update touched is gone
    head, data = db.head, contents(db)
    with pytest.raises(loomdb.MergeConflict):
        db.revert(ids["update"])
    assert (db.head, contents(db)) == (head, data)


def test_revert_on_a_branch_of_a_commit_before_its_fork(hist):
    db, ids = hist
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (40, 4, 4)")
    main_before = (db.head, contents(db))
    new = a.revert(ids["update"])
    assert new is not None and a.head == new
    assert kv(a)[1] == (10, 100) and kv(a)[40] == (4, 4)
    assert (db.head, contents(db)) == main_before


# -- reset ----------------------------------------------------------------------------------------


def test_reset_to_an_earlier_commit(hist):
    db, ids = hist
    log_before = [c.id for c in db.log()]
    new = db.reset(ids["update"], message="roll back", author="ops")
    assert new is not None and db.head == new
    assert contents(db) == contents(db.as_of(ids["update"]))
    assert kv(db) == {1: (-1, 100), 2: (20, 200), 3: (30, 300), 4: (40, 400), 5: (50, 500)}
    top = db.log(limit=1)[0]
    assert (top.id, top.message, top.author) == (new, "roll back", "ops")
    assert [c.id for c in db.log()][1:] == log_before
    # history after the reset point is still readable
    assert kv(db.as_of(ids["other"]))[9] == (90, 900)
    assert kv(db.as_of(ids["other"]))[3] == (30, -3)
    # writing goes on; resetting to the same snapshot again changes nothing
    assert db.reset(ids["update"]) is None and db.head == new
    db.execute("INSERT INTO kv VALUES (77, 7, 7)")
    assert kv(db)[77] == (7, 7)


def test_reset_to_a_datetime(hist):
    db, ids = hist
    when = {c.id: c.time for c in db.log()}[ids["delete"]]
    db.reset(when)
    assert contents(db) == contents(db.as_of(ids["delete"]))


def test_reset_and_forward_again(hist):
    db, ids = hist
    db.reset(ids["loaded"])
    assert kv(db) == {k: (k * 10, k * 100) for k in range(1, 6)}
    db.reset(ids["other"])  # to a commit "in the future" of the reset: still history of main
    assert contents(db) == contents(db.as_of(ids["other"]))


def test_reset_other_branch(hist):
    db, ids = hist
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (50, 5, 5)")
    a.execute("DELETE FROM kv WHERE k = 4")
    main_before = (db.head, contents(db))
    new = db.reset(ids["loaded"], branch="a")
    assert new is not None and a.head == new
    assert contents(a) == contents(db.as_of(ids["loaded"]))
    assert (db.head, contents(db)) == main_before
    with pytest.raises(loomdb.BranchNotFoundError):
        db.reset(ids["loaded"], branch="missing")


def test_reset_to_a_branch_name(hist):
    db, _ = hist
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (50, 5, 5)")
    a.execute("UPDATE kv SET a = 0 WHERE k = 5")
    db.execute("DELETE FROM kv WHERE k = 4")
    db.execute("INSERT INTO kv VALUES (60, 6, 6)")
    a_before = (a.head, contents(a))
    db.reset("a")
    assert contents(db) == contents(a)
    assert (a.head, contents(a)) == a_before


def test_reset_removes_tables_created_after_the_snapshot(hist):
    db, ids = hist
    db.execute("CREATE TABLE notes (id INT PRIMARY KEY)")
    db.execute("INSERT INTO notes VALUES (1)")
    db.reset(ids["other"])
    with pytest.raises(loomdb.ProgrammingError):
        db.execute("SELECT * FROM notes").fetchall()
    assert contents(db) == contents(db.as_of(ids["other"]))


def test_diff_of_a_table_dropped_and_created_again_with_other_columns(fresh_db):
    """The same name, another table: every row of the old one is removed and every
    row of the new one added, each with its own table's columns."""
    fresh_db.execute("CREATE TABLE kv (k INT PRIMARY KEY, a INT)")
    fresh_db.execute("INSERT INTO kv VALUES (1, 10), (2, 20)")
    other = fresh_db.branch("other")
    other.execute("DROP TABLE kv")
    other.execute("CREATE TABLE kv (k INT PRIMARY KEY, b TEXT, c TEXT)")
    other.execute("INSERT INTO kv VALUES (1, 'x', 'y')")
    found = sorted((c.kind, c.key["k"], c.before, c.after, c.columns) for c in fresh_db.diff("main", "other"))
    assert found == [
        ("added", 1, None, {"k": 1, "b": "x", "c": "y"}, ("k", "b", "c")),
        ("removed", 1, {"k": 1, "a": 10}, None, ("k", "a")),
        ("removed", 2, {"k": 2, "a": 20}, None, ("k", "a")),
    ]
    assert fresh_db.diff_stat("main", "other") == {"kv": loomdb.DiffStat(added=1, removed=2, modified=0)}
