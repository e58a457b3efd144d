"""execute_batch() runs write statements as one commit, with the key lookups of its
INSERTs sent ahead (with BEGIN on PostgreSQL); the result must be exactly that of
executemany() per statement inside transaction(savepoints=False)."""

from __future__ import annotations

import random
import threading

import pytest

import loomdb
from tests.test_executemany import STATEMENTS, contents, make_tables
from tests.test_executemany import outcome as shared_outcome


def outcome(run) -> tuple[str, object]:
    """What ``run`` did: its rowcounts, or the error it raised (type and message)."""
    return shared_outcome(run, {"_ref": "", "_got": ""})


@pytest.mark.parametrize("on_branch", [False, True], ids=["main", "branch"])
def test_a_batch_does_what_executemany_per_statement_in_one_transaction_does(fresh_db, on_branch):
    """Random batches over two tables, an INSERT into a table more than once, and an
    UPDATE or DELETE between INSERTs (keys looked up ahead must not go stale)."""
    db = fresh_db
    names = ("a_ref", "b_ref", "a_got", "b_got")
    make_tables(db, names)
    if on_branch:  # keys are looked up through a branch view with rows of its own
        db = db.branch("work")
        for t in names:
            db.execute(f"DELETE FROM {t} WHERE k = 2")
            db.execute(f"INSERT INTO {t} VALUES (4, 'b', 400)")
    others = {
        "update": "UPDATE {t} SET k = k + 1 WHERE k = %s",
        "delete": "DELETE FROM {t} WHERE k = %s",
    }
    rng = random.Random(f"batch-{on_branch}")
    for round_ in range(40):
        batch = []
        for _ in range(rng.randint(1, 4)):
            table = rng.choice("ab")
            if rng.random() < 0.2:
                sql = others[rng.choice(sorted(others))]
                sets = [(rng.randint(1, 6),)]
            else:
                sql = STATEMENTS[rng.choice(sorted(STATEMENTS))]
                sets = [
                    (rng.randint(1, 6), rng.choice("ab"), rng.randint(1, 9)) for _ in range(rng.randint(1, 4))
                ]
            batch.append((table, sql, sets))

        def reference(batch=batch):
            with db.transaction(savepoints=False):
                return [db.executemany(sql.format(t=f"{t}_ref"), sets).rowcount for t, sql, sets in batch]

        expected = outcome(reference)
        head = db.head
        got = outcome(
            lambda batch=batch: [
                c.rowcount
                for c in db.execute_batch([(sql.format(t=f"{t}_got"), sets) for t, sql, sets in batch])
            ]
        )
        assert got == expected, (round_, batch)
        if got[0] != "ok":
            assert db.head == head  # a failed batch leaves no commit behind
        for t in "ab":
            assert contents(db, f"{t}_got") == contents(db, f"{t}_ref"), (round_, batch)


def test_an_insert_after_a_delete_or_update_in_a_batch_sees_what_they_changed(fresh_db):
    """Keys looked up ahead are those before the batch: a DELETE or UPDATE earlier in
    the batch changes them, and a later INSERT must meet the changed keys."""
    db = fresh_db
    make_tables(db, ("t",))
    ins = "INSERT INTO t VALUES (%s, %s, %s)"
    cursors = db.execute_batch(
        [
            ("DELETE FROM t WHERE k = %s", [(1,)]),
            (ins, [(1, "a", 111)]),  # its key was freed by the DELETE
            ("UPDATE t SET k = 9 WHERE k = %s", [(3,)]),
            (ins, [(3, "a", 333)]),  # freed by the UPDATE
        ]
    )
    assert [c.rowcount for c in cursors] == [1, 1, 1, 1]
    assert contents(db, "t") == [(1, "a", 111), (2, "b", 200), (3, "a", 333), (9, "a", 300)]
    with pytest.raises(loomdb.IntegrityError, match="duplicate key"):
        db.execute_batch([("UPDATE t SET k = 5 WHERE k = %s", [(2,)]), (ins, [(5, "b", 0)])])
    assert contents(db, "t") == [(1, "a", 111), (2, "b", 200), (3, "a", 333), (9, "a", 300)]


def test_a_batch_is_one_commit_and_a_failing_statement_undoes_all_of_it(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, note TEXT)")
    db.execute("CREATE TABLE steps (run_id TEXT, step INT, body JSONB, PRIMARY KEY (run_id, step))")
    head = db.head
    cursors = db.execute_batch(
        [
            ("INSERT INTO runs VALUES (%s, %s)", [("r1", "first")]),
            ("INSERT INTO steps VALUES (%s, %s, %s)", [("r1", i, {"i": i}) for i in range(3)]),
        ]
    )
    assert [c.rowcount for c in cursors] == [1, 3]
    log = db.log(limit=2)
    assert log[1].id == head  # one commit for the whole batch
    with pytest.raises(loomdb.IntegrityError, match="duplicate key"):
        db.execute_batch(
            [
                ("INSERT INTO steps VALUES (%s, %s, %s)", [("r1", 3, {}), ("r1", 4, {})]),
                ("INSERT INTO runs VALUES (%s, %s)", [("r1", "again")]),
            ]
        )
    assert db.head == log[0].id
    assert db.execute("SELECT count(*) FROM steps").fetchone()[0] == 3
    # The handle goes on at once.
    db.execute_batch([("INSERT INTO steps VALUES (%s, %s, %s)", [("r1", 3, {})])])
    assert db.execute("SELECT max(step) FROM steps").fetchone()[0] == 3


def test_a_batch_inside_a_transaction_joins_it(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE t (k INT PRIMARY KEY)")
    head = db.head
    with pytest.raises(KeyError), db.transaction():
        db.execute_batch([("INSERT INTO t VALUES (%s)", [(1,), (2,)])])
        assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 2
        raise KeyError("the block fails")
    assert db.head == head and db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with db.transaction(message="both"):
        db.execute_batch([("INSERT INTO t VALUES (%s)", [(1,)])])
        db.execute("INSERT INTO t VALUES (2)")
    assert db.log(limit=1)[0].message == "both" and db.log(limit=2)[1].id == head


def test_a_batch_refuses_queries_and_bad_input_and_changes_nothing(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE t (k INT PRIMARY KEY)")
    head = db.head
    with pytest.raises(loomdb.ProgrammingError, match="execute_batch"):
        db.execute_batch([("INSERT INTO t VALUES (%s)", [(1,)]), ("SELECT * FROM t", [()])])
    with pytest.raises(loomdb.ProgrammingError, match="SQL must be a str"):
        db.execute_batch([(b"INSERT INTO t VALUES (1)", [()])])
    with pytest.raises(loomdb.ProgrammingError):
        db.execute_batch([("INSERT INTO t VALUES (%s)", [(1, 2)])])  # one parameter too many
    with pytest.raises(loomdb.ProgrammingError):
        db.execute_batch([("INSERT INTO t VALUES (", [()])])
    assert db.head == head and db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert db.execute_batch([]) == []
    assert db.head == head


def round_trips(db: loomdb.Database) -> list[int]:
    """Counts the round trips of ``db``'s PostgreSQL connection from now on."""
    wire = db._conn.store.backend._wire
    counted = [0]
    run = wire.run

    def counting(statements):
        counted[0] += 1
        return run(statements)

    wire.run = counting
    return counted


def test_on_postgresql_a_batch_of_inserts_is_two_round_trips(pg_store):
    with loomdb.connect(pg_store()) as db:
        db.execute("CREATE TABLE a (k TEXT PRIMARY KEY, v BYTEA)")
        db.execute("CREATE TABLE b (k TEXT, n INT, v JSONB, PRIMARY KEY (k, n))")
        db.execute("INSERT INTO a VALUES ('old', NULL)")
        counted = round_trips(db)
        cursors = db.execute_batch(
            [
                ("INSERT INTO a VALUES (%s, %s) ON CONFLICT DO NOTHING", [("old", b"x"), ("new", b"y")]),
                ("INSERT INTO b VALUES (%s, %s, %s)", [("new", n, {"n": n}) for n in range(3)]),
            ]
        )
        assert counted[0] == 2  # BEGIN with every key lookup; the writes with COMMIT
        assert [c.rowcount for c in cursors] == [1, 3]
        assert [tuple(r) for r in db.execute("SELECT k, v FROM a ORDER BY k")] == [
            ("new", b"y"),
            ("old", None),
        ]


@pytest.mark.parametrize("on_branch", [False, True], ids=["main", "branch"])
def test_a_batch_of_do_nothing_inserts_does_what_executemany_does(fresh_db, on_branch):
    """On PostgreSQL such a batch is one round trip, the server deciding which rows
    are new: duplicates within the batch, rows on the branch, rows inherited."""
    db = fresh_db
    names = ("a_ref", "b_ref", "a_got", "b_got")
    make_tables(db, names)
    if on_branch:
        db = db.branch("work")
        for t in names:
            db.execute(f"DELETE FROM {t} WHERE k = 2")
            db.execute(f"INSERT INTO {t} VALUES (4, 'b', 400)")
    sql = STATEMENTS["do nothing"]
    rng = random.Random(f"do-nothing-{on_branch}")
    for round_ in range(30):
        batch = [
            (
                rng.choice("ab"),
                [(rng.randint(1, 8), rng.choice("ab"), rng.randint(1, 9)) for _ in range(rng.randint(1, 4))],
            )
            for _ in range(rng.randint(1, 3))
        ]

        def reference(batch=batch):
            with db.transaction(savepoints=False):
                return [db.executemany(sql.format(t=f"{t}_ref"), sets).rowcount for t, sets in batch]

        expected = outcome(reference)
        head = db.head
        got = outcome(
            lambda batch=batch: [
                c.rowcount for c in db.execute_batch([(sql.format(t=f"{t}_got"), sets) for t, sets in batch])
            ]
        )
        assert got == expected, (round_, batch)
        if not any(got[1]):
            assert db.head == head  # nothing inserted: no commit
        else:
            assert db.log(limit=2)[1].id == head  # one commit
        for t in "ab":
            assert contents(db, f"{t}_got") == contents(db, f"{t}_ref"), (round_, batch)


def test_a_large_batch_with_repeated_keys_counts_each_new_key_once(fresh_db):
    """More rows than one INSERT carries, every key twice, some already stored."""
    db = fresh_db
    db.execute("CREATE TABLE t (k INT PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t VALUES (%s, %s)", [(k, "old") for k in range(0, 1300, 13)])
    rows = [(k, f"v{k}-{n}") for n in range(2) for k in range(1300)]
    (cursor,) = db.execute_batch([("INSERT INTO t VALUES (%s, %s) ON CONFLICT DO NOTHING", rows)])
    assert cursor.rowcount == 1300 - 100
    stored = dict(tuple(r) for r in db.execute("SELECT k, v FROM t"))
    assert len(stored) == 1300
    assert all(stored[k] == ("old" if k % 13 == 0 else f"v{k}-0") for k in range(1300))


def test_on_postgresql_a_batch_of_do_nothing_inserts_is_one_round_trip(pg_store):
    with loomdb.connect(pg_store()) as db:
        db.execute("CREATE TABLE a (k TEXT PRIMARY KEY, v BYTEA, at TIMESTAMPTZ DEFAULT now())")
        db.execute("CREATE TABLE b (k TEXT, n INT, v JSONB, PRIMARY KEY (k, n))")
        db.execute("INSERT INTO a (k) VALUES ('old')")
        head = db.head
        counted = round_trips(db)
        cursors = db.execute_batch(
            [
                (
                    "INSERT INTO a (k, v) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    [("old", b"x"), ("new", b"y"), ("new", b"z")],
                ),
                (
                    "INSERT INTO b VALUES (%s, %s, %s) ON CONFLICT (k, n) DO NOTHING",
                    [("new", n, {"n": n}) for n in range(3)],
                ),
            ]
        )
        assert counted[0] == 1
        assert [c.rowcount for c in cursors] == [1, 3]
        assert db.log(limit=2)[1].id == head
        rows = [tuple(r) for r in db.execute("SELECT k, v, at IS NOT NULL FROM a ORDER BY k")]
        assert rows == [("new", b"y", True), ("old", None, True)]
        assert db.execute("SELECT v FROM b WHERE n = 2").fetchone()[0] == {"n": 2}
        # Nothing new: rolled back (the batch, then ROLLBACK: no commit, no WAL flush).
        head, commits = db.head, len(db.log())
        counted[0] = 0
        cursors = db.execute_batch(
            [("INSERT INTO a (k) VALUES (%s) ON CONFLICT DO NOTHING", [("old",), ("new",)])]
        )
        assert counted[0] == 2 and cursors[0].rowcount == 0
        assert db.head == head and len(db.log()) == commits
        # And the connection goes on: the next batch commits.
        assert (
            db.execute_batch([("INSERT INTO a (k) VALUES (%s) ON CONFLICT DO NOTHING", [("newer",)])])[
                0
            ].rowcount
            == 1
        )
        assert db.head != head


def test_on_postgresql_one_insert_that_skips_or_cannot_clash_is_one_round_trip(pg_store):
    """Run.persist (ON CONFLICT DO NOTHING) and a plain INSERT into a table without
    keys, outside a transaction; a plain INSERT into a keyed table stays two (a
    taken key is an error there)."""
    with loomdb.connect(pg_store()) as db:
        run = db.run("r1")
        run.persist(0, action="start")  # creates the table
        db.execute("CREATE TABLE log (note TEXT, at TIMESTAMPTZ DEFAULT now())")
        db.execute("CREATE TABLE keyed (k INT PRIMARY KEY)")
        run.persist(1, action="warm")  # the schema, changed above, is read again
        db.execute("INSERT INTO log (note) VALUES ('warm')")
        db.execute("INSERT INTO keyed VALUES (0)")
        counted = round_trips(db)
        assert run.persist(2, action="go", embedding=[0.5] * 1536) is True
        assert counted[0] == 1
        assert run.persist(2, action="go", embedding=[0.5] * 1536) is False  # idempotent: a read confirms
        counted[0] = 0
        assert db.execute("INSERT INTO log (note) VALUES (%s)", ["x"]).rowcount == 1
        assert counted[0] == 1
        counted[0] = 0
        db.execute("INSERT INTO keyed VALUES (1)")
        assert counted[0] == 2
        with pytest.raises(loomdb.IntegrityError, match="duplicate key"):
            db.execute("INSERT INTO keyed VALUES (1)")
        actions = [r["action"] for r in db.execute("SELECT action FROM iterations ORDER BY step")]
        assert actions == ["start", "warm", "go"]
        notes = db.execute("SELECT note, at IS NOT NULL FROM log ORDER BY note").fetchall()
        assert [tuple(r) for r in notes] == [("warm", True), ("x", True)]


def test_on_postgresql_a_one_trip_batch_meets_a_schema_changed_meanwhile_and_server_errors(pg_store):
    """A batch planned on a schema another connection has changed since inserts
    nothing that way and runs the usual way; a value the server refuses rolls the
    batch back and is reported as usual."""
    url = pg_store()
    with loomdb.connect(url) as db, loomdb.connect(url) as other:
        db.execute("CREATE TABLE t (k INT PRIMARY KEY, n INT)")
        ins = "INSERT INTO t (k, n) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        db.execute_batch([(ins, [(1, 1)])])  # plans and caches the statement
        other.execute("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'fresh'")
        counted = round_trips(db)
        cursors = db.execute_batch([(ins, [(1, 9), (2, 2)])])
        assert counted[0] > 1  # the one-trip try inserted nothing; the usual path (schema reloaded) did
        assert cursors[0].rowcount == 1
        assert [tuple(r) for r in db.execute("SELECT k, n, note FROM t ORDER BY k")] == [
            (1, 1, "fresh"),  # as in PostgreSQL, ADD COLUMN ... DEFAULT fills the rows there
            (2, 2, "fresh"),
        ]
        head = db.head
        with pytest.raises(loomdb.DataError, match="out of range"):
            db.execute_batch([(ins, [(3, 3), (4, 2**40)])])  # integer: PostgreSQL refuses 2**40
        assert db.head == head and db.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_on_postgresql_keys_looked_up_with_begin_see_the_writer_before(pg_store):
    """The lookups run after the branch lock: a writer holding it, which inserts a
    key, is seen by a batch queued behind it."""
    url = pg_store()
    with loomdb.connect(url) as db:
        db.execute("CREATE TABLE steps (run_id TEXT, step INT, note TEXT, PRIMARY KEY (run_id, step))")
    first, second = loomdb.connect(url), loomdb.connect(url)
    locked, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def hold() -> None:
        with first.transaction():
            first.execute("INSERT INTO steps VALUES ('r1', 7, 'first')")
            locked.set()
            release.wait(30)

    def batch() -> None:
        try:
            cursors = second.execute_batch(
                [
                    (
                        "INSERT INTO steps VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        [("r1", 7, "second"), ("r1", 8, "second")],
                    )
                ]
            )
            outcome["rowcount"] = cursors[0].rowcount
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            outcome["error"] = exc

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(30)
    waiter = threading.Thread(target=batch)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # queued behind the branch lock
    release.set()
    holder.join(30)
    waiter.join(30)
    assert outcome == {"rowcount": 1}
    rows = [tuple(r) for r in second.execute("SELECT step, note FROM steps ORDER BY step")]
    assert rows == [(7, "first"), (8, "second")]
    first.close()
    second.close()
