"""NUMERIC arithmetic as PostgreSQL computes it, on both engines.

A number literal with a point or an exponent is numeric; numeric arithmetic and
functions are exact, with PostgreSQL's result scales (``+``/``-``: the larger
scale, ``*``: the sum, ``/``: at least 16 significant digits); numeric values
computed in a query compare, sort and group as numbers; integer and float
arithmetic stays the engine's own.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlglot.optimizer.annotate_types import annotate_types
from value_checks import one, same

import loomdb
from loomdb.backend.sqlite.dialect import LoomSQLite
from loomdb.sql.dialect import LoomPostgres, parse


@pytest.fixture
def db(fresh_db):
    fresh_db.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, big BIGINT, d DOUBLE PRECISION, n NUMERIC(10, 2), m NUMERIC)"
    )
    fresh_db.executemany(
        "INSERT INTO t VALUES (%s, %s, %s, %s, %s)",
        [(1, 10, 0.1, "12.35", "1.10"), (2, 20, 0.2, "-1.01", "2.205"), (3, 31, None, "0.11", "0.001")],
    )
    return fresh_db


def column(db, sql):
    return [r[0] for r in db.execute(sql).fetchall()]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 3.0", "3.0"),
        ("SELECT 1e3", "1000"),
        ("SELECT -0.001", "-0.001"),
        ("SELECT 0.1 + 0.2", "0.3"),
        ("SELECT 1.50 + 1", "2.50"),
        ("SELECT 2.50 * 2", "5.00"),
        ("SELECT 7.0 / 2", "3.5000000000000000"),
        ("SELECT 1 / 3.0", "0.33333333333333333333"),
        ("SELECT 100::numeric / 8", "12.5000000000000000"),
        ("SELECT -7::numeric(10, 2)", "-7.00"),
        ("SELECT 2.0 ^ 0.5", "1.4142135623730950"),
        ("SELECT power(2.0, 10)", "1024.0000000000000"),
        ("SELECT mod(-17.5, 5)", "-2.5"),
        ("SELECT round(2.5), round(-2.5)", "3"),
        ("SELECT round(2.567, 2)", "2.57"),
        ("SELECT round(1234.5, -2)", "1200"),
        ("SELECT trunc(-2.9)", "-2"),
        ("SELECT ceil(2.1)", "3"),
        ("SELECT floor(-2.1)", "-3"),
        ("SELECT sign(0.0)", "0"),
        ("SELECT abs(-3.50)", "3.50"),
        ("SELECT sqrt(2.0)", "1.414213562373095"),
        ("SELECT greatest(1.5, 2)", "2"),
        ("SELECT least(3, 2.50, NULL)", "2.50"),
        ("SELECT ln(2.0)", "0.6931471805599453"),
        ("SELECT exp(1.0)", "2.7182818284590452"),
        ("SELECT log(2, 1024)", "10.0000000000000000"),
        ("SELECT div(-7.5, 2)", "-3"),
        ("SELECT 1e308 * 10", "1" + "0" * 309),
        ("SELECT n * 2 FROM t WHERE id = 1", "24.70"),
        ("SELECT n / 3 FROM t WHERE id = 1", "4.1166666666666667"),
        ("SELECT n * m FROM t WHERE id = 2", "-2.22705"),
        ("SELECT big / 3.0 FROM t WHERE id = 1", "3.3333333333333333"),
        ("SELECT avg(n) * 3 FROM t", "11.4500000000000001"),
        ("SELECT n - (SELECT avg(n) FROM t) FROM t WHERE id = 1", "8.5333333333333333"),
        ("SELECT coalesce(NULL, 1.50, 2)", "1.50"),
        ("SELECT CASE WHEN id = 1 THEN 1 ELSE 2.5 END FROM t WHERE id = 1", "1"),
        ("SELECT stddev(n) FROM t", "7.4112706962661493"),
        ("SELECT variance(id) FROM t", "1.00000000000000000000"),
    ],
)
def test_numeric_values_have_postgresql_digits(db, sql, expected):
    same(one(db, sql), Decimal(expected))


def test_integer_and_float_arithmetic_keep_their_types(db):
    row = db.execute("SELECT id * 2, id / 2, d * 2, d + 1, 2 ^ 3 FROM t WHERE id = 1").fetchone()
    assert [type(v) for v in row] == [int, int, float, float, float]
    assert tuple(row) == (2, 0, 0.2, 1.1, 8.0)


def test_computed_numerics_compare_and_sort_as_numbers(db):
    # in floating point 12.35 * 3 is 37.050000000000004 and 1.10 + 2.205 + 0.001 is 3.3059999999999996
    assert column(db, "SELECT id FROM t WHERE n * 3 = 37.05") == [1]
    assert column(db, "SELECT count(*) FROM t HAVING sum(m) = 3.306") == [3]
    assert column(db, "SELECT id FROM t WHERE n / 3 > 0.03 ORDER BY id") == [1, 3]
    assert column(db, "SELECT id FROM t ORDER BY n * -10, id") == [1, 3, 2]
    assert column(db, "SELECT id FROM t WHERE coalesce(n, 0) < 10 ORDER BY id") == [2, 3]
    assert column(db, "SELECT id FROM t GROUP BY id HAVING avg(m) * 2 > 4 ORDER BY id") == [2]


def test_union_of_integers_and_numerics_is_numeric(db):
    got = column(db, "SELECT 10 AS a UNION ALL SELECT 2.5 ORDER BY a")
    for value, want in zip(got, ["2.5", "10"], strict=True):
        same(value, Decimal(want))


def test_distinct_union_of_integers_and_numerics(db, engine):
    """PostgreSQL keeps the first of 1 and 1.0; SQLite would keep the last: refused there."""
    sql = "SELECT 10 AS a UNION SELECT 2.5 ORDER BY a"
    if engine == "sqlite":
        with pytest.raises(loomdb.NotSupportedError, match="UNION of integer and numeric"):
            db.execute(sql)
    else:
        for value, want in zip(column(db, sql), ["2.5", "10"], strict=True):
            same(value, Decimal(want))


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("SELECT 5.0 / 0", "22012"),
        ("SELECT n % 0 FROM t", "22012"),
        ("SELECT sqrt(-1.0)", "2201F"),
        ("SELECT (-8.0) ^ 0.5", "2201F"),
        ("SELECT ln(0.0)", "2201E"),
    ],
)
def test_numeric_errors_carry_postgresql_sqlstate(db, sql, sqlstate):
    with pytest.raises(loomdb.DataError) as info:
        db.execute(sql).fetchall()
    assert info.value.sqlstate == sqlstate


def sqlite_sql(sql):
    """The SQL the SQLite engine runs for ``sql`` (without table schemas)."""
    return annotate_types(parse(sql), dialect=LoomPostgres).sql(dialect=LoomSQLite)


def test_only_numeric_expressions_call_python_on_sqlite():
    assert "loom_num" not in sqlite_sql(
        "SELECT 1 + 2 * 3 - 4 / 5, 1.5::float * 2, abs(-3), round(2.5::float)"
    )
    assert sqlite_sql("SELECT 1.50 + 1 AS a") == (
        "SELECT CAST(loom_num_add('1.50', 1) AS TEXT) COLLATE loom_numeric AS a"
    )


def test_numeric_expressions_are_stored_as_numerics(fresh_db):
    fresh_db.execute("CREATE TABLE w (id INT PRIMARY KEY, i INT, s TEXT, n NUMERIC(10, 2))")
    fresh_db.execute("INSERT INTO w VALUES (1, 1.5 + 1.5, 0.0000001 * 1, 1.005 * 1)")
    fresh_db.execute("INSERT INTO w SELECT id + 1, i * 2.0, n / 3, n * 2 FROM w")
    fresh_db.execute("UPDATE w SET i = i * 1.0 + 1, s = s || '' WHERE id = 1")
    rows = fresh_db.execute("SELECT id, i, s, n FROM w ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [
        (1, 4, "0.0000001", Decimal("1.01")),
        (2, 6, "0.33666666666666666667", Decimal("2.02")),
    ]


def test_parameters_meeting_numerics_are_numeric(db, engine):
    for params, want in (([2], "24.70"), ([Decimal("2.5")], "30.875"), (["0.1"], "1.235")):
        same(db.execute("SELECT n * %s FROM t WHERE id = 1", params).fetchone()[0], Decimal(want))
    same(db.execute("SELECT sum(n) + %s FROM t", [1]).fetchone()[0], Decimal("12.45"))
    if engine == "sqlite":
        with pytest.raises(loomdb.NotSupportedError):
            db.execute("SELECT n * %s FROM t", [2.5]).fetchall()
    else:  # PostgreSQL computes numeric * float8 in double precision
        assert db.execute("SELECT n * %s FROM t WHERE id = 1", [2.5]).fetchone()[0] == 30.875
