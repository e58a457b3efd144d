"""The SQL surface a user relies on (DESIGN.md §5, docs/api.md): one test per behaviour."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import time
import uuid
from decimal import Decimal
from pathlib import Path

import apsw
import numpy as np
import psycopg
import pytest

import loomdb

UTC = dt.UTC


def rows(cur):
    return [tuple(r) for r in cur.fetchall()]


def q(db, sql, params=None):
    return rows(db.execute(sql, params))


def scalar(db, sql, params=None):
    return db.execute(sql, params).fetchone()[0]


@pytest.fixture
def kv(fresh_db):
    """fresh_db with kv(k INT PRIMARY KEY, v TEXT, n INT) holding three rows."""
    fresh_db.execute("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT, n INT)")
    fresh_db.execute("INSERT INTO kv (k, v, n) VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30)")
    return fresh_db


KV_ROWS = [(1, "one", 10), (2, "two", 20), (3, "three", 30)]


def assert_kv_intact(db, head):
    """The failed statement changed nothing and the store still answers."""
    assert q(db, "SELECT k, v, n FROM kv ORDER BY k") == KV_ROWS
    assert db.head == head
    db.execute("INSERT INTO kv (k, v, n) VALUES (%s, %s, %s)", [4, "four", 40])
    assert scalar(db, "SELECT v FROM kv WHERE k = 4") == "four"


# ---------------------------------------------------------------------------
# DDL
# ---------------------------------------------------------------------------


def test_create_table_if_not_exists_keeps_existing_rows_and_makes_no_commit(kv):
    head = kv.head
    kv.execute("CREATE TABLE IF NOT EXISTS kv (k INT PRIMARY KEY, v TEXT, n INT)")
    assert kv.head == head
    assert q(kv, "SELECT * FROM kv ORDER BY k") == KV_ROWS


def test_create_table_twice_raises_programming_error_naming_table(kv):
    head = kv.head
    with pytest.raises(loomdb.ProgrammingError, match="kv"):
        kv.execute("CREATE TABLE kv (x INT)")
    assert_kv_intact(kv, head)


def test_create_table_is_a_commit(fresh_db):
    before = fresh_db.head
    fresh_db.execute("CREATE TABLE t (a INT)")
    assert fresh_db.head is not None and fresh_db.head != before
    assert fresh_db.log()[0].id == fresh_db.head


def test_select_star_returns_only_declared_columns_in_order(fresh_db):
    fresh_db.execute("CREATE TABLE t (zeta INT, alpha TEXT, mid BOOLEAN)")
    fresh_db.execute("INSERT INTO t VALUES (1, 'a', true)")
    cur = fresh_db.execute("SELECT * FROM t")
    assert [d[0] for d in cur.description] == ["zeta", "alpha", "mid"]
    assert rows(cur) == [(1, "a", True)]


def test_default_values_fill_omitted_columns_including_now(fresh_db):
    fresh_db.execute(
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, status TEXT DEFAULT 'new',"
        " score INT DEFAULT 0, at TIMESTAMP DEFAULT NOW())"
    )
    before = dt.datetime.now(UTC)
    fresh_db.execute("INSERT INTO notes (id, body) VALUES (1, 'x')")
    after = dt.datetime.now(UTC)
    r = fresh_db.execute("SELECT status, score, at FROM notes").fetchone()
    assert r["status"] == "new" and r["score"] == 0
    # a TIMESTAMP is naive, as in PostgreSQL: NOW()'s wall time in UTC (TimeZone UTC)
    assert r["at"].tzinfo is None
    assert before - dt.timedelta(milliseconds=1) <= r["at"].replace(tzinfo=UTC) <= after
    # an explicit value wins over the default
    fresh_db.execute("INSERT INTO notes (id, body, status) VALUES (2, 'y', 'done')")
    assert scalar(fresh_db, "SELECT status FROM notes WHERE id = 2") == "done"


def test_select_now_returns_aware_utc_datetime(fresh_db):
    now = scalar(fresh_db, "SELECT NOW()")
    assert isinstance(now, dt.datetime) and now.utcoffset() == dt.timedelta(0)
    assert abs(now - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)


def test_primary_key_violation_raises_integrity_error_and_changes_nothing(fresh_db):
    fresh_db.execute("CREATE TABLE people (email TEXT PRIMARY KEY, name TEXT)")
    fresh_db.execute("INSERT INTO people VALUES ('a@x', 'Ann')")
    head = fresh_db.head
    with pytest.raises(loomdb.IntegrityError) as e:
        fresh_db.execute("INSERT INTO people VALUES ('a@x', 'Other')")
    assert "email" in str(e.value) or "people" in str(e.value)
    # a multi-row insert with one duplicate inserts nothing
    with pytest.raises(loomdb.IntegrityError):
        fresh_db.execute("INSERT INTO people VALUES ('b@x', 'Bob'), ('a@x', 'Dup')")
    assert q(fresh_db, "SELECT * FROM people") == [("a@x", "Ann")]
    assert fresh_db.head == head


def test_unique_constraint_rejects_duplicates_but_allows_several_nulls(fresh_db):
    fresh_db.execute("CREATE TABLE u (id INT PRIMARY KEY, handle TEXT UNIQUE)")
    fresh_db.execute("INSERT INTO u VALUES (1, 'h1'), (2, NULL), (3, NULL)")
    with pytest.raises(loomdb.IntegrityError):
        fresh_db.execute("INSERT INTO u VALUES (4, 'h1')")
    with pytest.raises(loomdb.IntegrityError):
        fresh_db.execute("UPDATE u SET handle = 'h1' WHERE id = 2")
    assert q(fresh_db, "SELECT id, handle FROM u ORDER BY id") == [(1, "h1"), (2, None), (3, None)]


def test_not_null_violation_raises_integrity_error_naming_column(fresh_db):
    fresh_db.execute("CREATE TABLE t (id INT PRIMARY KEY, nickname TEXT NOT NULL)")
    fresh_db.execute("INSERT INTO t VALUES (1, 'a')")
    head = fresh_db.head
    with pytest.raises(loomdb.IntegrityError, match="nickname"):
        fresh_db.execute("INSERT INTO t (id) VALUES (2)")
    with pytest.raises(loomdb.IntegrityError, match="nickname"):
        fresh_db.execute("UPDATE t SET nickname = NULL WHERE id = 1")
    assert q(fresh_db, "SELECT * FROM t") == [(1, "a")]
    assert fresh_db.head == head


def test_delete_frees_primary_key_for_reinsert(kv):
    kv.execute("DELETE FROM kv WHERE k = 2")
    kv.execute("INSERT INTO kv VALUES (2, 'again', 0)")
    assert q(kv, "SELECT * FROM kv WHERE k = 2") == [(2, "again", 0)]


def test_primary_key_is_checked_against_the_branch_view(kv):
    b = kv.branch("feature")
    kv.execute("INSERT INTO kv VALUES (5, 'main-only', 0)")
    b.execute("INSERT INTO kv VALUES (5, 'branch-only', 1)")  # main's 5 is not on b
    with pytest.raises(loomdb.IntegrityError):
        b.execute("INSERT INTO kv VALUES (1, 'dup-of-inherited', 0)")
    kv.execute("DELETE FROM kv WHERE k = 1")
    with pytest.raises(loomdb.IntegrityError):
        b.execute("INSERT INTO kv VALUES (1, 'still-there-on-b', 0)")
    assert scalar(kv, "SELECT v FROM kv WHERE k = 5") == "main-only"
    assert scalar(b, "SELECT v FROM kv WHERE k = 5") == "branch-only"


def test_create_index_keeps_results_and_is_used_by_lookups(fresh_db):
    fresh_db.execute("CREATE TABLE items (id INT PRIMARY KEY, tag TEXT, n INT)")
    fresh_db.executemany("INSERT INTO items VALUES (%s, %s, %s)", [(i, f"t{i % 17}", i) for i in range(300)])
    want = q(fresh_db, "SELECT id FROM items WHERE tag = 't3' ORDER BY id")
    fresh_db.execute("CREATE INDEX items_tag_idx ON items (tag)")
    assert q(fresh_db, "SELECT id FROM items WHERE tag = 't3' ORDER BY id") == want
    fresh_db.execute("UPDATE items SET tag = 'moved' WHERE id = 3")
    assert q(fresh_db, "SELECT id FROM items WHERE tag = 't3' ORDER BY id") == want[1:]
    plan = fresh_db.explain("SELECT id FROM items WHERE tag = %s", ["t3"])
    assert isinstance(plan, str)
    assert "items_tag_idx" in plan, plan
    fresh_db.execute("CREATE INDEX IF NOT EXISTS items_tag_idx ON items (tag)")


def test_create_index_without_a_column_list_is_a_syntax_error_and_changes_nothing(fresh_db):
    fresh_db.execute("CREATE TABLE items (id INT PRIMARY KEY, tag TEXT)")
    head = fresh_db.head
    with pytest.raises(loomdb.ProgrammingError, match="column list"):
        fresh_db.execute("CREATE INDEX items_idx ON items")
    assert fresh_db.head == head
    fresh_db.execute("CREATE INDEX items_idx ON items (tag)")  # the name was not taken


def test_alter_table_add_column_gives_existing_rows_null_or_default(kv):
    kv.execute("ALTER TABLE kv ADD COLUMN note TEXT")
    kv.execute("ALTER TABLE kv ADD COLUMN weight INT DEFAULT 7")
    assert [d[0] for d in kv.execute("SELECT * FROM kv").description] == [
        "k",
        "v",
        "n",
        "note",
        "weight",
    ]
    assert q(kv, "SELECT k, note, weight FROM kv ORDER BY k") == [
        (1, None, 7),
        (2, None, 7),
        (3, None, 7),
    ]
    kv.execute("INSERT INTO kv (k, v, n, note) VALUES (4, 'four', 40, 'hi')")
    kv.execute("UPDATE kv SET note = 'upd' WHERE k = 1")
    assert q(kv, "SELECT k, note, weight FROM kv WHERE k IN (1, 4) ORDER BY k") == [
        (1, "upd", 7),
        (4, "hi", 7),
    ]


def test_drop_table_removes_it_and_name_can_be_reused(kv):
    kv.execute("DROP TABLE kv")
    with pytest.raises(loomdb.ProgrammingError, match="kv"):
        kv.execute("SELECT * FROM kv")
    kv.execute("DROP TABLE IF EXISTS kv")  # no error
    with pytest.raises(loomdb.ProgrammingError, match="kv"):
        kv.execute("DROP TABLE kv")
    kv.execute("CREATE TABLE kv (k INT PRIMARY KEY, other TEXT)")
    assert q(kv, "SELECT * FROM kv") == []
    kv.execute("INSERT INTO kv VALUES (1, 'fresh')")
    assert q(kv, "SELECT * FROM kv") == [(1, "fresh")]


# ---------------------------------------------------------------------------
# INSERT / UPDATE / DELETE
# ---------------------------------------------------------------------------


def test_multi_row_insert_is_one_commit_with_rowcount(fresh_db):
    fresh_db.execute("CREATE TABLE t (a INT, b TEXT)")
    n_log = len(fresh_db.log())
    cur = fresh_db.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, NULL)")
    assert cur.rowcount == 3
    assert len(fresh_db.log()) == n_log + 1
    assert q(fresh_db, "SELECT a, b FROM t ORDER BY a") == [(1, "x"), (2, "y"), (3, None)]


def test_insert_select_copies_matching_rows(kv):
    kv.execute("CREATE TABLE archive (k INT, v TEXT)")
    cur = kv.execute("INSERT INTO archive (k, v) SELECT k, upper(v) FROM kv WHERE n >= 20")
    assert cur.rowcount == 2
    assert q(kv, "SELECT k, v FROM archive ORDER BY k") == [(2, "TWO"), (3, "THREE")]


def test_insert_returning_gives_new_rows_with_defaults(fresh_db):
    fresh_db.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, status TEXT DEFAULT 'new')")
    cur = fresh_db.execute("INSERT INTO notes (id, body) VALUES (1, 'a'), (2, 'b') RETURNING id, status")
    assert sorted(rows(cur)) == [(1, "new"), (2, "new")]
    assert cur.rowcount == 2
    r = fresh_db.execute("INSERT INTO notes (id, body) VALUES (%s, %s) RETURNING *", [3, "c"]).fetchone()
    assert dict(r) == {"id": 3, "body": "c", "status": "new"}
    assert scalar(fresh_db, "SELECT count(*) FROM notes") == 3


def test_on_conflict_do_nothing_skips_only_conflicting_rows(kv):
    head = kv.head
    cur = kv.execute("INSERT INTO kv VALUES (1, 'clash', 0) ON CONFLICT (k) DO NOTHING")
    assert cur.rowcount == 0
    assert kv.head == head, "an insert that inserted nothing made a commit"
    cur = kv.execute("INSERT INTO kv VALUES (2, 'clash', 0), (9, 'nine', 90) ON CONFLICT DO NOTHING")
    assert cur.rowcount == 1
    assert q(kv, "SELECT k, v, n FROM kv ORDER BY k") == KV_ROWS + [(9, "nine", 90)]


def test_on_conflict_naming_columns_without_a_key_is_refused_before_anything_is_written(fresh_db):
    """As PostgreSQL: the target must match a PRIMARY KEY or UNIQUE key even when no row clashes."""
    fresh_db.execute("CREATE TABLE t (a INT, b INT)")
    head = fresh_db.head
    for _ in range(2):
        with pytest.raises(loomdb.ProgrammingError, match="no unique or exclusion constraint"):
            fresh_db.execute("INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO NOTHING")
    assert scalar(fresh_db, "SELECT count(*) FROM t") == 0
    assert fresh_db.head == head
    fresh_db.execute("CREATE UNIQUE INDEX t_a ON t (a)")
    fresh_db.execute("INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT (a) DO NOTHING")
    fresh_db.execute("INSERT INTO t (a, b) VALUES (1, 3) ON CONFLICT (a) DO NOTHING")
    assert q(fresh_db, "SELECT a, b FROM t") == [(1, 2)]


def test_on_conflict_do_update_merges_into_existing_row(kv):
    cur = kv.execute(
        "INSERT INTO kv (k, v, n) VALUES (%s, %s, %s), (%s, %s, %s) "
        "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = kv.n + EXCLUDED.n "
        "RETURNING k, v, n",
        [2, "TWO", 5, 7, "seven", 70],
    )
    assert sorted(rows(cur)) == [(2, "TWO", 25), (7, "seven", 70)]
    assert q(kv, "SELECT k, v, n FROM kv ORDER BY k") == [
        (1, "one", 10),
        (2, "TWO", 25),
        (3, "three", 30),
        (7, "seven", 70),
    ]


def test_update_changes_matching_rows_and_reports_rowcount(kv):
    cur = kv.execute("UPDATE kv SET n = n * 2, v = v || '!' WHERE n > %s", [15])
    assert cur.rowcount == 2
    assert q(kv, "SELECT k, v, n FROM kv ORDER BY k") == [
        (1, "one", 10),
        (2, "two!", 40),
        (3, "three!", 60),
    ]


def test_update_with_subquery_in_where(kv):
    kv.execute("CREATE TABLE flags (k INT)")
    kv.execute("INSERT INTO flags VALUES (1), (3)")
    cur = kv.execute("UPDATE kv SET v = 'flagged' WHERE k IN (SELECT k FROM flags)")
    assert cur.rowcount == 2
    assert q(kv, "SELECT k, v FROM kv ORDER BY k") == [(1, "flagged"), (2, "two"), (3, "flagged")]


def test_update_matching_nothing_makes_no_commit(kv):
    head = kv.head
    cur = kv.execute("UPDATE kv SET v = 'x' WHERE k = 999")
    assert cur.rowcount == 0
    assert kv.head == head


def test_delete_returning_gives_deleted_rows(kv):
    cur = kv.execute("DELETE FROM kv WHERE n < %s RETURNING k, v", [25])
    assert sorted(rows(cur)) == [(1, "one"), (2, "two")]
    assert cur.rowcount == 2
    assert q(kv, "SELECT k FROM kv") == [(3,)]
    head = kv.head
    assert kv.execute("DELETE FROM kv WHERE k = 999").rowcount == 0
    assert kv.head == head


def test_delete_all_rows(kv):
    assert kv.execute("DELETE FROM kv").rowcount == 3
    assert q(kv, "SELECT * FROM kv") == []


# ---------------------------------------------------------------------------
# SELECT
# ---------------------------------------------------------------------------


@pytest.fixture
def runs(fresh_db):
    db = fresh_db
    db.execute("CREATE TABLE runs (id INT PRIMARY KEY, name TEXT)")
    db.execute("CREATE TABLE steps (run_id INT, step INT, tokens INT)")
    db.execute("INSERT INTO runs VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')")
    db.execute("INSERT INTO steps VALUES (1, 0, 10), (1, 1, 20), (1, 2, 5), (2, 0, 7), (2, 1, 8)")
    return db


def test_inner_and_left_join(runs):
    assert q(
        runs,
        "SELECT r.name, count(*) FROM runs r JOIN steps s ON s.run_id = r.id GROUP BY r.name ORDER BY r.name",
    ) == [("alpha", 3), ("beta", 2)]
    assert q(
        runs,
        "SELECT r.name, s.step FROM runs r LEFT JOIN steps s ON s.run_id = r.id AND s.step = 0 ORDER BY r.id",
    ) == [("alpha", 0), ("beta", 0), ("gamma", None)]


def test_subqueries_in_where_select_and_from(runs):
    assert q(runs, "SELECT name FROM runs WHERE id IN (SELECT run_id FROM steps WHERE step >= 2)") == [
        ("alpha",)
    ]
    assert q(
        runs,
        "SELECT name, (SELECT max(step) FROM steps s WHERE s.run_id = r.id) FROM runs r ORDER BY id",
    ) == [("alpha", 2), ("beta", 1), ("gamma", None)]
    assert q(
        runs,
        "SELECT name FROM runs r WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id)",
    ) == [("gamma",)]
    assert q(
        runs,
        "SELECT sub.run_id, sub.total FROM (SELECT run_id, sum(tokens) AS total FROM steps"
        " GROUP BY run_id) AS sub WHERE sub.total > 20",
    ) == [(1, 35)]


def test_cte_can_be_joined_with_tables(runs):
    assert q(
        runs,
        "WITH last AS (SELECT run_id, max(step) AS step FROM steps GROUP BY run_id) "
        "SELECT r.name, l.step, s.tokens FROM last l JOIN runs r ON r.id = l.run_id "
        "JOIN steps s ON s.run_id = l.run_id AND s.step = l.step ORDER BY r.name",
    ) == [("alpha", 2, 5), ("beta", 1, 8)]


def test_recursive_cte_walks_a_chain(fresh_db):
    fresh_db.execute("CREATE TABLE nodes (id INT PRIMARY KEY, parent INT)")
    fresh_db.execute("INSERT INTO nodes VALUES (1, NULL), (2, 1), (3, 2), (4, 1), (5, NULL)")
    assert q(
        fresh_db,
        "WITH RECURSIVE tree(id, depth) AS (SELECT id, 0 FROM nodes WHERE id = 1 "
        "UNION ALL SELECT n.id, t.depth + 1 FROM nodes n JOIN tree t ON n.parent = t.id) "
        "SELECT id, depth FROM tree ORDER BY id",
    ) == [(1, 0), (2, 1), (3, 2), (4, 1)]


def test_group_by_having_aggregates(runs):
    res = q(
        runs,
        "SELECT run_id, count(*), sum(tokens), min(step), max(tokens) FROM steps"
        " GROUP BY run_id HAVING sum(tokens) > 15 ORDER BY run_id",
    )
    assert res == [(1, 3, 35, 0, 20)]
    assert all(type(x) is int for x in res[0])
    avg = scalar(runs, "SELECT avg(tokens) FROM steps WHERE run_id = 2")
    assert float(avg) == pytest.approx(7.5)


def test_window_functions_partition_and_order(runs):
    assert q(
        runs,
        "SELECT run_id, step,"
        " row_number() OVER (PARTITION BY run_id ORDER BY step DESC) AS rn,"
        " sum(tokens) OVER (PARTITION BY run_id ORDER BY step) AS running,"
        " lag(step) OVER (PARTITION BY run_id ORDER BY step) AS prev"
        " FROM steps ORDER BY run_id, step",
    ) == [
        (1, 0, 3, 10, None),
        (1, 1, 2, 30, 0),
        (1, 2, 1, 35, 1),
        (2, 0, 2, 7, None),
        (2, 1, 1, 15, 0),
    ]


def test_order_by_limit_offset_with_parameters(runs):
    assert q(
        runs,
        "SELECT run_id, step FROM steps ORDER BY tokens DESC LIMIT %s OFFSET %s",
        [2, 1],
    ) == [(1, 0), (2, 1)]
    assert q(runs, "SELECT step FROM steps ORDER BY run_id DESC, step ASC LIMIT 3") == [
        (0,),
        (1,),
        (0,),
    ]


def test_order_by_sorts_nulls_as_postgresql_unless_told(fresh_db):
    fresh_db.execute("CREATE TABLE t (a INT)")
    fresh_db.execute("INSERT INTO t VALUES (2), (NULL), (1)")
    # PostgreSQL's order on both engines: NULLs sort as the largest value.
    assert q(fresh_db, "SELECT a FROM t ORDER BY a") == [(1,), (2,), (None,)]
    assert q(fresh_db, "SELECT a FROM t ORDER BY a DESC") == [(None,), (2,), (1,)]
    assert q(fresh_db, "SELECT a, rank() OVER (ORDER BY a) FROM t ORDER BY a") == [(1, 1), (2, 2), (None, 3)]
    assert q(fresh_db, "SELECT string_agg(a::text, ',' ORDER BY a DESC) FROM t") == [("2,1",)]
    assert q(fresh_db, "SELECT a FROM t UNION SELECT 3 ORDER BY 1 DESC") == [(None,), (3,), (2,), (1,)]
    # An explicit NULLS clause is honoured, in both directions.
    assert q(fresh_db, "SELECT a FROM t ORDER BY a NULLS LAST") == [(1,), (2,), (None,)]
    assert q(fresh_db, "SELECT a FROM t ORDER BY a DESC NULLS LAST") == [(2,), (1,), (None,)]
    assert q(fresh_db, "SELECT a FROM t ORDER BY a NULLS FIRST") == [(None,), (1,), (2,)]


def test_distinct_removes_duplicate_rows(runs):
    assert q(runs, "SELECT DISTINCT run_id FROM steps ORDER BY run_id") == [(1,), (2,)]
    assert scalar(runs, "SELECT count(DISTINCT run_id) FROM steps") == 2


def test_queries_on_a_branch_read_the_branch_in_every_table_reference(runs):
    b = runs.branch("exp")
    b.execute("INSERT INTO steps VALUES (3, 0, 100)")
    b.execute("DELETE FROM steps WHERE run_id = 1 AND step = 2")
    runs.execute("INSERT INTO steps VALUES (2, 2, 1)")
    sql = (
        "WITH last AS (SELECT run_id, max(step) AS step FROM steps GROUP BY run_id) "
        "SELECT r.name, l.step, (SELECT sum(tokens) FROM steps s WHERE s.run_id = r.id) "
        "FROM runs r JOIN last l ON l.run_id = r.id "
        "WHERE r.id IN (SELECT run_id FROM steps) ORDER BY r.name"
    )
    assert q(b, sql) == [("alpha", 1, 30), ("beta", 1, 15), ("gamma", 0, 100)]
    assert q(runs, sql) == [("alpha", 2, 35), ("beta", 2, 16)]


# ---------------------------------------------------------------------------
# JSONB and casts
# ---------------------------------------------------------------------------


@pytest.fixture
def docs(fresh_db):
    fresh_db.execute("CREATE TABLE docs (id INT PRIMARY KEY, body JSONB)")
    fresh_db.executemany(
        "INSERT INTO docs VALUES (%s, %s)",
        [
            (1, {"name": "alpha", "score": 3, "tags": ["x", "y"], "plan": {"steps": ["a", "b"]}}),
            (2, {"name": "beta", "score": 10, "tags": ["y"], "plan": {"steps": []}}),
            (3, {"name": "gamma", "tags": [], "nested": {"a": 1, "b": 2}}),
        ],
    )
    return fresh_db


def test_jsonb_arrow_returns_json_values(docs):
    assert scalar(docs, "SELECT body -> 'plan' FROM docs WHERE id = 1") == {"steps": ["a", "b"]}
    assert scalar(docs, "SELECT body -> 'tags' FROM docs WHERE id = 1") == ["x", "y"]
    assert scalar(docs, "SELECT body -> 'plan' -> 'steps' -> 1 FROM docs WHERE id = 1") == "b"
    score = scalar(docs, "SELECT body -> 'score' FROM docs WHERE id = 2")
    assert score == 10 and type(score) is int
    assert scalar(docs, "SELECT body -> 'missing' FROM docs WHERE id = 1") is None


def test_jsonb_double_arrow_returns_text(docs):
    assert scalar(docs, "SELECT body ->> 'name' FROM docs WHERE id = 2") == "beta"
    assert scalar(docs, "SELECT body ->> 'score' FROM docs WHERE id = 2") == "10"
    assert q(docs, "SELECT id FROM docs WHERE body ->> 'name' = %s", ["gamma"]) == [(3,)]
    assert scalar(docs, "SELECT body -> 'plan' ->> 'steps' FROM docs WHERE id = 2") == "[]"


def test_jsonb_keys_and_indexes_may_be_parameters(docs):
    assert scalar(docs, "SELECT body ->> %s FROM docs WHERE id = 2", ["name"]) == "beta"
    assert scalar(docs, "SELECT body ->> %s FROM docs WHERE id = 2", ["score"]) == "10"
    assert scalar(docs, "SELECT body -> 'tags' ->> %s FROM docs WHERE id = 1", [1]) == "y"
    assert scalar(docs, "SELECT body -> %s FROM docs WHERE id = 3", ["nested"]) == {"a": 1, "b": 2}
    assert scalar(docs, "SELECT body ->> %s FROM docs WHERE id = 1", ["missing"]) is None
    assert q(docs, "SELECT id FROM docs WHERE body ->> %s = %s ORDER BY id", ["name", "alpha"]) == [(1,)]


def test_jsonb_containment_operator(docs):
    def ids(pattern):
        cur = docs.execute("SELECT id FROM docs WHERE body @> %s ORDER BY id", [pattern])
        return [r[0] for r in cur]

    assert ids({"tags": ["y"]}) == [1, 2]
    assert ids({"tags": ["x"]}) == [1]
    assert ids({"name": "beta"}) == [2]
    assert ids({"nested": {"a": 1}}) == [3]
    assert ids({"nested": {"a": 2}}) == []
    assert ids({}) == [1, 2, 3]
    assert q(docs, """SELECT id FROM docs WHERE body @> '{"score": 3}' """) == [(1,)]


def test_casts_with_double_colon(docs):
    r = docs.execute(
        "SELECT '42'::int, 7::text, '2024-02-29'::date, '1.25'::numeric, 'true'::boolean,"
        " (body ->> 'score')::int + 1 FROM docs WHERE id = 1"
    ).fetchone()
    assert tuple(r) == (42, "7", dt.date(2024, 2, 29), Decimal("1.25"), True, 4)
    assert type(r[0]) is int and type(r[4]) is bool and type(r[3]) is Decimal
    assert type(r[2]) is dt.date
    assert q(docs, "SELECT id FROM docs WHERE (body ->> 'score')::int > 5") == [(2,)]
    assert scalar(docs, """SELECT '{"a": [1, 2]}'::jsonb -> 'a'""") == [1, 2]


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


def test_positional_percent_s_parameters(kv):
    assert q(kv, "SELECT v FROM kv WHERE k = %s OR n = %s ORDER BY k", [1, 30]) == [
        ("one",),
        ("three",),
    ]
    assert q(kv, "SELECT v FROM kv WHERE k = %s", (2,)) == [("two",)]


def test_named_parameters(kv):
    assert q(kv, "SELECT v FROM kv WHERE k = %(key)s OR n = %(key)s * 10 ORDER BY k", {"key": 3}) == [
        ("three",)
    ]
    kv.execute("INSERT INTO kv VALUES (%(k)s, %(v)s, %(n)s)", {"v": "five", "n": 50, "k": 5})
    assert q(kv, "SELECT * FROM kv WHERE k = 5") == [(5, "five", 50)]


def test_dollar_number_parameters_can_repeat_and_reorder(kv):
    kv.execute("INSERT INTO kv (k, v, n) VALUES ($2, $1, $2 * 10)", ["six", 6])
    assert q(kv, "SELECT * FROM kv WHERE k = $1 OR n = $1 * 10 ORDER BY k", [6]) == [(6, "six", 60)]


@pytest.mark.parametrize(
    "sql, params",
    [
        ("SELECT k FROM kv WHERE k > %s AND v <> ''", [0]),
        ("SELECT k FROM kv WHERE k > %(low)s AND v <> ''", {"low": 0}),
        ("SELECT k FROM kv WHERE k > $1 AND v <> ''", [0]),
    ],
    ids=["percent-s", "named", "dollar"],
)
def test_a_statement_with_parameters_may_end_with_an_empty_string_literal(kv, sql, params):
    assert sorted(q(kv, sql, params)) == q(kv, sql + " ORDER BY k", params) == [(1,), (2,), (3,)]


def test_parameter_values_are_never_interpolated_as_sql(kv):
    evil = "x'); DROP TABLE kv; --"
    kv.execute("INSERT INTO kv VALUES (%s, %s, %s)", [7, evil, 0])
    assert scalar(kv, "SELECT v FROM kv WHERE k = 7") == evil
    assert scalar(kv, "SELECT count(*) FROM kv") == 4
    assert q(kv, "SELECT k FROM kv WHERE v LIKE %s ORDER BY k", ["t%"]) == [(2,), (3,)]


# ---------------------------------------------------------------------------
# Types round trip
# ---------------------------------------------------------------------------

ROUND_TRIP = [
    ("TEXT", "héllo 'quoted' \"x\" \n\t✓", str),
    ("INT", -2147483648, int),
    ("BIGINT", 2**62 + 12345, int),
    ("REAL", 1.5, float),
    ("DOUBLE PRECISION", 0.1 + 0.2, float),
    ("NUMERIC", Decimal("12345678901234567890.000000000123456789"), Decimal),
    ("NUMERIC", Decimal("0.1"), Decimal),
    ("NUMERIC", Decimal("-3.14159265358979323846264338327950288"), Decimal),
    ("BOOLEAN", True, bool),
    ("BOOLEAN", False, bool),
    ("JSONB", {"a": [1, 2.5, None, True, "ü"], "b": {"c": "d"}, "n": 0}, dict),
    ("JSONB", [1, "two", {"three": 3}, []], list),
    ("TIMESTAMP", dt.datetime(2024, 3, 4, 5, 6, 7, 891011), dt.datetime),
    ("TIMESTAMPTZ", dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime),
    ("DATE", dt.date(1999, 12, 31), dt.date),
    ("BYTEA", bytes(range(256)) + b"\x00end", bytes),
    ("UUID", uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID),
]


@pytest.mark.parametrize(
    ("sqltype", "value", "pytype"),
    ROUND_TRIP,
    ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(ROUND_TRIP)],
)
def test_value_round_trips_with_python_type(fresh_db, sqltype, value, pytype):
    fresh_db.execute(f"CREATE TABLE t (id INT, x {sqltype})")
    fresh_db.execute("INSERT INTO t VALUES (%s, %s), (%s, %s)", [1, value, 2, None])
    got = q(fresh_db, "SELECT x FROM t ORDER BY id")
    assert got[1] == (None,)
    x = got[0][0]
    assert type(x) is pytype, (type(x), pytype)
    assert x == value
    if pytype is dt.datetime:  # TIMESTAMPTZ: aware UTC; TIMESTAMP: naive, as psycopg returns them
        assert x.utcoffset() == (dt.timedelta(0) if sqltype == "TIMESTAMPTZ" else None)
    if sqltype == "JSONB" and isinstance(value, dict):
        assert type(x["n"]) is int and type(x["a"][1]) is float and x["a"][3] is True
    if sqltype != "JSONB":
        # the value also works as a filter parameter
        assert q(fresh_db, "SELECT id FROM t WHERE x = %s", [value]) == [(1,)]


def test_timestamp_naive_input_counts_as_utc_and_offsets_convert(fresh_db):
    fresh_db.execute("CREATE TABLE t (id INT, ts TIMESTAMPTZ)")
    naive = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
    plus2 = dt.datetime(2024, 5, 6, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    fresh_db.execute("INSERT INTO t VALUES (1, %s), (2, %s)", [naive, plus2])
    a, b = (r[0] for r in q(fresh_db, "SELECT ts FROM t ORDER BY id"))
    assert a == naive.replace(tzinfo=UTC) and a.utcoffset() == dt.timedelta(0)
    assert b == plus2 and b.utcoffset() == dt.timedelta(0)
    assert (b.hour, b.minute) == (10, 0)


def test_timestamp_without_time_zone_is_naive_and_takes_the_utc_wall_time(fresh_db):
    fresh_db.execute("CREATE TABLE t (id INT, ts TIMESTAMP)")
    naive = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
    plus2 = dt.datetime(2024, 5, 6, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    fresh_db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, '2024-05-06 12:00:00+02')", [naive, plus2])
    assert [r[0] for r in q(fresh_db, "SELECT ts FROM t ORDER BY id")] == [
        naive,
        dt.datetime(2024, 5, 6, 10, 0),  # an aware value converts to UTC wall time
        dt.datetime(2024, 5, 6, 12, 0),  # an offset in text is ignored, as PostgreSQL does
    ]


def test_timestamp_comparison_with_parameter_uses_instants(fresh_db):
    fresh_db.execute("CREATE TABLE t (id INT, ts TIMESTAMPTZ)")
    tz5 = dt.timezone(dt.timedelta(hours=5))
    vals = [
        dt.datetime(2024, 1, 1, 10, 0, tzinfo=UTC),  # 10:00Z
        dt.datetime(2024, 1, 1, 14, 0, tzinfo=tz5),  # 09:00Z
        dt.datetime(2024, 1, 1, 11, 30),  # naive: 11:30Z
    ]
    fresh_db.executemany("INSERT INTO t VALUES (%s, %s)", list(enumerate(vals, 1)))
    cutoff = dt.datetime(2024, 1, 1, 9, 30, tzinfo=UTC)
    assert q(fresh_db, "SELECT id FROM t WHERE ts > %s ORDER BY ts", [cutoff]) == [(1,), (3,)]
    assert q(fresh_db, "SELECT id FROM t ORDER BY ts") == [(2,), (1,), (3,)]


def test_real_column_keeps_single_precision_value(fresh_db):
    fresh_db.execute("CREATE TABLE t (x REAL)")
    fresh_db.execute("INSERT INTO t VALUES (%s)", [0.1])
    x = scalar(fresh_db, "SELECT x FROM t")
    assert type(x) is float and x == pytest.approx(0.1, rel=1e-6)


def test_uuid_accepts_string_input(fresh_db):
    fresh_db.execute("CREATE TABLE t (id UUID PRIMARY KEY, name TEXT)")
    u = uuid.uuid4()
    fresh_db.execute("INSERT INTO t VALUES (%s, %s)", [str(u), "s"])
    got = scalar(fresh_db, "SELECT id FROM t")
    assert got == u and type(got) is uuid.UUID
    assert q(fresh_db, "SELECT name FROM t WHERE id = %s", [u]) == [("s",)]


def test_boolean_columns_filter_directly(fresh_db):
    fresh_db.execute("CREATE TABLE t (id INT, flag BOOLEAN)")
    fresh_db.execute("INSERT INTO t VALUES (1, true), (2, false), (3, NULL)")
    assert q(fresh_db, "SELECT id FROM t WHERE flag") == [(1,)]
    assert q(fresh_db, "SELECT id FROM t WHERE NOT flag") == [(2,)]
    assert q(fresh_db, "SELECT flag FROM t ORDER BY id") == [(True,), (False,), (None,)]


@pytest.mark.parametrize(
    "make",
    [
        lambda v: list(v),
        lambda v: tuple(v),
        lambda v: np.asarray(v, dtype=np.float64),
        lambda v: np.asarray(v, dtype=np.float32),
    ],
    ids=["list", "tuple", "ndarray64", "ndarray32"],
)
def test_vector_round_trips_as_float32_ndarray(fresh_db, make):
    fresh_db.execute("CREATE TABLE t (id INT, e VECTOR(4))")
    v = [0.1, -2.5, 3.0, 1e-3]
    fresh_db.execute("INSERT INTO t VALUES (%s, %s)", [1, make(v)])
    e = scalar(fresh_db, "SELECT e FROM t")
    assert isinstance(e, np.ndarray) and e.dtype == np.float32 and e.shape == (4,)
    np.testing.assert_array_equal(e, np.asarray(v, dtype=np.float32))


def test_vector_distance_operators_follow_pgvector(fresh_db):
    fresh_db.execute("CREATE TABLE items (id INT PRIMARY KEY, e VECTOR(3))")
    fresh_db.executemany(
        "INSERT INTO items VALUES (%s, %s)",
        [(1, [1, 0, 0]), (2, [0, 1, 0]), (3, [0.9, 0.1, 0]), (4, [-1, 0, 0])],
    )
    query = np.array([1, 0, 0], dtype=np.float32)
    got = q(fresh_db, "SELECT id, e <-> %s FROM items ORDER BY e <-> %s LIMIT 2", [query, query])
    assert [r[0] for r in got] == [1, 3]
    assert got[0][1] == pytest.approx(0.0, abs=1e-6)
    assert got[1][1] == pytest.approx(math.sqrt(0.02), rel=1e-5)
    cos = dict(q(fresh_db, "SELECT id, e <=> %s FROM items", [query]))
    assert cos[1] == pytest.approx(0.0, abs=1e-6)
    assert cos[2] == pytest.approx(1.0, abs=1e-6)
    assert cos[4] == pytest.approx(2.0, abs=1e-6)
    ip = dict(q(fresh_db, "SELECT id, e <#> %s FROM items", [query]))
    assert ip[1] == pytest.approx(-1.0) and ip[4] == pytest.approx(1.0)
    assert ip[3] == pytest.approx(-0.9, rel=1e-5)


# ---------------------------------------------------------------------------
# Cursor and Row API
# ---------------------------------------------------------------------------


def test_fetchone_fetchmany_fetchall_share_one_position(kv):
    kv.executemany("INSERT INTO kv VALUES (%s, %s, %s)", [(k, f"v{k}", k) for k in range(4, 9)])
    cur = kv.execute("SELECT k FROM kv ORDER BY k")
    assert tuple(cur.fetchone()) == (1,)
    assert [r[0] for r in cur.fetchmany(3)] == [2, 3, 4]
    assert len(cur.fetchmany()) == cur.arraysize
    rest = cur.fetchall()
    assert [r[0] for r in rest] == list(range(4 + cur.arraysize + 1, 9))
    assert cur.fetchone() is None
    assert cur.fetchall() == []
    assert cur.fetchmany(5) == []


def test_cursor_iterates_over_rows(kv):
    assert [r["v"] for r in kv.execute("SELECT v FROM kv ORDER BY k")] == ["one", "two", "three"]


def test_cursor_description_and_rowcount(kv):
    cur = kv.execute("SELECT k AS key, v, n * 2 AS double_n FROM kv")
    assert [d[0] for d in cur.description] == ["key", "v", "double_n"]
    assert all(len(d) == 7 for d in cur.description)
    assert cur.rowcount == -1
    cur = kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
    assert cur.rowcount == 1
    assert cur.description is None
    assert kv.execute("UPDATE kv SET n = 0").rowcount == 4
    assert kv.execute("DELETE FROM kv WHERE k > 2").rowcount == 2


def test_row_access_by_name_index_keys_and_dict(kv):
    r = kv.execute("SELECT k, v, n FROM kv WHERE k = 2").fetchone()
    assert r["k"] == 2 and r["v"] == "two" and r["n"] == 20
    assert r[0] == 2 and r[1] == "two" and r[-1] == 20
    assert list(r.keys()) == ["k", "v", "n"]
    assert dict(r) == {"k": 2, "v": "two", "n": 20}
    assert len(r) == 3
    assert tuple(r) == (2, "two", 20)
    assert list(r) == [2, "two", 20]
    assert r == (2, "two", 20)
    assert r == kv.execute("SELECT k, v, n FROM kv WHERE k = 2").fetchone()
    assert r != (2, "two", 21)
    with pytest.raises((KeyError, IndexError)):
        r["nope"]


def test_commit_is_a_no_op(kv):
    head = kv.head
    kv.commit()
    assert kv.head == head
    kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
    kv.commit()
    assert scalar(kv, "SELECT count(*) FROM kv") == 4


def test_select_makes_no_commit(kv):
    head, n = kv.head, len(kv.log())
    q(kv, "SELECT * FROM kv")
    assert kv.head == head and len(kv.log()) == n


def test_closed_handle_raises_interface_error(store_path):
    with loomdb.connect(store_path) as db:
        db.execute("CREATE TABLE t (a INT)")
    with pytest.raises(loomdb.InterfaceError):
        db.execute("SELECT * FROM t")
    with loomdb.connect(store_path) as db2:
        assert q(db2, "SELECT * FROM t") == []


def test_closing_a_derived_handle_leaves_its_parent_open(kv):
    snap = kv.as_of(kv.head)
    branch = kv.branch("side")
    snap.close()
    branch.close()
    with pytest.raises(loomdb.InterfaceError):
        snap.execute("SELECT * FROM kv")
    with pytest.raises(loomdb.InterfaceError):
        branch.execute("SELECT * FROM kv")
    assert q(kv, "SELECT k, v, n FROM kv ORDER BY k") == KV_ROWS
    kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
    assert scalar(kv.checkout("side"), "SELECT count(*) FROM kv") == 3


def test_closing_a_handle_closes_handles_derived_from_it(kv):
    branch = kv.branch("side")
    snap = branch.as_of(branch.head)
    kv.close()
    for h in (kv, branch, snap):
        with pytest.raises(loomdb.InterfaceError):
            h.execute("SELECT * FROM kv")


# ---------------------------------------------------------------------------
# Commits: executemany, transaction, log
# ---------------------------------------------------------------------------


def test_executemany_is_one_commit(kv):
    head, n = kv.head, len(kv.log())
    kv.executemany("INSERT INTO kv VALUES (%s, %s, %s)", [(k, str(k), k) for k in range(4, 24)])
    assert len(kv.log()) == n + 1
    assert kv.log()[1].id == head
    assert scalar(kv, "SELECT count(*) FROM kv") == 23
    # and everything in it reads back from the commit before as absent
    assert scalar(kv.as_of(head), "SELECT count(*) FROM kv") == 3


def test_executemany_failure_rolls_back_whole_batch(kv):
    head = kv.head
    with pytest.raises(loomdb.IntegrityError):
        kv.executemany("INSERT INTO kv VALUES (%s, %s, %s)", [(4, "a", 0), (1, "dup", 0)])
    assert_kv_intact(kv, head)


def test_transaction_makes_one_commit_with_message_and_author(kv):
    head, n = kv.head, len(kv.log())
    with kv.transaction(message="step 7", author="agent-3"):
        kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
        kv.execute("UPDATE kv SET n = n + 1 WHERE k = 1")
        kv.execute("DELETE FROM kv WHERE k = 2")
        assert scalar(kv, "SELECT count(*) FROM kv") == 3  # sees its own writes
    log = kv.log()
    assert len(log) == n + 1
    c = log[0]
    assert c.id == kv.head and c.message == "step 7" and c.author == "agent-3"
    assert c.branch == "main" and log[1].id == head
    assert isinstance(c.time, dt.datetime) and c.time.utcoffset() == dt.timedelta(0)
    assert head in c.parents
    assert q(kv, "SELECT k, n FROM kv ORDER BY k") == [(1, 11), (3, 30), (4, 40)]


def test_transaction_rolls_back_on_exception(kv):
    head, n = kv.head, len(kv.log())

    class Boom(Exception):
        pass

    with pytest.raises(Boom), kv.transaction(message="doomed"):
        kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
        kv.execute("DELETE FROM kv WHERE k = 1")
        kv.execute("CREATE TABLE extra (a INT)")
        raise Boom()
    assert kv.head == head and len(kv.log()) == n
    with pytest.raises(loomdb.ProgrammingError, match="extra"):
        kv.execute("SELECT * FROM extra")
    assert_kv_intact(kv, head)


def test_transaction_rolls_back_when_a_statement_fails(kv):
    head = kv.head
    with pytest.raises(loomdb.IntegrityError), kv.transaction():
        kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
        kv.execute("INSERT INTO kv VALUES (1, 'dup', 0)")
    assert_kv_intact(kv, head)


def test_log_lists_commits_newest_first_with_limit(fresh_db):
    fresh_db.execute("CREATE TABLE t (a INT)")
    ids = [fresh_db.head]
    for i in range(3):
        fresh_db.execute("INSERT INTO t VALUES (%s)", [i])
        ids.append(fresh_db.head)
    log = fresh_db.log()
    # newest first; a store may begin with a root commit of its own before these
    assert [c.id for c in log][:4] == ids[::-1]
    assert len(log) <= 5
    assert [c.id for c in fresh_db.log(limit=2)] == ids[::-1][:2]
    assert all(c.branch == "main" for c in log)
    assert [c.time for c in log] == sorted((c.time for c in log), reverse=True)


# ---------------------------------------------------------------------------
# Errors name the problem and leave the store intact
# ---------------------------------------------------------------------------

POSITION = re.compile(r"\b(line|col|column|position|pos|offset|char|character)\b", re.I)


@pytest.mark.parametrize(
    ("sql", "token"),
    [
        ("SELEC * FROM kv", "SELEC"),
        ("SELECT * FROM kv WHERE (k = 1", None),
        ("INSERT INTO kv VALUES (1, 'x',", None),
        ("SELECT k FROM kv WHERE k = = 1", None),
    ],
)
def test_malformed_sql_raises_programming_error_with_location(kv, sql, token):
    head = kv.head
    with pytest.raises(loomdb.ProgrammingError) as e:
        kv.execute(sql)
    msg = str(e.value)
    assert POSITION.search(msg) or (token and token in msg), msg
    assert_kv_intact(kv, head)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT * FROM kv WHERE k = %s", []),
        ("SELECT * FROM kv WHERE k = %s", [1, 2]),
        ("INSERT INTO kv VALUES (%s, %s, %s)", [9, "x"]),
        ("SELECT * FROM kv WHERE k = $2", [1]),
        ("SELECT * FROM kv WHERE k = %(key)s", {"other": 1}),
    ],
)
def test_wrong_parameter_count_raises_programming_error(kv, sql, params):
    head = kv.head
    with pytest.raises(loomdb.ProgrammingError):
        kv.execute(sql, params)
    assert_kv_intact(kv, head)


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("INSERT INTO no_such_table VALUES (1)", "no_such_table"),
        ("SELECT no_such_col FROM kv", "no_such_col"),
        ("SELECT k FROM kv WHERE no_such_col = 1", "no_such_col"),
        ("UPDATE kv SET no_such_col = 1", "no_such_col"),
        ("INSERT INTO kv (k, no_such_col) VALUES (9, 1)", "no_such_col"),
    ],
)
def test_unknown_table_or_column_raises_programming_error_naming_it(kv, sql, name):
    head = kv.head
    with pytest.raises(loomdb.ProgrammingError, match=name):
        kv.execute(sql)
    assert_kv_intact(kv, head)


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        (
            "CREATE TRIGGER trg AFTER INSERT ON kv FOR EACH ROW EXECUTE FUNCTION f()",
            "TRIGGER",
        ),
        ("LISTEN agent_events", "LISTEN"),
        ("NOTIFY agent_events", "NOTIFY"),
    ],
)
def test_unsupported_construct_raises_not_supported_error_naming_it(kv, sql, construct):
    head = kv.head
    with pytest.raises(loomdb.NotSupportedError) as e:
        kv.execute(sql)
    assert construct.lower() in str(e.value).lower(), str(e.value)
    assert_kv_intact(kv, head)


@pytest.mark.parametrize(
    "bad",
    [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, float("nan"), 3.0], np.array([np.nan, 0, 0])],
    ids=["too-short", "too-long", "nan-list", "nan-ndarray"],
)
def test_bad_vector_raises_data_error(fresh_db, bad):
    fresh_db.execute("CREATE TABLE items (id INT, embedding VECTOR(3))")
    fresh_db.execute("INSERT INTO items VALUES (1, %s)", [[1, 2, 3]])
    head = fresh_db.head
    with pytest.raises(loomdb.DataError):
        fresh_db.execute("INSERT INTO items VALUES (2, %s)", [bad])
    with pytest.raises(loomdb.DataError):
        fresh_db.execute("UPDATE items SET embedding = %s WHERE id = 1", [bad])
    assert fresh_db.head == head
    got = q(fresh_db, "SELECT id, embedding FROM items")
    assert len(got) == 1 and got[0][0] == 1
    np.testing.assert_array_equal(got[0][1], np.array([1, 2, 3], dtype=np.float32))


def test_missing_branch_raises_branch_not_found_naming_it(fresh_db):
    with pytest.raises(loomdb.BranchNotFoundError, match="no/such-branch"):
        fresh_db.checkout("no/such-branch")
    with pytest.raises(loomdb.BranchNotFoundError, match="ghost"):
        fresh_db.branch("child", from_="ghost")
    assert isinstance(loomdb.BranchNotFoundError("x"), loomdb.ProgrammingError)
    assert {b.name for b in fresh_db.branches()} == {"main"}


def test_existing_branch_raises_branch_exists_naming_it(kv):
    b = kv.branch("exp/1")
    b.execute("INSERT INTO kv VALUES (4, 'b', 0)")
    with pytest.raises(loomdb.BranchExistsError, match="exp/1"):
        kv.branch("exp/1")
    with pytest.raises(loomdb.BranchExistsError, match="main"):
        kv.branch("main")
    # the existing branch was not reset
    assert scalar(kv.checkout("exp/1"), "SELECT count(*) FROM kv") == 4


def test_dropped_branch_is_gone_and_main_cannot_be_dropped(kv):
    b = kv.branch("tmp")
    b.execute("INSERT INTO kv VALUES (4, 'b', 0)")
    kv.drop_branch("tmp")
    with pytest.raises(loomdb.BranchNotFoundError):
        kv.checkout("tmp")
    with pytest.raises(loomdb.Error):
        kv.drop_branch("main")
    assert q(kv, "SELECT k, v, n FROM kv ORDER BY k") == KV_ROWS
    kv.branch("tmp")  # the name is free again
    assert scalar(kv.checkout("tmp"), "SELECT count(*) FROM kv") == 3


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO kv VALUES (4, 'four', 40)",
        "UPDATE kv SET v = 'x'",
        "DELETE FROM kv",
        "CREATE TABLE other (a INT)",
        "ALTER TABLE kv ADD COLUMN extra TEXT",
        "DROP TABLE kv",
    ],
)
def test_write_on_as_of_handle_raises_read_only_error(kv, sql):
    old_head = kv.head
    kv.execute("INSERT INTO kv VALUES (5, 'five', 50)")
    head = kv.head
    ro = kv.as_of(old_head)
    with pytest.raises(loomdb.ReadOnlyError):
        ro.execute(sql)
    assert q(ro, "SELECT k, v, n FROM kv ORDER BY k") == KV_ROWS
    assert ro.head == old_head
    assert kv.head == head
    assert q(kv, "SELECT k FROM kv ORDER BY k") == [(1,), (2,), (3,), (5,)]


def test_as_of_missing_commit_raises_commit_not_found(kv):
    with pytest.raises(loomdb.CommitNotFoundError):
        kv.as_of(10**9)
    with pytest.raises(loomdb.CommitNotFoundError):
        kv.as_of(dt.datetime(2000, 1, 1, tzinfo=UTC))


def test_as_of_datetime_picks_newest_commit_at_or_before(kv):
    first = kv.log()[0]
    time.sleep(0.01)
    kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")
    snap = kv.as_of(first.time)
    assert snap.head == first.id
    assert q(snap, "SELECT k, v, n FROM kv ORDER BY k") == KV_ROWS
    now = kv.as_of(dt.datetime.now(UTC) + dt.timedelta(seconds=1))
    assert now.head == kv.head


def _dir_listing(path):
    return sorted(os.listdir(os.path.dirname(path)))


# SQLite only: a file on disk that is something other than a loomdb store
# (its bytes and the directory listing, WAL or journal files included, must
# stay as they were). The PostgreSQL analogue, a schema holding other
# objects, is tested below.


def test_text_file_is_not_a_loom_store_and_stays_untouched(sqlite_path):
    with open(sqlite_path, "wb") as f:
        f.write(b"hello, I am notes.txt\nnot a database\n" * 50)
    before = Path(sqlite_path).read_bytes()
    listing = _dir_listing(sqlite_path)
    with pytest.raises(loomdb.NotALoomStoreError) as e:
        loomdb.connect(sqlite_path)
    assert os.path.basename(sqlite_path) in str(e.value)
    assert Path(sqlite_path).read_bytes() == before
    assert _dir_listing(sqlite_path) == listing


def test_plain_sqlite_file_is_not_a_loom_store_and_stays_untouched(sqlite_path):
    con = apsw.Connection(sqlite_path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')")
    con.close()
    before = Path(sqlite_path).read_bytes()
    listing = _dir_listing(sqlite_path)
    with pytest.raises(loomdb.NotALoomStoreError) as e:
        loomdb.connect(sqlite_path)
    assert os.path.basename(sqlite_path) in str(e.value)
    assert Path(sqlite_path).read_bytes() == before
    assert _dir_listing(sqlite_path) == listing
    con = apsw.Connection(sqlite_path)
    assert list(con.execute("SELECT name FROM users ORDER BY id")) == [("ann",), ("bob",)]
    con.close()


def _schema_contents(conn, schema):
    """Every object in ``schema`` (name and kind) and every table's rows as text."""
    objects = conn.execute(
        "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s ORDER BY 1",
        [schema],
    ).fetchall()
    objects += conn.execute(
        "SELECT p.proname, 'function' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s ORDER BY 1",
        [schema],
    ).fetchall()
    rows = {
        name: sorted(r[0] for r in conn.execute(f'SELECT t::text FROM "{schema}"."{name}" t'))
        for name, kind in objects
        if kind == "r"
    }
    return objects, rows


# What a schema may hold that makes it something other than an empty schema
# or a loomdb store.
FOREIGN_SCHEMA_OBJECTS = {
    "table": [
        "CREATE TABLE {s}.users (id INT PRIMARY KEY, name TEXT)",
        "INSERT INTO {s}.users VALUES (1, 'ann'), (2, 'bob')",
    ],
    "view": ["CREATE VIEW {s}.answer AS SELECT 42 AS n"],
    "sequence": ["CREATE SEQUENCE {s}.ticket"],
    "function": ["CREATE FUNCTION {s}.answer() RETURNS int LANGUAGE sql AS 'SELECT 42'"],
}


@pytest.mark.parametrize("kind", sorted(FOREIGN_SCHEMA_OBJECTS))
def test_schema_with_other_objects_is_not_a_loom_store_and_stays_untouched(pg_url, kind):
    # PostgreSQL only: the analogue of the two SQLite tests above.
    schema = f"foreign_{kind}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            for statement in FOREIGN_SCHEMA_OBJECTS[kind]:
                conn.execute(statement.format(s=schema))
            before = _schema_contents(conn, schema)
            with pytest.raises(loomdb.NotALoomStoreError) as e:
                loomdb.connect(f"{pg_url}?schema={schema}").close()
            assert schema in str(e.value)
            assert _schema_contents(conn, schema) == before
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# ---------------------------------------------------------------------------
# Schema is versioned per branch
# ---------------------------------------------------------------------------


def test_alter_table_add_column_on_branch_leaves_main_schema_unchanged(kv):
    before_alter_head = kv.head
    b = kv.branch("wide")
    b.execute("ALTER TABLE kv ADD COLUMN note TEXT")
    b.execute("UPDATE kv SET note = 'b' WHERE k = 1")
    assert [d[0] for d in b.execute("SELECT * FROM kv").description] == ["k", "v", "n", "note"]
    assert [d[0] for d in kv.execute("SELECT * FROM kv").description] == ["k", "v", "n"]
    assert q(kv, "SELECT * FROM kv ORDER BY k") == KV_ROWS
    with pytest.raises(loomdb.ProgrammingError, match="note"):
        kv.execute("SELECT note FROM kv")
    kv.execute("INSERT INTO kv VALUES (4, 'four', 40)")  # main still takes 3 columns
    assert q(b, "SELECT k, note FROM kv ORDER BY k") == [(1, "b"), (2, None), (3, None)]
    # history on the branch still shows the old shape and rows
    old = b.as_of(before_alter_head)
    assert q(old, "SELECT * FROM kv ORDER BY k") == KV_ROWS
    assert [d[0] for d in old.execute("SELECT * FROM kv").description] == ["k", "v", "n"]


def test_drop_table_on_branch_leaves_main_table_and_history(kv):
    before_drop = kv.head
    b = kv.branch("cleanup")
    b.execute("DROP TABLE kv")
    with pytest.raises(loomdb.ProgrammingError, match="kv"):
        b.execute("SELECT * FROM kv")
    assert q(kv, "SELECT * FROM kv ORDER BY k") == KV_ROWS
    kv.execute("UPDATE kv SET v = 'uno' WHERE k = 1")
    assert q(kv, "SELECT v FROM kv WHERE k = 1") == [("uno",)]
    assert q(b.as_of(before_drop), "SELECT * FROM kv ORDER BY k") == KV_ROWS
    # a new table of the same name on the branch starts empty and is the branch's own
    b.execute("CREATE TABLE kv (id TEXT)")
    b.execute("INSERT INTO kv VALUES ('b-only')")
    assert q(b, "SELECT * FROM kv") == [("b-only",)]
    assert q(kv, "SELECT k, v FROM kv ORDER BY k") == [(1, "uno"), (2, "two"), (3, "three")]


def test_drop_table_on_main_keeps_history_and_branches(kv):
    before_drop = kv.head
    b = kv.branch("keeper")
    kv.execute("DROP TABLE kv")
    assert q(b, "SELECT * FROM kv ORDER BY k") == KV_ROWS
    assert q(kv.as_of(before_drop), "SELECT * FROM kv ORDER BY k") == KV_ROWS
    b.execute("INSERT INTO kv VALUES (4, 'four', 40)")
    assert scalar(b, "SELECT count(*) FROM kv") == 4


def test_create_table_on_branch_is_invisible_on_main(fresh_db):
    fresh_db.execute("CREATE TABLE base (a INT)")
    b = fresh_db.branch("new-table")
    b.execute("CREATE TABLE scratch (x INT)")
    b.execute("INSERT INTO scratch VALUES (1)")
    with pytest.raises(loomdb.ProgrammingError, match="scratch"):
        fresh_db.execute("SELECT * FROM scratch")
    fresh_db.execute("CREATE TABLE scratch (y TEXT, z INT)")  # main's own, different shape
    fresh_db.execute("INSERT INTO scratch VALUES ('m', 2)")
    assert q(b, "SELECT * FROM scratch") == [(1,)]
    assert q(fresh_db, "SELECT * FROM scratch") == [("m", 2)]


def test_columns_named_like_sqlite_keywords_work_in_every_statement(fresh_db):
    # PostgreSQL accepts these names; SQLite reserves them, so loomdb must quote them.
    fresh_db.execute("CREATE TABLE t (nothing INT PRIMARY KEY, abort TEXT, pragma TEXT)")
    fresh_db.execute("INSERT INTO t VALUES (1, %s, %s)", ["a", "b"])
    fresh_db.execute("UPDATE t SET abort = 'c' WHERE nothing = 1")
    fresh_db.execute(
        "INSERT INTO t VALUES (1, 'x', 'y') ON CONFLICT (nothing) DO UPDATE SET pragma = EXCLUDED.pragma"
    )
    assert q(fresh_db, "SELECT nothing, abort AS exists, pragma FROM t") == [(1, "c", "y")]
    assert fresh_db.execute("SELECT 1 AS autoincrement").fetchone()["autoincrement"] == 1


@pytest.mark.parametrize(
    "sql, params",
    [
        ("SELECT %s,%s", [1, 2]),
        ("SELECT $1,$2", [1, 2]),
        ("SELECT %(a)s,%(b)s", {"a": 1, "b": 2}),
        ("SELECT $1::int,$2", [1, 2]),
    ],
)
def test_placeholders_need_no_spaces_between_them(fresh_db, sql, params):
    assert tuple(fresh_db.execute(sql, params).fetchone()) == (1, 2)


def test_a_failed_statement_inside_a_transaction_leaves_no_rows_behind(fresh_db):
    fresh_db.execute("CREATE TABLE t (k INT PRIMARY KEY, v TEXT)")
    fresh_db.execute("INSERT INTO t VALUES (3, 'three')")
    with fresh_db.transaction(message="mixed"):
        fresh_db.execute("INSERT INTO t VALUES (1, 'one')")
        with pytest.raises(loomdb.IntegrityError):
            # rows 10 and 11 are written before 3 collides: all three must vanish
            fresh_db.execute("INSERT INTO t VALUES (10, 'a'), (11, 'b'), (3, 'dup')")
        fresh_db.execute("INSERT INTO t VALUES (2, 'two')")
    assert q(fresh_db, "SELECT k FROM t ORDER BY k") == [(1,), (2,), (3,)]
    assert fresh_db.log(limit=1)[0].message == "mixed"


def test_without_savepoints_a_failed_statement_fails_the_whole_transaction(fresh_db):
    fresh_db.execute("CREATE TABLE t (k INT PRIMARY KEY, v TEXT)")
    fresh_db.execute("INSERT INTO t VALUES (3, 'three')")
    head = fresh_db.head
    with (
        pytest.raises(loomdb.TransactionFailedError, match="IntegrityError"),
        fresh_db.transaction(message="all or nothing", savepoints=False),
    ):
        fresh_db.execute("INSERT INTO t VALUES (1, 'one')")
        with pytest.raises(loomdb.IntegrityError):
            fresh_db.execute("INSERT INTO t VALUES (10, 'a'), (3, 'dup')")
        # The block goes on, but the transaction is gone: reads and writes refuse.
        with pytest.raises(loomdb.TransactionFailedError, match="rolled back"):
            fresh_db.execute("SELECT k FROM t")
        with pytest.raises(loomdb.TransactionFailedError):
            fresh_db.executemany("INSERT INTO t VALUES (%s, %s)", [(2, "two")])
    assert fresh_db.head == head
    assert q(fresh_db, "SELECT k FROM t ORDER BY k") == [(3,)]
    # The handle is usable at once, and a block that does not fail commits once.
    with fresh_db.transaction(message="clean", savepoints=False):
        fresh_db.executemany("INSERT INTO t VALUES (%s, %s)", [(1, "one"), (2, "two")])
        fresh_db.execute("UPDATE t SET v = 'THREE' WHERE k = 3")
        assert q(fresh_db, "SELECT count(*) FROM t") == [(3,)]  # sees its own writes
    assert q(fresh_db, "SELECT k, v FROM t ORDER BY k") == [(1, "one"), (2, "two"), (3, "THREE")]
    assert fresh_db.log(limit=1)[0].message == "clean" and fresh_db.log(limit=2)[1].id == head


def test_without_savepoints_an_exception_from_the_block_rolls_everything_back(fresh_db):
    fresh_db.execute("CREATE TABLE t (k INT PRIMARY KEY)")
    head = fresh_db.head
    with pytest.raises(KeyError), fresh_db.transaction(savepoints=False):
        fresh_db.execute("INSERT INTO t VALUES (1)")
        raise KeyError("the agent crashed")
    assert fresh_db.head == head and q(fresh_db, "SELECT count(*) FROM t") == [(0,)]


def test_a_failed_first_statement_inside_a_transaction_still_allows_a_commit(fresh_db):
    fresh_db.execute("CREATE TABLE t (k INT PRIMARY KEY)")
    head = fresh_db.head
    with fresh_db.transaction(), pytest.raises(loomdb.IntegrityError):
        fresh_db.execute("INSERT INTO t VALUES (1), (1)")
    assert fresh_db.head == head  # nothing changed, so nothing was committed
    with fresh_db.transaction():
        with pytest.raises(loomdb.IntegrityError):
            fresh_db.execute("INSERT INTO t VALUES (1), (1)")
        fresh_db.execute("INSERT INTO t VALUES (1)")
    assert q(fresh_db, "SELECT k FROM t") == [(1,)]
    # Exactly one new commit, on top of the old head. (Not head + 1: on
    # PostgreSQL commit ids come from a sequence, and each rolled-back
    # statement above consumed one, so ids increase with gaps.)
    log = fresh_db.log(limit=2)
    assert log[0].id == fresh_db.head and log[0].id > head
    assert log[1].id == head


def test_vector_distance_of_a_null_vector_is_null_and_sorts_last(fresh_db):
    fresh_db.execute("CREATE TABLE v (id INT, e VECTOR(2))")
    fresh_db.execute("INSERT INTO v VALUES (1, NULL), (2, %s), (3, %s)", [[1, 0], [0, 1]])
    rows = q(fresh_db, "SELECT id, e <-> %s AS d FROM v ORDER BY id", [[1, 0]])
    assert rows[0] == (1, None) and rows[1] == (2, 0.0)
    # the in-memory top-k and the SQL path (inside a transaction) agree
    assert q(fresh_db, "SELECT id FROM v ORDER BY e <-> %s LIMIT 3", [[1, 0]]) == [(2,), (3,), (1,)]
    with fresh_db.transaction():
        assert q(fresh_db, "SELECT id FROM v ORDER BY e <-> %s LIMIT 3", [[1, 0]]) == [(2,), (3,), (1,)]


def test_description_names_the_declared_types(fresh_db):
    fresh_db.execute("CREATE TABLE t (i INT, b BIGINT, s TEXT, n NUMERIC(10, 2), e VECTOR(3))")
    cur = fresh_db.execute("SELECT i, b, s, n, e FROM t")
    assert [d[1] for d in cur.description] == ["INT", "BIGINT", "TEXT", "NUMERIC(10, 2)", "VECTOR(3)"]
