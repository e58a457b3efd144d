"""What only the PostgreSQL engine has: schemas, native types, pgvector's
indexes and extension handling, branch locks, synchronous_commit.

Everything engine-independent is in the conformance suite (the tests that
take ``store_path`` / ``fresh_db`` run on both engines); these tests check
PostgreSQL machinery itself, so they take ``pg_url``.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import loomdb


@pytest.fixture
def schemas(pg_store):
    """Fresh schema names, dropped after the test."""
    return pg_store.schema


def _admin(pg_url: str) -> psycopg.Connection:
    return psycopg.connect(pg_url, autocommit=True)


@contextlib.contextmanager
def transaction_held_open(db: loomdb.Database, sql: str) -> Iterator[None]:
    """Run ``sql`` in a transaction of ``db`` on another thread and keep that
    transaction (and its branch lock) open until the with-block ends; then it commits."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction():
            db.execute(sql)
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(30)
        yield
    finally:
        release.set()
        thread.join(30)


def test_stores_in_two_schemas_of_one_database_are_independent(pg_url, schemas):
    first, second = schemas(), schemas()
    with loomdb.connect(f"{pg_url}?schema={first}") as a, loomdb.connect(pg_url, schema=second) as b:
        a.execute("CREATE TABLE t (x INT)")
        a.execute("INSERT INTO t VALUES (1)")
        b.execute("CREATE TABLE t (x INT)")
        b.branch("only-in-b")
        assert a.execute("SELECT count(*) FROM t").fetchone()[0] == 1
        assert b.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        assert [br.name for br in a.branches()] == ["main"]
    with _admin(pg_url) as conn:
        tables = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN (%s, %s)", (first, second)
            )
        }
    assert (first, "loom_commits") in tables and (second, "loom_commits") in tables


def test_schema_argument_and_url_must_agree(pg_url, schemas):
    name = schemas()
    with loomdb.connect(f"{pg_url}?schema={name}", schema=name) as db:
        assert db.execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(loomdb.ProgrammingError, match="contradicts"):
        loomdb.connect(f"{pg_url}?schema={name}", schema="other")
    with pytest.raises(loomdb.ProgrammingError, match="invalid schema name"):
        loomdb.connect(pg_url, schema='x"; DROP TABLE y; --')
    with pytest.raises(loomdb.ProgrammingError, match="reserves"):
        loomdb.connect(pg_url, schema="pg_mine")


def test_columns_are_native_postgresql_types(pg_url, schemas):
    name = schemas()
    with loomdb.connect(pg_url, schema=name) as db:
        db.execute(
            "CREATE TABLE iterations (run_id TEXT, step INT, big BIGINT, embedding VECTOR(3), state JSONB,"
            " at TIMESTAMP, seen TIMESTAMPTZ, cost NUMERIC, ok BOOLEAN, id UUID, raw BYTEA, score REAL)"
        )
    with _admin(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c"
                " JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || c.table_name)::regclass"
                " AND a.attname = c.column_name WHERE c.table_schema = %s AND c.table_name = 'loom_t1'",
                (name,),
            ).fetchall()
        )
    assert types["run_id"] == "text"
    assert types["step"] == "integer" and types["big"] == "bigint"
    assert types["embedding"] == "vector(3)"
    assert types["state"] == "jsonb"
    assert types["at"] == "timestamp without time zone" and types["seen"] == "timestamp with time zone"
    assert types["cost"] == "numeric" and types["ok"] == "boolean" and types["id"] == "uuid"
    assert types["raw"] == "bytea" and types["score"] == "real"


def test_hnsw_index_is_built_by_pgvector_and_serves_top_k(pg_url, schemas):
    name = schemas()
    with loomdb.connect(pg_url, schema=name) as db:
        db.execute("CREATE TABLE items (id INT PRIMARY KEY, embedding VECTOR(3))")
        db.executemany(
            "INSERT INTO items VALUES (%s, %s)", [(i, [1.0, i / 10, (i % 7) / 7]) for i in range(1, 200)]
        )
        db.execute("CREATE INDEX items_emb ON items USING hnsw (embedding vector_cosine_ops)")
        rows = db.execute(
            "SELECT id FROM items ORDER BY embedding <=> %s LIMIT 3", [[1.0, 0.5, 5 / 7]]
        ).fetchall()
        assert len(rows) == 3 and rows[0][0] == 5
    with _admin(pg_url) as conn:
        (definition,) = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s", (name, "%hnsw%")
        ).fetchone()
    assert "vector_cosine_ops" in definition


def test_without_pgvector_everything_but_vector_columns_works(pg_url, schemas):
    """A database where the extension is absent and the role may not create it."""
    role, database = f"loom_role_{uuid.uuid4().hex[:8]}", f"novec_{uuid.uuid4().hex[:8]}"
    with _admin(pg_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE DATABASE {database} OWNER {role}")
    try:
        base = pg_url.rsplit("/", 1)[0].replace("://postgres@", f"://{role}@")
        with loomdb.connect(f"{base}/{database}") as db:
            db.execute("CREATE TABLE steps (step INT, state JSONB)")
            db.execute("INSERT INTO steps VALUES (1, %s)", [{"plan": "x"}])
            assert db.execute("SELECT state->>'plan' FROM steps").fetchone()[0] == "x"
            with pytest.raises(loomdb.NotSupportedError, match="CREATE EXTENSION vector"):
                db.execute("CREATE TABLE emb (e VECTOR(3))")
            assert db.execute("SELECT count(*) FROM steps").fetchone()[0] == 1
    finally:
        with _admin(pg_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.parametrize(("durability", "setting"), [("full", "on"), ("normal", "off")])
def test_durability_is_synchronous_commit(pg_url, schemas, durability, setting):
    with loomdb.connect(pg_url, schema=schemas(), durability=durability) as db:
        assert db.execute("SELECT current_setting('synchronous_commit')").fetchone()[0] == setting


def test_writers_on_different_branches_do_not_wait_and_one_branch_is_ordered(pg_url, schemas):
    url = f"{pg_url}?schema={schemas()}"
    with loomdb.connect(url) as db:
        db.execute("CREATE TABLE t (who TEXT, n INT)")
        db.branch("a")
        db.branch("b")
    holder = loomdb.connect(url, branch="a")
    other_branch = loomdb.connect(url, branch="b", timeout=5)
    same_branch = loomdb.connect(url, branch="a", timeout=0.5)
    with transaction_held_open(holder, "INSERT INTO t VALUES ('holder', 1)"):
        # Branch b's writer goes straight through while a's lock is held ...
        other_branch.execute("INSERT INTO t VALUES ('b', 1)")
        # ... and a second writer on branch a waits, here past its lock timeout.
        with pytest.raises(loomdb.OperationalError, match="locked"):
            same_branch.execute("INSERT INTO t VALUES ('a2', 1)")
    same_branch.execute("INSERT INTO t VALUES ('a2', 2)")
    assert sorted(same_branch.execute("SELECT who, n FROM t").fetchall()) == [("a2", 2), ("holder", 1)]
    assert other_branch.execute("SELECT who FROM t").fetchall() == [("b",)]
    for handle in (holder, other_branch, same_branch):
        handle.close()


def test_a_commit_id_sequence_gap_does_not_break_history(pg_url, schemas):
    """A failed statement consumes a commit id; log and parents stay consistent."""
    with loomdb.connect(pg_url, schema=schemas()) as db:
        db.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        db.execute("INSERT INTO t VALUES (1)")
        before = db.head
        with pytest.raises(loomdb.IntegrityError):
            db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (2)")
        log = db.log()
        assert log[0].id > before and log[0].parents == (before,)
        assert [c.id for c in log] == sorted((c.id for c in log), reverse=True)


def test_an_error_in_a_deferred_insert_belongs_to_its_statement(pg_url, schemas):
    """A plain INSERT travels with the COMMIT (or the statement's RELEASE) in one
    round trip; a value the server refuses must still fail that statement alone."""
    with loomdb.connect(pg_url, schema=schemas()) as db:
        db.execute("CREATE TABLE t (n INT)")  # integer: PostgreSQL refuses 2**40
        head = db.head
        with pytest.raises(loomdb.DataError, match="out of range"):
            db.execute("INSERT INTO t VALUES (%s)", [2**40])
        assert db.head == head and db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        with db.transaction():
            db.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(loomdb.DataError):
                db.execute("INSERT INTO t VALUES (%s)", [2**40])
            db.execute("INSERT INTO t VALUES (2)")
        assert sorted(r[0] for r in db.execute("SELECT n FROM t")) == [1, 2]
        assert db.log()[0].parents == (head,)


def test_writers_on_two_branches_share_a_serial_counter_without_waiting(pg_url, schemas):
    url = f"{pg_url}?schema={schemas()}"
    with loomdb.connect(url) as db:
        db.execute("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)")
        db.branch("a")
        db.branch("b")
    holder = loomdb.connect(url, branch="a")
    other = loomdb.connect(url, branch="b", timeout=2)
    with transaction_held_open(holder, "INSERT INTO notes (body) VALUES ('a')"):
        other.execute("INSERT INTO notes (body) VALUES ('b')")  # would time out waiting on the counter
    (a_id,) = holder.execute("SELECT id FROM notes").fetchone()
    (b_id,) = other.execute("SELECT id FROM notes").fetchone()
    assert {a_id, b_id} == {1, 2}
    holder.close()
    other.close()


def test_a_key_looked_up_with_begin_sees_the_row_the_writer_before_committed(pg_url, schemas):
    """The key lookup of a one-row INSERT travels with BEGIN; it must run after the
    branch lock, so a writer that held the lock and inserted the key is seen."""
    url = f"{pg_url}?schema={schemas()}"
    with loomdb.connect(url) as db:
        db.execute("CREATE TABLE steps (run_id TEXT, step INT, note TEXT, PRIMARY KEY (run_id, step))")
    first, second = loomdb.connect(url), loomdb.connect(url)
    outcome: dict[str, object] = {}

    def insert_while_locked() -> None:
        try:
            cur = second.execute(
                "INSERT INTO steps VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", ["r1", 7, "second"]
            )
            outcome["rowcount"] = cur.rowcount
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            outcome["error"] = exc

    with transaction_held_open(first, "INSERT INTO steps VALUES ('r1', 7, 'first')"):
        waiter = threading.Thread(target=insert_while_locked)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # queued behind the branch lock, its lookup not yet run
    waiter.join(30)
    assert outcome == {"rowcount": 0}
    assert [tuple(r) for r in second.execute("SELECT run_id, step, note FROM steps")] == [("r1", 7, "first")]
    # Without ON CONFLICT the same insert is refused, naming the key.
    with pytest.raises(loomdb.IntegrityError, match="duplicate key"):
        second.execute("INSERT INTO steps VALUES (%s, %s, %s)", ["r1", 7, "again"])
    first.close()
    second.close()
