"""NUMERIC, REAL and VARCHAR(n) as PostgreSQL has them, on both engines.

PostgreSQL rounds a value stored in a NUMERIC(p, s) column to its scale (half
away from zero) and raises 22003 when it needs more digits than the precision
allows; a VARCHAR(n) value over n characters raises 22001 (an explicit cast
truncates); REAL is float4. sum() of bigint and numeric and avg() of integers
and numeric are numeric, with the scale of PostgreSQL's numeric division.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from value_checks import one, same

import loomdb


@pytest.fixture
def db(fresh_db):
    fresh_db.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, big BIGINT, r REAL, d DOUBLE PRECISION,"
        " n NUMERIC(10, 2), m NUMERIC, v VARCHAR(3))"
    )
    fresh_db.executemany(
        "INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            (1, 10, 0.7, 0.1, "12.345", "1.10", "ab"),
            (2, 20, 0.1, 0.2, "-1.005", "2.205", "abc"),
            (3, 31, 0.6, None, "0.11", "0.001", None),
        ],
    )
    return fresh_db


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT n FROM t WHERE id = 1", Decimal("12.35")),
        ("SELECT n FROM t WHERE id = 2", Decimal("-1.01")),
        ("SELECT m FROM t WHERE id = 2", Decimal("2.205")),
        ("SELECT sum(n) FROM t", Decimal("11.45")),
        ("SELECT sum(m) FROM t", Decimal("3.306")),
        ("SELECT sum(id) FROM t", 6),
        ("SELECT sum(big) FROM t", Decimal("61")),
        ("SELECT avg(id) FROM t", Decimal("2.0000000000000000")),
        ("SELECT avg(big) FROM t", Decimal("20.3333333333333333")),
        ("SELECT avg(n) FROM t", Decimal("3.8166666666666667")),
        ("SELECT avg(n) FROM t WHERE id = 2", Decimal("-1.01000000000000000000")),
        ("SELECT avg(n)::numeric(10, 2) FROM t", Decimal("3.82")),
        ("SELECT round(avg(n), 2) FROM t", Decimal("3.82")),
        ("SELECT r FROM t WHERE id = 1", 0.7),
        ("SELECT r::numeric FROM t WHERE id = 1", Decimal("0.7")),
        ("SELECT d::numeric FROM t WHERE id = 1", Decimal("0.1")),
        ("SELECT count(*) FROM t WHERE r = 0.7", 0),
        ("SELECT count(*) FROM t WHERE r = 0.7::real", 1),
        ("SELECT 12.345::numeric(10, 2)", Decimal("12.35")),
        ("SELECT 2.5::numeric(10, 2)", Decimal("2.50")),
        ("SELECT '1e3'::numeric", Decimal("1000")),
        ("SELECT 0.1::real", 0.1),
        ("SELECT 'abcd'::varchar(2)", "ab"),
    ],
)
def test_values_and_types_as_postgresql_gives_them(db, sql, expected):
    same(one(db, sql), expected)


def test_avg_of_real_is_double_precision_over_float4_values(db):
    got = one(db, "SELECT avg(r) FROM t")
    assert isinstance(got, float)
    float4 = [float(np.float32(x)) for x in (0.7, 0.1, 0.6)]
    assert got == pytest.approx(sum(float4) / 3, rel=1e-12)
    assert got != pytest.approx(1.4 / 3, rel=1e-12)


def test_sum_avg_with_group_by_orders_as_numbers(db):
    db.execute("INSERT INTO t (id, n) VALUES (4, 100), (5, 9.5)")
    rows = db.execute("SELECT id, avg(n) AS a FROM t WHERE id >= 3 GROUP BY id ORDER BY a").fetchall()
    assert [r[0] for r in rows] == [3, 5, 4]
    same(rows[2][1], Decimal("100.0000000000000000"))


def test_update_rounds_to_the_column_scale(db):
    row = db.execute("UPDATE t SET n = 12.345 WHERE id = 3 RETURNING n").fetchone()
    same(row[0], Decimal("12.35"))
    same(one(db, "SELECT n FROM t WHERE id = 3"), Decimal("12.35"))


def test_default_takes_the_column_scale(fresh_db):
    fresh_db.execute("CREATE TABLE p (id INT PRIMARY KEY, price NUMERIC(6, 2) DEFAULT 1)")
    fresh_db.execute("INSERT INTO p (id) VALUES (1)")
    same(one(fresh_db, "SELECT price FROM p"), Decimal("1.00"))


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("INSERT INTO t (id, n) VALUES (9, 123456789)", "22003"),
        ("INSERT INTO t (id, n) VALUES (9, 99999999.999)", "22003"),
        ("UPDATE t SET n = n * 10000000 WHERE id = 1", "22003"),
        ("INSERT INTO t (id, v) VALUES (9, 'abcd')", "22001"),
        ("INSERT INTO t (id, r) VALUES (9, 1e40)", "22003"),
        ("SELECT 123.456::numeric(5, 3)", "22003"),
        ("SELECT 'abc'::real", "22P02"),
    ],
)
def test_errors_carry_postgresql_sqlstate(db, sql, sqlstate):
    with pytest.raises(loomdb.DataError) as info:
        db.execute(sql).fetchall()
    assert info.value.sqlstate == sqlstate


def test_varchar_cuts_trailing_spaces_over_its_length(db):
    db.execute("INSERT INTO t (id, v) VALUES (9, 'xyz   ')")
    assert one(db, "SELECT v FROM t WHERE id = 9") == "xyz"


def test_parameters_are_stored_as_the_column_keeps_them(db):
    db.execute("INSERT INTO t (id, n, r) VALUES (%s, %s, %s)", [9, Decimal("0.125"), 0.3])
    row = db.execute("SELECT n, r FROM t WHERE id = 9").fetchone()
    same(row[0], Decimal("0.13"))
    same(row[1], 0.3)


def test_sum_of_real_is_real(db):
    got = one(db, "SELECT sum(r) FROM t")
    assert isinstance(got, float)
    total = np.float32(0)
    for x in (0.7, 0.1, 0.6):
        total = np.float32(total + np.float32(x))
    assert got == float(str(total))  # as psycopg reads a real: from its shortest text


def test_window_avg_is_numeric(db):
    rows = db.execute(
        "SELECT id, avg(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t ORDER BY id"
    )
    got = [r[1] for r in rows.fetchall()]
    for value, want in zip(
        got, ["1.00000000000000000000", "1.5000000000000000", "2.5000000000000000"], strict=True
    ):
        same(value, Decimal(want))


def test_aggregates_compare_as_numbers(db):
    assert one(db, "SELECT count(*) FROM (SELECT id FROM t GROUP BY id HAVING avg(n) > 1) s") == 1
    assert one(db, "SELECT max(a) FROM (SELECT avg(n) AS a FROM t GROUP BY id) s") == Decimal("12.35")


def test_a_parameter_meeting_a_real_is_a_real(db):
    assert one(db, "SELECT count(*) FROM t WHERE r = %s", [0.7]) == 1


def test_a_parameter_meeting_numeric_p_s_keeps_its_digits(db):
    assert one(db, "SELECT count(*) FROM t WHERE n = %s", [Decimal("12.345")]) == 0
    assert one(db, "SELECT count(*) FROM t WHERE n = %s", [Decimal("12.35")]) == 1
    assert one(db, "SELECT count(*) FROM t WHERE n < %s", [Decimal("1e12")]) == 3
