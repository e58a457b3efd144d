"""The PostgreSQL backend's wire (loomdb.backend.postgres.wire): batches of
statements in one round trip, prepared statements, and a connection that
stays usable after errors.

PostgreSQL-only by nature (SQLite has no wire); these tests take ``pg_url``.
Where a test needs to see the server's side (which statements are
prepared), it reads PostgreSQL's own views through the backend.
"""

from __future__ import annotations

import signal
import threading

import psycopg
import pytest

import loomdb
from loomdb.backend.postgres import wire as pg_wire


@pytest.fixture
def db(pg_store):
    with loomdb.connect(pg_store()) as handle:
        yield handle


def _backend(db):
    return db._conn.store.backend


def _prepared(db) -> int:
    """How many statements this handle's connection has prepared on the server."""
    return next(_backend(db).execute("SELECT count(*) FROM pg_prepared_statements"))[0]


def test_a_statement_run_again_is_prepared_once_and_gives_the_same_rows(db):
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, a TEXT)")
    before = _prepared(db)
    for i in range(5):
        db.execute("INSERT INTO t VALUES (%s, %s)", [i, f"row {i}"])
        assert db.execute("SELECT a FROM t WHERE id = %s", [i]).fetchone()[0] == f"row {i}"
    grown = _prepared(db) - before
    # The insert's statements and the query are prepared; five runs did not
    # prepare them five times.
    assert 0 < grown < 10
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 5


def test_prepared_statements_stay_bounded(db, monkeypatch):
    monkeypatch.setattr(pg_wire, "MAX_PREPARED", 8)
    db.execute("CREATE TABLE t (x INT)")
    db.execute("INSERT INTO t VALUES (1)")
    for n in range(40):
        for _ in range(2):  # a statement's second run prepares it
            assert db.execute(f"SELECT x + {n} FROM t").fetchone()[0] == 1 + n
    # Evicted statements are deallocated with the next batch outside a transaction.
    _backend(db).execute("SELECT 1")
    assert _prepared(db) <= 8 + 1


def test_an_error_inside_a_batch_leaves_the_connection_usable(db):
    db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(loomdb.IntegrityError):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(loomdb.DataError):
        db.execute("SELECT 1 / (id - 1) FROM t")
    with pytest.raises(loomdb.IntegrityError), db.transaction():
        db.execute("INSERT INTO t VALUES (2)")
        db.execute("INSERT INTO t VALUES (2)")
    db.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in db.execute("SELECT id FROM t ORDER BY id")] == [1, 3]


def test_a_prepared_query_survives_another_connection_changing_its_table(db, pg_store):
    """PostgreSQL refuses to run a prepared statement whose result columns
    changed; outside a transaction the wire prepares it again, invisibly."""
    backend = _backend(db)
    backend.execute("CREATE TABLE plain (a int)")
    backend.execute("INSERT INTO plain VALUES (1)")
    for _ in range(3):
        assert list(backend.execute("SELECT * FROM plain")) == [(1,)]
    with psycopg.connect(backend.conninfo, autocommit=True) as other:
        other.execute(f'ALTER TABLE "{backend.schema}".plain ADD COLUMN b int DEFAULT 7')
    assert list(backend.execute("SELECT * FROM plain")) == [(1, 7)]
    assert list(backend.execute("SELECT * FROM plain")) == [(1, 7)]


def test_percent_signs_and_question_marks_in_literals_are_text(db):
    db.execute("CREATE TABLE t (a TEXT, j JSONB)")
    db.execute("INSERT INTO t VALUES ('100%', %s)", [{"k?": 1}])
    assert db.execute("SELECT a FROM t WHERE a LIKE '%%'").fetchone()[0] == "100%"
    assert db.execute("SELECT j->>'k?' FROM t WHERE a = '100%'").fetchone()[0] == "1"


def test_an_interrupted_wait_rolls_back_and_the_handle_goes_on_on_a_fresh_connection(pg_store):
    """Ctrl-C while waiting for the server: the protocol state is unknown, so
    the connection is closed (its open transaction rolls back); the handle's
    next call opens a fresh one, and it and a new connection see every commit
    that returned and nothing of the interrupted transaction."""
    url = pg_store()
    db = loomdb.connect(url)
    db.execute("CREATE TABLE t (x INT)")
    db.execute("INSERT INTO t VALUES (1)")
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt), db.transaction():
            db.execute("INSERT INTO t VALUES (2)")
            db.execute("SELECT pg_sleep(5)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert [r[0] for r in db.execute("SELECT x FROM t")] == [1]
    db.execute("INSERT INTO t VALUES (3)")
    with loomdb.connect(url) as again:
        assert sorted(r[0] for r in again.execute("SELECT x FROM t")) == [1, 3]
    db.close()
