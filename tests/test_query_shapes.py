"""Query shapes with PostgreSQL's answers on both engines: scalar-subquery
cardinality, ANY/ALL over subqueries, LIMIT/OFFSET checks, set operations,
VALUES aliases, GROUP BY validation, writable CTEs and IDENTITY columns."""

from __future__ import annotations

import pytest

import loomdb


def q(db, sql, params=None):
    return [tuple(r) for r in db.execute(sql, params).fetchall()]


@pytest.fixture
def t(fresh_db):
    """fresh_db with t(k INT PRIMARY KEY, g TEXT, n INT): three rows, one n NULL."""
    fresh_db.execute("CREATE TABLE t (k INT PRIMARY KEY, g TEXT, n INT)")
    fresh_db.execute("INSERT INTO t (k, g, n) VALUES (1, 'a', 10), (2, 'a', NULL), (3, 'b', 30)")
    return fresh_db


def test_a_scalar_subquery_with_a_second_row_raises_cardinality_violation(t):
    with pytest.raises(loomdb.ProgrammingError) as err:
        q(t, "SELECT (SELECT k FROM t WHERE g = 'a')")
    assert err.value.sqlstate == "21000"
    with pytest.raises(loomdb.ProgrammingError):
        q(t, "SELECT k FROM t WHERE n = (SELECT n FROM t WHERE n IS NOT NULL)")
    # One row, none, or correlated to one row: as before.
    assert q(t, "SELECT (SELECT k FROM t WHERE g = 'b')") == [(3,)]
    assert q(t, "SELECT (SELECT k FROM t WHERE false)") == [(None,)]
    assert q(t, "SELECT k, (SELECT u.n FROM t u WHERE u.k = t.k) FROM t ORDER BY k") == [
        (1, 10),
        (2, None),
        (3, 30),
    ]
    # EXISTS and IN read every row.
    assert q(t, "SELECT k FROM t WHERE k IN (SELECT k FROM t WHERE g = 'a') ORDER BY k") == [(1,), (2,)]


def test_any_and_all_over_a_subquery_follow_postgresql_null_logic(t):
    # n: 10, NULL, 30. 20 > ANY: true (10); 40 > ALL: NULL (the NULL row), so no row.
    assert q(t, "SELECT 20 > ANY (SELECT n FROM t)") == [(True,)]
    assert q(t, "SELECT 40 > ALL (SELECT n FROM t)") == [(None,)]
    assert q(t, "SELECT 5 > ALL (SELECT n FROM t)") == [(False,)]
    assert q(t, "SELECT 5 > ANY (SELECT n FROM t)") == [(None,)]
    assert q(t, "SELECT 5 > ANY (SELECT n FROM t WHERE false), 5 > ALL (SELECT n FROM t WHERE false)") == [
        (False, True)
    ]
    assert q(t, "SELECT k FROM t WHERE n >= ALL (SELECT n FROM t WHERE n IS NOT NULL)") == [(3,)]


def test_any_over_an_array_is_refused_on_sqlite_as_arrays_are(t, engine):
    if engine == "sqlite":
        with pytest.raises(loomdb.NotSupportedError, match="ANY"):
            q(t, "SELECT k FROM t WHERE k = ANY('{1,2}')")


@pytest.mark.parametrize(
    ("clause", "sqlstate"),
    [("LIMIT -1", "2201W"), ("OFFSET -1", "2201X"), ("LIMIT %s", "2201W"), ("OFFSET %s", "2201X")],
)
def test_negative_limit_and_offset_raise(t, clause, sqlstate):
    params = (-2,) if "%s" in clause else None
    with pytest.raises(loomdb.DataError) as err:
        q(t, f"SELECT k FROM t ORDER BY k {clause}", params)
    assert err.value.sqlstate == sqlstate


def test_null_limit_and_offset_mean_none(t):
    assert q(t, "SELECT k FROM t ORDER BY k LIMIT %s OFFSET %s", (None, None)) == [(1,), (2,), (3,)]
    assert q(t, "SELECT k FROM t ORDER BY k LIMIT NULL") == [(1,), (2,), (3,)]
    assert q(t, "SELECT k FROM t ORDER BY k LIMIT %s OFFSET %s", (1, 1)) == [(2,)]


def test_set_operations_with_parenthesised_operands_and_all(t):
    assert q(
        t, "(SELECT k FROM t ORDER BY k LIMIT 1) UNION ALL (SELECT k FROM t ORDER BY k DESC LIMIT 1)"
    ) == [
        (1,),
        (3,),
    ]
    # 'a' twice on the left, once on the right.
    assert q(t, "SELECT g FROM t INTERSECT ALL SELECT 'a'") == [("a",)]
    assert sorted(q(t, "SELECT g FROM t EXCEPT ALL SELECT 'a'")) == [("a",), ("b",)]
    assert q(t, "SELECT g FROM t UNION ALL SELECT g FROM t INTERSECT ALL SELECT 'a' ORDER BY 1") == [
        ("a",),
        ("a",),
        ("a",),
        ("b",),
    ]


def test_set_operation_types_resolve_as_postgresql(t):
    assert q(t, "SELECT k FROM t UNION SELECT '7' ORDER BY 1") == [(1,), (2,), (3,), (7,)]
    with pytest.raises(loomdb.DataError) as err:
        q(t, "SELECT k FROM t UNION SELECT 'x'")
    assert err.value.sqlstate == "22P02"
    with pytest.raises(loomdb.ProgrammingError) as err:
        q(t, "SELECT g FROM t UNION SELECT k FROM t")
    assert err.value.sqlstate == "42804"


def test_values_column_aliases_name_the_columns(t):
    assert q(t, "SELECT n, s FROM (VALUES (1, 'a'), (2, 'b')) AS v(n, s) ORDER BY n DESC") == [
        (2, "b"),
        (1, "a"),
    ]
    cur = t.execute("SELECT * FROM (VALUES (1, 'a')) AS v(n)")
    assert [d[0] for d in cur.description] == ["n", "column2"]
    assert q(t, "VALUES (1), (2) ORDER BY 1 DESC LIMIT 1") == [(2,)]


def test_group_by_validation_raises_grouping_error(t):
    for sql in (
        "SELECT g, count(*) FROM t",
        "SELECT n FROM t GROUP BY g",
        "SELECT g, count(*) FROM t GROUP BY g ORDER BY n",
    ):
        with pytest.raises(loomdb.ProgrammingError) as err:
            q(t, sql)
        assert err.value.sqlstate == "42803", sql
    # Columns of a table whose primary key is grouped are grouped.
    assert q(t, "SELECT t.*, count(*) FROM t GROUP BY k ORDER BY k") == [
        (1, "a", 10, 1),
        (2, "a", None, 1),
        (3, "b", 30, 1),
    ]
    assert q(t, "SELECT upper(g), count(*) FROM t GROUP BY upper(g) ORDER BY 1") == [("A", 2), ("B", 1)]


def test_writable_ctes_are_refused(t):
    for sql in (
        "WITH d AS (DELETE FROM t WHERE k = 1 RETURNING k) SELECT * FROM d",
        "WITH d AS (DELETE FROM t WHERE k = 1 RETURNING k) UPDATE t SET n = 0 WHERE k = 2",
    ):
        with pytest.raises(loomdb.NotSupportedError, match="data-modifying statements in WITH"):
            t.execute(sql)
    assert q(t, "SELECT count(*) FROM t") == [(3,)]


def test_identity_columns_assign_ids(fresh_db, store_path):
    fresh_db.execute("CREATE TABLE a (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, b TEXT)")
    fresh_db.execute("CREATE TABLE d (id BIGINT GENERATED BY DEFAULT AS IDENTITY, b TEXT)")
    assert q(fresh_db, "INSERT INTO a (b) VALUES ('x'), ('y') RETURNING id") == [(1,), (2,)]
    assert q(fresh_db, "INSERT INTO a (id, b) VALUES (DEFAULT, 'z') RETURNING id") == [(3,)]
    with pytest.raises(loomdb.ProgrammingError) as err:
        fresh_db.execute("INSERT INTO a (id, b) VALUES (9, 'w')")
    assert err.value.sqlstate == "428C9"
    with pytest.raises(loomdb.ProgrammingError) as err:
        fresh_db.execute("UPDATE a SET id = 9")
    assert err.value.sqlstate == "428C9"
    with pytest.raises(loomdb.NotSupportedError):
        fresh_db.execute("INSERT INTO a (id, b) OVERRIDING SYSTEM VALUE VALUES (9, 'w')")
    # BY DEFAULT takes explicit values, and its sequence ignores them (as PostgreSQL's).
    assert q(fresh_db, "INSERT INTO d (id, b) VALUES (10, 'x') RETURNING id") == [(10,)]
    assert q(fresh_db, "INSERT INTO d (b) VALUES ('y') RETURNING id") == [(1,)]
    fresh_db.close()
    # The kind of identity survives reopening the store.
    db = loomdb.connect(store_path)
    try:
        with pytest.raises(loomdb.ProgrammingError):
            db.execute("INSERT INTO a (id, b) VALUES (9, 'w')")
        assert q(db, "INSERT INTO a (b) VALUES ('w') RETURNING id") == [(4,)]
    finally:
        db.close()


def test_identity_sequence_options_are_refused(fresh_db):
    with pytest.raises(loomdb.NotSupportedError, match="identity sequence options"):
        fresh_db.execute("CREATE TABLE s (id INT GENERATED ALWAYS AS IDENTITY (START WITH 10))")


def test_ordered_set_aggregates(t):
    # n: 10, NULL, 30 (NULLs are skipped); g: a, a, b.
    assert q(t, "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY n) FROM t") == [(15.0,)]
    assert q(t, "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY n DESC) FROM t") == [(25.0,)]
    assert q(t, "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY k DESC) FROM t") == [(2,)]
    assert q(t, "SELECT mode() WITHIN GROUP (ORDER BY g) FROM t") == [("a",)]
    assert q(t, "SELECT g, percentile_disc(1) WITHIN GROUP (ORDER BY k) FROM t GROUP BY g ORDER BY g") == [
        ("a", 2),
        ("b", 3),
    ]
    with pytest.raises(loomdb.DataError) as err:
        q(t, "SELECT percentile_cont(2) WITHIN GROUP (ORDER BY n) FROM t")
    assert err.value.sqlstate == "22003"


def test_subqueries_in_writes(t):
    t.execute("INSERT INTO t (SELECT k + 10, g, n FROM t)")
    assert q(t, "SELECT count(*) FROM t") == [(6,)]
    t.execute("UPDATE t SET n = (SELECT max(n) FROM t) WHERE k = 1")
    assert q(t, "SELECT n FROM t WHERE k = 1") == [(30,)]
    with pytest.raises(loomdb.ProgrammingError) as err:
        t.execute("UPDATE t SET n = (SELECT n FROM t WHERE g = 'a') WHERE k = 1")
    assert err.value.sqlstate == "21000"


def test_adding_an_identity_column_to_a_table_with_rows_is_refused(t):
    with pytest.raises(loomdb.NotSupportedError, match="IDENTITY"):
        t.execute("ALTER TABLE t ADD COLUMN id INT GENERATED ALWAYS AS IDENTITY")
    t.execute("CREATE TABLE e (body TEXT)")
    t.execute("ALTER TABLE e ADD COLUMN id INT GENERATED ALWAYS AS IDENTITY")
    assert q(t, "INSERT INTO e (body) VALUES ('a') RETURNING id") == [(1,)]


def test_a_float_limit_rounds_half_to_even(t):
    assert q(t, "SELECT k FROM t ORDER BY k LIMIT %s", (1.5,)) == [(1,), (2,)]
    assert q(t, "SELECT k FROM t ORDER BY k LIMIT %s OFFSET %s", (2.5, 0.4)) == [(1,), (2,)]
