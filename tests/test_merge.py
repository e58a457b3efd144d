"""db.merge: the brief's branch-per-approach workflow, and the three-way merge contract.

The contract (docs/api.md, "Merge, diff, revert, reset"): merge branch
``source`` into ``into`` from the merge base; one-sided changes are taken,
changes on both sides merge cell by cell, identical changes are no conflict;
same-column clashes, delete-vs-change and insert/insert on one key are
conflicts, settled by ``on_conflict``; a conflict with ``"fail"`` changes
nothing; the merge commit has two parents; merging again merges only what is
new.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

import loomdb

# -- helpers -------------------------------------------------------------------------------


def norm(value):
    """A hashable, comparable form of one cell (vectors and JSON included)."""
    if isinstance(value, np.ndarray):
        return ("vector", tuple(float(x) for x in value))
    if isinstance(value, dict | list):
        return ("json", json.dumps(value, sort_keys=True))
    return value


def contents(handle, table):
    """Every row of ``table`` as a sorted list of normalised tuples."""
    rows = handle.execute(f"SELECT * FROM {table}").fetchall()
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


def kv(handle, table="kv"):
    """A keyed table ``(k, ...)`` as {k: (rest...)}."""
    return {r[0]: tuple(r[1:]) for r in handle.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()}


def state_of(db, branches, tables=("kv",)):
    """Contents and head of every branch: what "nothing changed" compares."""
    out = {}
    for name in branches:
        h = db.checkout(name)
        out[name] = (h.head, {t: contents(h, t) for t in tables}, [c.id for c in h.log()])
    return out


@pytest.fixture
def kvdb(fresh_db):
    """main holds kv(k PRIMARY KEY, a, b) with rows 1..4; branches a and b fork from it."""
    db = fresh_db
    db.execute("CREATE TABLE kv (k INT PRIMARY KEY, a INT, b INT)")
    db.executemany(
        "INSERT INTO kv (k, a, b) VALUES (%s, %s, %s)", [(k, k * 10, k * 100) for k in range(1, 5)]
    )
    return db


# -- the brief -----------------------------------------------------------------------------

DIM = 1536


def embedding_for(step, approach):
    rng = np.random.default_rng(hash((step, approach)) % 2**32)
    return rng.standard_normal(DIM).astype(np.float32)


def state_for(step, approach):
    return {
        "plan": f"{approach}: plan {step}",
        "tokens_used": 100 * step + len(approach),
        "memory": {"approach": approach, "seen": list(range(step))},
        "done": False,
    }


def test_brief_branch_per_approach_then_merge_the_winner(fresh_db):
    db = fresh_db
    # Create a table for loop iterations
    db.execute("""
    CREATE TABLE IF NOT EXISTS iterations (
    run_id TEXT,
    step INT,
    action TEXT,
    observation TEXT,
    embedding VECTOR(1536),
    state_snapshot JSONB,
    tokens_used INT,
    created_at TIMESTAMP DEFAULT NOW()
    )
    """)

    def persist_step(db, run_id, step, action, observation, embedding, state):
        db.execute(
            """
    INSERT INTO iterations (run_id, step, action, observation, embedding, state_snapshot, tokens_used)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    """,
            [run_id, step, action, observation, embedding, state, state["tokens_used"]],
        )

    def recover(db, run_id):
        # Resume from the last successful step after a crash
        return db.execute(
            """
    SELECT step, state_snapshot FROM iterations
    WHERE run_id = %s ORDER BY step DESC LIMIT 1
    """,
            [run_id],
        ).fetchone()

    written = {}  # (approach, step) -> (embedding, state)

    def step(handle, approach, n):
        emb, st = embedding_for(n, approach), state_for(n, approach)
        written[(approach, n)] = (emb, st)
        persist_step(handle, "run-42", n, f"{approach}-act-{n}", f"{approach}-obs-{n}", emb, st)

    for n in range(3):
        step(db, "shared", n)
    assert recover(db, "run-42")["step"] == 2

    # Agent explores two approaches in parallel
    branch_a = db.branch("run-42/approach-a")
    branch_b = db.branch("run-42/approach-b")
    assert db.branch_name == "main"

    # Each branch accumulates its own iterations independently
    for n in range(3, 7):
        step(branch_a, "approach-a", n)
    step(branch_b, "approach-b", 3)
    step(db.checkout("run-42/approach-b"), "approach-b", 4)

    last_a, last_b, last_main = (recover(h, "run-42") for h in (branch_a, branch_b, db))
    assert (last_a["step"], last_b["step"], last_main["step"]) == (6, 4, 2)
    assert last_a["state_snapshot"] == state_for(6, "approach-a")
    assert last_b["state_snapshot"] == state_for(4, "approach-b")

    before_a = contents(branch_a, "iterations")
    before_b = contents(branch_b, "iterations")
    head_a, head_b, head_main = branch_a.head, branch_b.head, db.head
    assert len(before_a) == 7 and len(before_b) == 5

    # Compare outcomes, merge the winner
    result = db.merge("run-42/approach-a", into="main")

    assert result.commit is not None
    assert db.head == result.commit
    assert result.tables["iterations"] == loomdb.TableChanges(added=4, modified=0, deleted=0)
    assert (result.added, result.modified, result.deleted, result.conflicts_resolved) == (4, 0, 0, 0)
    # main had nothing of its own since the fork: it now holds exactly approach-a's rows
    assert contents(db, "iterations") == before_a
    actions = [r[0] for r in db.execute("SELECT action FROM iterations ORDER BY step").fetchall()]
    assert actions == [f"shared-act-{n}" for n in range(3)] + [f"approach-a-act-{n}" for n in range(3, 7)]
    assert db.execute("SELECT count(*) FROM iterations WHERE action LIKE 'approach-b%%'").fetchone()[0] == 0
    # both branches are unchanged
    assert contents(branch_a, "iterations") == before_a and branch_a.head == head_a
    assert contents(db.checkout("run-42/approach-b"), "iterations") == before_b
    assert branch_b.head == head_b
    # the recovery query on main now resumes approach-a's run
    last = recover(db, "run-42")
    assert last["step"] == 6 and last["state_snapshot"] == state_for(6, "approach-a")
    # embeddings and JSONB values round-trip through the merge bit for bit
    for r in db.execute(
        "SELECT action, step, embedding, state_snapshot, tokens_used FROM iterations"
    ).fetchall():
        approach = "shared" if r["action"].startswith("shared") else "approach-a"
        emb, st = written[(approach, r["step"])]
        assert isinstance(r["embedding"], np.ndarray) and r["embedding"].dtype == np.float32
        assert r["embedding"].shape == (DIM,)
        assert np.array_equal(r["embedding"], emb)
        assert r["state_snapshot"] == st
        assert r["tokens_used"] == st["tokens_used"]
    # created_at is carried, not re-evaluated by the merge
    times_a = sorted(r[0] for r in branch_a.execute("SELECT created_at FROM iterations").fetchall())
    times_main = sorted(r[0] for r in db.execute("SELECT created_at FROM iterations").fetchall())
    assert times_main == times_a and all(isinstance(t, dt.datetime) for t in times_main)
    # the merge commit's parents: main's previous head and approach-a's head
    assert db.log(limit=1)[0].id == result.commit
    assert db.log(limit=1)[0].parents == (head_main, head_a)
    # history before the merge is still there
    assert contents(db.as_of(head_main), "iterations") == sorted(
        (r for r in before_a if r[2].startswith("shared")), key=repr
    )


# -- cell-level merge and conflicts --------------------------------------------------------


def test_changes_to_different_columns_of_one_row_are_both_kept(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    a.execute("UPDATE kv SET a = -1 WHERE k = 1")
    b.execute("UPDATE kv SET b = -2 WHERE k = 1")
    head_a = a.head
    result = kvdb.merge("a", into="b")
    assert result.commit is not None
    assert result.tables == {"kv": loomdb.TableChanges(0, 1, 0)}
    assert kv(b)[1] == (-1, -2)
    assert kv(b) == {1: (-1, -2), 2: (20, 200), 3: (30, 300), 4: (40, 400)}
    assert kv(a)[1] == (-1, 100) and a.head == head_a
    assert kv(kvdb)[1] == (10, 100)  # main untouched


def test_one_sided_inserts_updates_deletes_are_taken(kvdb):
    a = kvdb.branch("a")
    a.execute("INSERT INTO kv VALUES (9, 90, 900)")
    a.execute("UPDATE kv SET a = 0 WHERE k = 2")
    a.execute("DELETE FROM kv WHERE k = 3")
    kvdb.execute("INSERT INTO kv VALUES (8, 80, 800)")
    kvdb.execute("UPDATE kv SET b = 0 WHERE k = 4")
    result = kvdb.merge("a")  # into=None: this handle's branch (main)
    assert result.tables["kv"] == loomdb.TableChanges(added=1, modified=1, deleted=1)
    assert kv(kvdb) == {1: (10, 100), 2: (0, 200), 4: (40, 0), 8: (80, 800), 9: (90, 900)}
    assert kv(a) == {1: (10, 100), 2: (0, 200), 4: (40, 400), 9: (90, 900)}


def test_same_column_conflict_raises_and_changes_nothing(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    a.execute("UPDATE kv SET a = 111, b = 7 WHERE k = 1")
    a.execute("INSERT INTO kv VALUES (5, 50, 500)")  # a clean change in the same merge
    b.execute("UPDATE kv SET a = 222 WHERE k = 1")
    b.execute("DELETE FROM kv WHERE k = 2")
    before = state_of(kvdb, ["main", "a", "b"])

    with pytest.raises(loomdb.MergeConflict) as info:
        kvdb.merge("a", into="b")

    assert isinstance(info.value, loomdb.Error)
    (c,) = info.value.conflicts
    assert isinstance(c, loomdb.Conflict)
    assert c.table == "kv"
    assert c.key == {"k": 1}
    assert c.kind == "update/update"
    assert c.base == {"k": 1, "a": 10, "b": 100}
    assert c.ours == {"k": 1, "a": 222, "b": 100}  # ours: the target (b)
    assert c.theirs == {"k": 1, "a": 111, "b": 7}  # theirs: the source (a)
    assert tuple(c.columns) == ("a",)
    assert state_of(kvdb, ["main", "a", "b"]) == before
    # writing goes on normally afterwards
    b.execute("INSERT INTO kv VALUES (6, 60, 600)")
    assert kv(b)[6] == (60, 600)


def _two_sided_conflict(db):
    a, b = db.branch("a"), db.branch("b")
    a.execute("UPDATE kv SET a = 111, b = 7 WHERE k = 1")  # a clashes, b merges cleanly
    b.execute("UPDATE kv SET a = 222 WHERE k = 1")
    a.execute("UPDATE kv SET a = 0 WHERE k = 2")  # a clean one-sided change
    return a, b


def test_on_conflict_ours_keeps_target_cells(kvdb):
    a, b = _two_sided_conflict(kvdb)
    result = kvdb.merge("a", into="b", on_conflict="ours")
    assert result.commit is not None and result.conflicts_resolved == 1
    assert kv(b)[1] == (222, 7)  # ours in the clashing column, theirs' clean cell kept
    assert kv(b)[2] == (0, 200)
    assert kv(a)[1] == (111, 7)


def test_conflict_settled_ours_is_recorded_and_not_raised_again(kvdb):
    a, b = _two_sided_conflict(kvdb)
    head_b = b.head
    first = kvdb.merge("a", into="b", on_conflict="ours")
    assert first.commit is not None and b.head == first.commit
    assert b.log(limit=1)[0].parents == (head_b, a.head)
    # merging again: the settled conflict is history, nothing is new
    again = kvdb.merge("a", into="b")
    assert again.commit is None and again.conflicts_resolved == 0
    assert kv(b)[1] == (222, 7)


def test_on_conflict_theirs_takes_source_cells(kvdb):
    a, b = _two_sided_conflict(kvdb)
    result = kvdb.merge("a", into="b", on_conflict="theirs")
    assert result.conflicts_resolved == 1
    assert kv(b)[1] == (111, 7)
    assert kv(b)[2] == (0, 200)


def test_on_conflict_callable_returning_a_row(kvdb):
    a, b = _two_sided_conflict(kvdb)
    seen = []

    def pick(conflict):
        seen.append(conflict)
        return {"k": 1, "a": conflict.ours["a"] + conflict.theirs["a"], "b": -5}

    result = kvdb.merge("a", into="b", on_conflict=pick)
    assert result.conflicts_resolved == 1
    (c,) = seen
    assert (c.table, c.key, c.kind, tuple(c.columns)) == ("kv", {"k": 1}, "update/update", ("a",))
    assert c.base == {"k": 1, "a": 10, "b": 100}
    assert kv(b)[1] == (333, -5)
    assert kv(b)[2] == (0, 200)


def test_on_conflict_callable_returning_none_deletes_the_row(kvdb):
    a, b = _two_sided_conflict(kvdb)
    result = kvdb.merge("a", into="b", on_conflict=lambda c: None)
    assert result.conflicts_resolved == 1
    assert 1 not in kv(b)
    assert kv(b) == {2: (0, 200), 3: (30, 300), 4: (40, 400)}
    assert kv(a)[1] == (111, 7)


def test_delete_update_conflicts(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    b.execute("DELETE FROM kv WHERE k = 1")  # ours deletes, theirs updates
    a.execute("UPDATE kv SET b = 1 WHERE k = 1")
    b.execute("UPDATE kv SET a = 2 WHERE k = 2")  # ours updates, theirs deletes
    a.execute("DELETE FROM kv WHERE k = 2")
    before = state_of(kvdb, ["a", "b"])
    with pytest.raises(loomdb.MergeConflict) as info:
        kvdb.merge("a", into="b")
    by_key = {c.key["k"]: c for c in info.value.conflicts}
    assert set(by_key) == {1, 2}
    c1, c2 = by_key[1], by_key[2]
    assert c1.kind == "delete/update"
    assert (c1.base, c1.ours, c1.theirs) == ({"k": 1, "a": 10, "b": 100}, None, {"k": 1, "a": 10, "b": 1})
    assert c2.kind == "update/delete"
    assert (c2.base, c2.ours, c2.theirs) == ({"k": 2, "a": 20, "b": 200}, {"k": 2, "a": 2, "b": 200}, None)
    assert state_of(kvdb, ["a", "b"]) == before

    kvdb.merge("a", into="b", on_conflict="theirs")
    assert kv(b) == {1: (10, 1), 3: (30, 300), 4: (40, 400)}


def test_delete_update_conflict_resolved_ours(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    b.execute("DELETE FROM kv WHERE k = 1")
    a.execute("UPDATE kv SET b = 1 WHERE k = 1")
    b.execute("UPDATE kv SET a = 2 WHERE k = 2")
    a.execute("DELETE FROM kv WHERE k = 2")
    result = kvdb.merge("a", into="b", on_conflict="ours")
    assert result.conflicts_resolved == 2
    assert kv(b) == {2: (2, 200), 3: (30, 300), 4: (40, 400)}


def test_insert_insert_same_primary_key_conflicts(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    a.execute("INSERT INTO kv VALUES (7, 1, 1)")
    b.execute("INSERT INTO kv VALUES (7, 2, 2)")
    before = state_of(kvdb, ["a", "b"])
    with pytest.raises(loomdb.MergeConflict) as info:
        kvdb.merge("a", into="b")
    (c,) = info.value.conflicts
    assert c.kind == "insert/insert" and c.key == {"k": 7} and c.table == "kv"
    assert c.base is None
    assert c.ours == {"k": 7, "a": 2, "b": 2}
    assert c.theirs == {"k": 7, "a": 1, "b": 1}
    assert state_of(kvdb, ["a", "b"]) == before

    kvdb.merge("a", into="b", on_conflict="theirs")
    assert kv(b)[7] == (1, 1)
    assert b.execute("SELECT count(*) FROM kv WHERE k = 7").fetchone()[0] == 1


@pytest.mark.parametrize("policy", ["ours", "theirs", "callable"])
def test_insert_insert_resolution_leaves_one_row_per_key(kvdb, policy):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    a.execute("INSERT INTO kv VALUES (7, 1, 1)")
    b.execute("INSERT INTO kv VALUES (7, 2, 2)")
    on_conflict = (lambda c: {"k": 7, "a": 3, "b": 3}) if policy == "callable" else policy
    kvdb.merge("a", into="b", on_conflict=on_conflict)
    want = {"ours": (2, 2), "theirs": (1, 1), "callable": (3, 3)}[policy]
    assert b.execute("SELECT a, b FROM kv WHERE k = 7").fetchall() == [want]
    # the key is still enforced afterwards
    with pytest.raises(loomdb.IntegrityError):
        b.execute("INSERT INTO kv VALUES (7, 0, 0)")


def test_insert_insert_same_unique_value_conflicts(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE, name TEXT)")
    a, b = db.branch("a"), db.branch("b")
    a.execute("INSERT INTO users VALUES (1, 'x@example.com', 'from a')")
    b.execute("INSERT INTO users VALUES (2, 'x@example.com', 'from b')")
    before = state_of(db, ["a", "b"], tables=("users",))
    with pytest.raises(loomdb.MergeConflict) as info:
        db.merge("a", into="b")
    (c,) = info.value.conflicts
    assert c.kind == "insert/insert"
    assert c.ours["name"] == "from b" and c.theirs["name"] == "from a"
    assert state_of(db, ["a", "b"], tables=("users",)) == before


def test_table_without_key_keeps_both_sides_inserts(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE ev (k INT, v TEXT)")
    db.execute("INSERT INTO ev VALUES (1, 'base')")
    a, b = db.branch("a"), db.branch("b")
    a.execute("INSERT INTO ev VALUES (2, 'a')")
    a.execute("INSERT INTO ev VALUES (3, 'same')")
    b.execute("INSERT INTO ev VALUES (2, 'b')")
    b.execute("INSERT INTO ev VALUES (3, 'same')")
    result = db.merge("a", into="b")
    assert result.tables["ev"].added == 2
    assert contents(b, "ev") == sorted([(1, "base"), (2, "a"), (2, "b"), (3, "same"), (3, "same")], key=repr)
    assert contents(a, "ev") == sorted([(1, "base"), (2, "a"), (3, "same")], key=repr)


def test_table_without_key_merges_one_row_cell_by_cell_and_reports_rid_key(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE ev (k INT, v TEXT, n INT)")
    db.execute("INSERT INTO ev VALUES (1, 'base', 0)")
    a, b = db.branch("a"), db.branch("b")
    a.execute("UPDATE ev SET v = 'a' WHERE k = 1")
    b.execute("UPDATE ev SET n = 5 WHERE k = 1")
    db.merge("a", into="b")
    assert contents(b, "ev") == [(1, "a", 5)]
    # a same-column clash in a keyless table names the row by its identity
    a.execute("UPDATE ev SET n = 1 WHERE k = 1")
    b.execute("UPDATE ev SET n = 2 WHERE k = 1")
    with pytest.raises(loomdb.MergeConflict) as info:
        db.merge("a", into="b")
    (c,) = info.value.conflicts
    assert set(c.key) == {"_rid"} and isinstance(c.key["_rid"], int)
    assert c.kind == "update/update" and tuple(c.columns) == ("n",)


def test_identical_updates_and_deletes_on_both_sides_are_not_conflicts(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    for h in (a, b):
        h.execute("UPDATE kv SET a = 5 WHERE k = 1")
        h.execute("DELETE FROM kv WHERE k = 2")
    a.execute("UPDATE kv SET b = 3 WHERE k = 3")
    result = kvdb.merge("a", into="b")  # no MergeConflict
    assert result.conflicts_resolved == 0
    assert kv(b) == {1: (5, 100), 3: (30, 3), 4: (40, 400)}


def test_identical_inserts_on_both_sides_are_not_conflicts(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    for h in (a, b):
        h.execute("INSERT INTO kv VALUES (9, 9, 9)")
    a.execute("UPDATE kv SET b = 3 WHERE k = 3")
    result = kvdb.merge("a", into="b")  # no MergeConflict: the same row was inserted on both
    assert result.conflicts_resolved == 0
    assert kv(b) == {1: (10, 100), 2: (20, 200), 3: (30, 3), 4: (40, 400), 9: (9, 9)}
    assert b.execute("SELECT count(*) FROM kv WHERE k = 9").fetchone()[0] == 1


def test_identical_insert_after_an_earlier_merge_is_not_a_conflict(kvdb):
    # the target inserted k = 9 before the first merge; the source inserts the very
    # same row after it: the second merge must see two identical rows, not a clash
    a, b = kvdb.branch("a"), kvdb.branch("b")
    b.execute("INSERT INTO kv VALUES (9, 9, 9)")
    a.execute("INSERT INTO kv VALUES (8, 8, 8)")
    kvdb.merge("a", into="b")
    a.execute("INSERT INTO kv VALUES (9, 9, 9)")
    result = kvdb.merge("a", into="b")
    assert result.conflicts_resolved == 0
    assert kv(b)[9] == (9, 9) and b.execute("SELECT count(*) FROM kv WHERE k = 9").fetchone()[0] == 1


def test_insert_clash_after_an_earlier_merge_is_reported_with_both_rows(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    b.execute("INSERT INTO kv VALUES (9, 9, 9)")
    a.execute("INSERT INTO kv VALUES (8, 8, 8)")
    kvdb.merge("a", into="b")
    a.execute("INSERT INTO kv VALUES (9, 9, -9)")
    with pytest.raises(loomdb.MergeConflict) as info:
        kvdb.merge("a", into="b")
    (c,) = info.value.conflicts
    assert (c.kind, c.key, c.base) == ("insert/insert", {"k": 9}, None)
    assert (c.ours, c.theirs) == ({"k": 9, "a": 9, "b": 9}, {"k": 9, "a": 9, "b": -9})
    result = kvdb.merge("a", into="b", on_conflict="theirs")
    assert kv(b)[9] == (9, -9)
    # b's row with k = 9 was replaced: one modified row, as in a first merge
    assert result.tables["kv"] == loomdb.TableChanges(added=0, modified=1, deleted=0)


def _clash_settled_ours(db):
    """a and b insert k = 7 with different values; merging a into b keeps b's row."""
    a, b = db.branch("a"), db.branch("b")
    a.execute("INSERT INTO kv VALUES (7, 0, 0)")
    b.execute("INSERT INTO kv VALUES (7, 0, 1)")
    db.merge("a", into="b", on_conflict="ours")
    assert kv(b)[7] == (0, 1)
    return a, b


def test_change_after_an_insert_clash_settled_ours_merges_cell_by_cell(kvdb):
    # base of the second merge: a's row at the first merge (0, 0); b kept (0, 1);
    # a now changes column a only -> (1, 1), no conflict
    a, b = _clash_settled_ours(kvdb)
    a.execute("UPDATE kv SET a = 1 WHERE k = 7")
    result = kvdb.merge("a", into="b")
    assert result.conflicts_resolved == 0
    assert kv(b)[7] == (1, 1)


def test_delete_after_an_insert_clash_settled_ours_is_a_conflict(kvdb):
    # a deletes the row b kept in its own version: update/delete, not silently ignored
    a, b = _clash_settled_ours(kvdb)
    a.execute("DELETE FROM kv WHERE k = 7")
    with pytest.raises(loomdb.MergeConflict) as info:
        kvdb.merge("a", into="b")
    (c,) = info.value.conflicts
    assert (c.kind, c.key) == ("update/delete", {"k": 7})
    assert (c.base, c.ours, c.theirs) == ({"k": 7, "a": 0, "b": 0}, {"k": 7, "a": 0, "b": 1}, None)
    kvdb.merge("a", into="b", on_conflict="theirs")
    assert 7 not in kv(b)


def test_delete_and_reinsert_of_a_key_merges_by_key(kvdb):
    # In a keyed table rows are matched by their key: a row deleted and inserted
    # again with the same key on the target is still "the row with k = 3".
    a, b = kvdb.branch("a"), kvdb.branch("b")
    b.execute("DELETE FROM kv WHERE k = 3")
    b.execute("INSERT INTO kv VALUES (3, 30, 3000)")  # b changes only column b
    a.execute("UPDATE kv SET a = -30 WHERE k = 3")  # a changes only column a
    kvdb.merge("a", into="b")
    assert kv(b)[3] == (-30, 3000)
    assert b.execute("SELECT count(*) FROM kv WHERE k = 3").fetchone()[0] == 1


def test_delete_and_reinsert_of_a_key_never_duplicates_it(kvdb):
    a, b = kvdb.branch("a"), kvdb.branch("b")
    b.execute("DELETE FROM kv WHERE k = 3")
    b.execute("INSERT INTO kv VALUES (3, 31, 3100)")
    a.execute("UPDATE kv SET a = -30, b = -300 WHERE k = 3")
    for policy in ("theirs", "ours"):
        try:
            kvdb.merge("a", into="b", on_conflict=policy)
        except loomdb.MergeConflict:  # pragma: no cover - a resolved merge must not raise
            pytest.fail(f"on_conflict={policy!r} raised MergeConflict")
        assert b.execute("SELECT count(*) FROM kv WHERE k = 3").fetchone()[0] == 1
        assert kv(b)[3] in {(31, 3100), (-30, -300)}


# -- merge after merge, directions, log ---------------------------------------------------


def test_merge_after_merge_applies_only_new_changes(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("UPDATE kv SET a = 1 WHERE k = 1")
    a.execute("INSERT INTO kv VALUES (5, 50, 500)")
    first = db.merge("a", into="main")
    assert first.tables["kv"] == loomdb.TableChanges(1, 1, 0)
    assert kv(db) == kv(a)

    # main changes rows after the merge that a does not touch again
    db.execute("UPDATE kv SET a = 2 WHERE k = 1")  # a row the first merge brought in
    db.execute("UPDATE kv SET b = 0 WHERE k = 5")
    db.execute("DELETE FROM kv WHERE k = 4")
    # a changes something else
    a.execute("UPDATE kv SET b = 3 WHERE k = 3")
    a.execute("INSERT INTO kv VALUES (6, 60, 600)")

    second = db.merge("a", into="main")  # no conflict: a did not touch k=1, 4 or 5 again
    assert second.commit is not None
    assert second.tables["kv"] == loomdb.TableChanges(added=1, modified=1, deleted=0)
    assert kv(db) == {1: (2, 100), 2: (20, 200), 3: (30, 3), 5: (50, 0), 6: (60, 600)}

    third = db.merge("a", into="main")
    assert third.commit is None
    assert kv(db) == {1: (2, 100), 2: (20, 200), 3: (30, 3), 5: (50, 0), 6: (60, 600)}


def test_merge_back_after_merge_in_the_other_direction(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("UPDATE kv SET a = 1 WHERE k = 1")
    db.merge("a", into="main")
    db.execute("UPDATE kv SET a = 2 WHERE k = 1")  # main changes the merged row again
    db.execute("INSERT INTO kv VALUES (7, 7, 7)")
    result = db.merge("main", into="a")  # base: the last merge between the two branches
    assert result.conflicts_resolved == 0
    assert kv(a) == kv(db)
    assert kv(a)[1] == (2, 100) and kv(a)[7] == (7, 7)


def test_merge_parent_into_child(kvdb):
    db = kvdb
    child = db.branch("run-1/child")
    child.execute("UPDATE kv SET a = -1 WHERE k = 1")
    db.execute("UPDATE kv SET b = -1 WHERE k = 1")
    db.execute("INSERT INTO kv VALUES (8, 8, 8)")
    main_before = (db.head, kv(db))
    result = db.merge("main", into="run-1/child")
    assert result.commit is not None and db.checkout("run-1/child").head == result.commit
    assert kv(child) == {1: (-1, -1), 2: (20, 200), 3: (30, 300), 4: (40, 400), 8: (8, 8)}
    assert (db.head, kv(db)) == main_before


def test_merge_between_siblings(kvdb):
    db = kvdb
    a, b = db.branch("a"), db.branch("b")
    a.execute("INSERT INTO kv VALUES (10, 1, 1)")
    b.execute("INSERT INTO kv VALUES (11, 2, 2)")
    b.execute("DELETE FROM kv WHERE k = 4")
    result = b.merge("a")  # into=None: b's handle merges into b
    assert result.tables["kv"] == loomdb.TableChanges(1, 0, 0)
    assert set(kv(b)) == {1, 2, 3, 10, 11}
    assert set(kv(a)) == {1, 2, 3, 4, 10}
    assert set(kv(db)) == {1, 2, 3, 4}


def test_merge_of_grandchild_and_fork_from_older_commit(kvdb):
    db = kvdb
    early = db.head
    db.execute("UPDATE kv SET a = 0 WHERE k = 2")
    c = db.branch("c", from_=early)  # forked before main's last change
    g = c.branch("c/g")
    g.execute("UPDATE kv SET b = 0 WHERE k = 2")
    c.execute("INSERT INTO kv VALUES (20, 2, 2)")
    db.merge("c/g", into="main")
    assert kv(db)[2] == (0, 0)
    assert 20 not in kv(db)
    db.merge("c", into="main")
    assert kv(db)[20] == (2, 2) and kv(db)[2] == (0, 0)


def test_merge_commit_has_two_parents_and_message(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (5, 5, 5)")
    a.execute("INSERT INTO kv VALUES (6, 6, 6)")
    db.execute("INSERT INTO kv VALUES (7, 7, 7)")
    main_head, a_head = db.head, a.head
    result = db.merge("a", into="main", message="take a", author="agent-9")
    top = db.log(limit=1)[0]
    assert top.id == result.commit == db.head
    assert top.parents == (main_head, a_head)
    assert top.message == "take a" and top.author == "agent-9" and top.branch == "main"
    ids = [c.id for c in db.log()]
    assert main_head in ids  # main's history continues below the merge commit
    # the source's log is unaffected
    assert a.log(limit=1)[0].id == a_head
    # as_of the merge commit and before it
    assert set(kv(db.as_of(result.commit))) == {1, 2, 3, 4, 5, 6, 7}
    assert set(kv(db.as_of(main_head))) == {1, 2, 3, 4, 7}


def test_merge_result_counts_per_table(kvdb):
    db = kvdb
    db.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)")
    db.executemany("INSERT INTO notes VALUES (%s, %s)", [(i, f"n{i}") for i in range(5)])
    a = db.branch("a")
    a.executemany("INSERT INTO kv VALUES (%s, %s, %s)", [(k, k, k) for k in range(10, 13)])
    a.execute("UPDATE kv SET a = 0 WHERE k IN (1, 2)")
    a.execute("DELETE FROM kv WHERE k = 4")
    a.execute("DELETE FROM notes WHERE id < 3")
    a.execute("UPDATE notes SET body = 'x' WHERE id = 4")
    result = db.merge("a")
    assert result.tables == {
        "kv": loomdb.TableChanges(added=3, modified=2, deleted=1),
        "notes": loomdb.TableChanges(added=0, modified=1, deleted=3),
    }
    assert (result.added, result.modified, result.deleted) == (3, 3, 4)
    assert result.conflicts_resolved == 0


def test_nothing_to_merge_returns_no_commit(kvdb):
    db = kvdb
    a = db.branch("a")  # no commit of its own
    head, log = db.head, [c.id for c in db.log()]
    result = db.merge("a")
    assert result.commit is None and result.tables.get("kv", loomdb.TableChanges(0, 0, 0)) == (0, 0, 0)
    assert (result.added, result.modified, result.deleted) == (0, 0, 0)
    assert db.head == head and [c.id for c in db.log()] == log
    # main moved on, a did not: merging a still brings nothing
    db.execute("INSERT INTO kv VALUES (5, 5, 5)")
    assert db.merge("a").commit is None
    assert 5 in kv(db)
    # after a real merge, merging again brings nothing
    a.execute("INSERT INTO kv VALUES (6, 6, 6)")
    assert db.merge("a").commit is not None
    head = db.head
    assert db.merge("a").commit is None and db.head == head


def test_change_and_undo_on_source_merges_as_nothing(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("UPDATE kv SET a = 0 WHERE k = 1")
    a.execute("UPDATE kv SET a = 10 WHERE k = 1")  # back to the base value
    db.execute("UPDATE kv SET a = 99 WHERE k = 1")
    db.merge("a")  # theirs == base: no conflict, ours kept
    assert kv(db)[1] == (99, 100)


# -- schema ---------------------------------------------------------------------------------


def test_table_created_on_source_appears_on_target(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, meta JSONB)")
    a.execute("INSERT INTO notes VALUES (1, 'hello', %s)", [{"tags": ["x"]}])
    a.execute("INSERT INTO notes VALUES (2, 'world', NULL)")
    result = db.merge("a")
    assert result.tables["notes"].added == 2
    assert [tuple(r) for r in db.execute("SELECT id, body, meta FROM notes ORDER BY id").fetchall()] == [
        (1, "hello", {"tags": ["x"]}),
        (2, "world", None),
    ]
    # the table is a real table on main now: constraints hold and writes work
    db.execute("INSERT INTO notes VALUES (3, 'more', NULL)")
    with pytest.raises(loomdb.IntegrityError):
        db.execute("INSERT INTO notes VALUES (1, 'dup', NULL)")
    assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 3


def test_column_added_on_source_appears_on_target_with_values(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("ALTER TABLE kv ADD COLUMN note TEXT")
    a.execute("UPDATE kv SET note = 'n' || k WHERE k <= 2")
    a.execute("INSERT INTO kv (k, a, b, note) VALUES (5, 5, 5, 'five')")
    db.execute("INSERT INTO kv VALUES (6, 6, 6)")  # a row only main has
    db.execute("UPDATE kv SET b = 0 WHERE k = 3")
    db.merge("a")
    got = {r["k"]: (r["a"], r["b"], r["note"]) for r in db.execute("SELECT k, a, b, note FROM kv").fetchall()}
    assert got == {
        1: (10, 100, "n1"),
        2: (20, 200, "n2"),
        3: (30, 0, None),
        4: (40, 400, None),
        5: (5, 5, "five"),
        6: (6, 6, None),
    }
    db.execute("UPDATE kv SET note = 'main' WHERE k = 6")
    assert db.execute("SELECT note FROM kv WHERE k = 6").fetchone()[0] == "main"


# -- JSONB and VECTOR cells ------------------------------------------------------------------


@pytest.fixture
def richdb(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE mem (id INT PRIMARY KEY, emb VECTOR(4), meta JSONB, n INT)")
    db.execute("INSERT INTO mem VALUES (1, %s, %s, 0)", [[1, 2, 3, 4], {"a": 1, "b": [1, 2]}])
    db.execute("INSERT INTO mem VALUES (2, %s, %s, 0)", [[0, 0, 0, 0], {"x": None}])
    return db


def mem(handle):
    return {
        r["id"]: (tuple(float(x) for x in r["emb"]), r["meta"], r["n"])
        for r in handle.execute("SELECT * FROM mem").fetchall()
    }


def test_vector_and_jsonb_changes_on_different_columns_merge(richdb):
    db = richdb
    a, b = db.branch("a"), db.branch("b")
    a.execute("UPDATE mem SET emb = %s WHERE id = 1", [np.array([0.5, 0.25, -1, 8], dtype=np.float32)])
    b.execute("UPDATE mem SET meta = %s WHERE id = 1", [{"a": 2, "b": [1, 2, 3], "c": {"d": "é"}}])
    db.merge("a", into="b")
    assert mem(b)[1] == ((0.5, 0.25, -1.0, 8.0), {"a": 2, "b": [1, 2, 3], "c": {"d": "é"}}, 0)


def test_equal_vector_and_jsonb_values_on_both_sides_are_not_conflicts(richdb):
    db = richdb
    a, b = db.branch("a"), db.branch("b")
    # the same values, passed as different Python objects (list vs array, dict order)
    a.execute("UPDATE mem SET emb = %s, meta = %s WHERE id = 1", [[9, 8, 7, 6], {"b": 2, "a": [1]}])
    b.execute(
        "UPDATE mem SET emb = %s, meta = %s WHERE id = 1",
        [np.array([9, 8, 7, 6], dtype=np.float32), {"a": [1], "b": 2}],
    )
    b.execute("UPDATE mem SET n = 1 WHERE id = 1")
    result = db.merge("a", into="b")
    assert result.conflicts_resolved == 0
    assert mem(b)[1] == ((9.0, 8.0, 7.0, 6.0), {"a": [1], "b": 2}, 1)


def test_different_vector_and_jsonb_values_conflict(richdb):
    db = richdb
    a, b = db.branch("a"), db.branch("b")
    a.execute("UPDATE mem SET emb = %s, meta = %s WHERE id = 2", [[1, 1, 1, 1], {"x": 1}])
    b.execute("UPDATE mem SET emb = %s, meta = %s WHERE id = 2", [[2, 2, 2, 2], {"x": 1}])
    with pytest.raises(loomdb.MergeConflict) as info:
        db.merge("a", into="b")
    (c,) = info.value.conflicts
    assert c.key == {"id": 2} and tuple(c.columns) == ("emb",)
    assert [float(x) for x in c.ours["emb"]] == [2, 2, 2, 2]
    assert [float(x) for x in c.theirs["emb"]] == [1, 1, 1, 1]
    assert c.ours["meta"] == c.theirs["meta"] == {"x": 1}
    assert c.base["meta"] == {"x": None}

    db.merge("a", into="b", on_conflict="theirs")
    assert mem(b)[2] == ((1.0, 1.0, 1.0, 1.0), {"x": 1}, 0)
    assert isinstance(b.execute("SELECT emb FROM mem WHERE id = 2").fetchone()[0], np.ndarray)


# -- errors -----------------------------------------------------------------------------------


def test_merging_a_branch_into_itself_is_an_error(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (5, 5, 5)")
    before = state_of(db, ["main", "a"])
    with pytest.raises(loomdb.Error):
        db.merge("main")
    with pytest.raises(loomdb.Error):
        db.merge("a", into="a")
    assert state_of(db, ["main", "a"]) == before


def test_merging_a_missing_branch_raises_branch_not_found(kvdb):
    db = kvdb
    db.branch("a").execute("INSERT INTO kv VALUES (5, 5, 5)")
    before = state_of(db, ["main", "a"])
    with pytest.raises(loomdb.BranchNotFoundError):
        db.merge("no-such-branch")
    with pytest.raises(loomdb.BranchNotFoundError):
        db.merge("a", into="no-such-branch")
    assert state_of(db, ["main", "a"]) == before
    assert not any(b.name == "no-such-branch" for b in db.branches())


def test_merge_through_a_read_only_handle_fails(kvdb):
    db = kvdb
    a = db.branch("a")
    a.execute("INSERT INTO kv VALUES (5, 5, 5)")
    old = db.as_of(db.head)
    with pytest.raises(loomdb.ReadOnlyError):
        old.merge("a")
    assert 5 not in kv(db)
