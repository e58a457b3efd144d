"""The store file itself: format version, reopening, refusing what is not ours."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import uuid

import apsw
import psycopg
import pytest

import loomdb


def digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def store_exists(location: str) -> bool:
    """Whether a store location (a file path, or a postgresql:// URL with ?schema=) exists."""
    if location.startswith("postgresql://"):
        url, _, schema = location.partition("?schema=")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
        return row is not None
    return os.path.exists(location)


def test_a_store_from_a_newer_format_is_refused_and_left_untouched(sqlite_path):
    # SQLite only: the format record is rewritten in the file with apsw and
    # the file's bytes are compared; the PostgreSQL analogue follows.
    db = loomdb.connect(sqlite_path)
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()
    raw = apsw.Connection(sqlite_path)
    raw.execute("UPDATE loom_meta SET value = '99' WHERE key = 'format'")
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    before = digest(sqlite_path)
    with pytest.raises(loomdb.StoreVersionError, match="format 99"):
        loomdb.connect(sqlite_path)
    assert digest(sqlite_path) == before


def schema_digest(conn, schema: str) -> str:
    """A digest of every relation in ``schema`` and every table's rows."""
    h = hashlib.sha256()
    names = conn.execute(
        "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s ORDER BY 1",
        [schema],
    ).fetchall()
    for name, kind in names:
        h.update(f"{name}:{kind}\n".encode())
        if kind == "r":
            for (row,) in sorted(conn.execute(f'SELECT t::text FROM "{schema}"."{name}" t').fetchall()):
                h.update(row.encode() + b"\n")
    return h.hexdigest()


def test_a_postgresql_store_from_a_newer_format_is_refused_and_left_untouched(pg_url):
    # PostgreSQL only: the analogue of the SQLite test above, on a schema.
    schema = f"newer_{uuid.uuid4().hex[:12]}"
    url = f"{pg_url}?schema={schema}"
    db = loomdb.connect(url)
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            conn.execute(f"UPDATE \"{schema}\".loom_meta SET value = '99' WHERE key = 'format'")
            before = schema_digest(conn, schema)
            with pytest.raises(loomdb.StoreVersionError, match="format 99"):
                loomdb.connect(url)
            assert schema_digest(conn, schema) == before
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_directory_is_refused_with_an_operational_error(tmp_path):
    # SQLite only: a directory where the store file should be.
    with pytest.raises(loomdb.OperationalError, match="directory"):
        loomdb.connect(str(tmp_path))


def test_unknown_durability_is_refused(store_path):
    with pytest.raises(loomdb.ProgrammingError, match="durability"):
        loomdb.connect(store_path, durability="sometimes")
    assert not store_exists(store_path)  # no file, no schema


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


def test_processes_creating_one_new_store_at_once_all_succeed(new_store):
    """Creation races: one process commits the new catalog (on SQLite: switches
    the new file to WAL) while others are between their checks; the latecomers
    must open the store, not call it foreign or give up on a lock. The race is
    run on several new stores, one after another, by the same processes."""
    paths = [new_store(f"race{i}") for i in range(RACES)]
    # All processes connect to each store at the same instant, after their (slow) imports.
    code = (
        "import sys, time, loomdb\n"
        "start = float(sys.argv[1])\n"
        "for i, path in enumerate(sys.argv[2:]):\n"
        "    while time.time() < start + 0.5 * i: pass\n"
        "    db = loomdb.connect(path)\n"
        "    db.execute('CREATE TABLE IF NOT EXISTS t (a INT)')\n"
        "    db.execute('INSERT INTO t VALUES (1)')\n"
        "    db.close()\n"
    )
    start = str(time.time() + 2.0)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, start, *paths], stderr=subprocess.PIPE)
        for _ in range(RACERS)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    for path in paths:
        db = loomdb.connect(path)
        assert db.execute("SELECT count(*) FROM t").fetchone()[0] == RACERS
        assert [b.name for b in db.branches()] == ["main"]
        db.close()


RACES = 6  # new stores raced for, one after another
RACERS = 8  # processes racing for each


def test_explain_shows_the_branch_view_and_the_plan(fresh_db, engine):
    fresh_db.execute("CREATE TABLE runs (run_id TEXT, step INT)")
    fresh_db.execute("CREATE INDEX runs_by_step ON runs (run_id, step)")
    branch = fresh_db.branch("b")
    text = branch.explain("SELECT step FROM runs WHERE run_id = %s ORDER BY step DESC LIMIT 1", ["r"])
    assert "SQL:" in text and "PLAN:" in text
    sql, plan = text.split("PLAN:", 1)
    assert "NOT EXISTS" in sql  # the shadow check of the parent's rows
    assert "runs_by_step" in plan  # the user's index drives the lookup
    # ... and delivers the order: no sort step. Each engine names its plan
    # nodes in its own words.
    if engine == "sqlite":
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert not re.search(r"\bSort\b", plan), plan


def test_pep249_module_globals():
    assert loomdb.apilevel == "2.0"
    assert loomdb.paramstyle == "pyformat"
    assert loomdb.threadsafety >= 1
    assert issubclass(loomdb.BranchNotFoundError, loomdb.ProgrammingError)
    assert issubclass(loomdb.NotALoomStoreError, loomdb.DatabaseError)
    assert issubclass(loomdb.DatabaseError, loomdb.Error)


def test_schema_changes_by_another_connection_are_seen_by_the_next_statement(store_path):
    """A handle caches compiled queries per schema version; DDL committed
    elsewhere must reach its very next query and write."""
    with loomdb.connect(store_path) as mine, loomdb.connect(store_path) as theirs:
        mine.execute("CREATE TABLE t (id INT PRIMARY KEY, a TEXT)")
        mine.execute("INSERT INTO t VALUES (1, 'x')")
        assert mine.execute("SELECT * FROM t").fetchall() == [(1, "x")]  # compiled and cached
        assert [d[0] for d in mine.execute("SELECT * FROM t WHERE id = 99").description] == ["id", "a"]
        union = "SELECT * FROM t UNION ALL SELECT * FROM t WHERE id < 0"
        assert [d[0] for d in mine.execute(union).description] == ["id", "a"]
        theirs.execute("ALTER TABLE t ADD COLUMN b INT DEFAULT 7")
        # A query with no rows and a set operation learn of it as well.
        assert [d[0] for d in mine.execute("SELECT * FROM t WHERE id = 99").description] == ["id", "a", "b"]
        assert mine.execute(union).fetchall() == [(1, "x", 7)]
        theirs.execute("CREATE TABLE u (k TEXT)")
        assert mine.execute("SELECT * FROM t").fetchall() == [(1, "x", 7)]
        assert mine.execute("SELECT count(*) FROM u").fetchone()[0] == 0
        mine.execute("INSERT INTO t (id, a) VALUES (2, 'y')")
        assert theirs.execute("SELECT id, b FROM t ORDER BY id").fetchall() == [(1, 7), (2, 7)]
        theirs.execute("ALTER TABLE t RENAME COLUMN a TO label")
        assert [d[0] for d in mine.execute("SELECT * FROM t").description] == ["id", "label", "b"]
        theirs.execute("DROP TABLE u")
        with pytest.raises(loomdb.ProgrammingError, match="u"):
            mine.execute("SELECT * FROM u")


@pytest.mark.parametrize(
    "text", ["it's", 'say "hi"', "back\\slash", "semi; DROP TABLE t; --", "%s %(x)s $1 ?", "üñï €", "\t\n"]
)
def test_commit_messages_and_authors_are_stored_verbatim(store_path, text):
    with loomdb.connect(store_path) as db:
        db.execute("CREATE TABLE t (x INT)")
        with db.transaction(message=text, author=text):
            db.execute("INSERT INTO t VALUES (1)")
        commit = db.log(limit=1)[0]
        assert (commit.message, commit.author) == (text, text)
        assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_serial_columns_count_up_across_branches_and_after_explicit_values(store_path):
    with loomdb.connect(store_path) as db:
        db.execute("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO notes (body) VALUES ('a'), ('b')")
        db.execute("INSERT INTO notes (id, body) VALUES (10, 'explicit')")
        db.execute("INSERT INTO notes (body) VALUES ('c')")
        other = db.branch("other")
        other.execute("INSERT INTO notes (body) VALUES ('on a branch')")
        db.execute("INSERT INTO notes (body) VALUES ('d')")
        main_ids = [r[0] for r in db.execute("SELECT id FROM notes ORDER BY id")]
        branch_ids = [r[0] for r in other.execute("SELECT id FROM notes WHERE body = 'on a branch'")]
        assert main_ids[:3] == [1, 2, 10] and main_ids[3] > 10 and main_ids[4] > main_ids[3]
        # One counter for the table: the branch's row took a number main never reuses.
        assert branch_ids[0] > 10 and branch_ids[0] not in main_ids
        with pytest.raises(loomdb.IntegrityError):
            db.execute("INSERT INTO notes (id, body) VALUES (1, 'clash')")
        db.execute("INSERT INTO notes (body) VALUES ('e')")
        ids = [r[0] for r in db.execute("SELECT id FROM notes ORDER BY id")]
        assert len(ids) == len(set(ids)) == 6 and ids[-1] > main_ids[-1]


def test_stores_with_different_schemas_never_share_compiled_queries(new_store):
    """Connections share compiled statements when their schema histories are
    identical; any difference (column order, types, a later ALTER) keeps them apart."""
    first, second = loomdb.connect(new_store()), loomdb.connect(new_store())
    try:
        first.execute("CREATE TABLE t (a INT, b TEXT)")
        second.execute("CREATE TABLE t (b TEXT, a INT)")
        first.execute("INSERT INTO t VALUES (1, 'x')")
        second.execute("INSERT INTO t VALUES ('y', 2)")
        query = "SELECT * FROM t WHERE a > %s"
        assert [tuple(r) for r in first.execute(query, [0])] == [(1, "x")]
        assert [tuple(r) for r in second.execute(query, [0])] == [("y", 2)]
        second.execute("ALTER TABLE t ADD COLUMN c INT DEFAULT 7")
        assert [tuple(r) for r in second.execute(query, [0])] == [("y", 2, 7)]
        assert [tuple(r) for r in first.execute(query, [0])] == [(1, "x")]
        # The same history as `first`, in a third store: the same answers.
        with loomdb.connect(new_store()) as third:
            third.execute("CREATE TABLE t (a INT, b TEXT)")
            third.execute("INSERT INTO t VALUES (5, 'z')")
            assert [tuple(r) for r in third.execute(query, [0])] == [(5, "z")]
    finally:
        first.close()
        second.close()
