"""Casts to integers and division by zero as PostgreSQL has them, on both engines.

PostgreSQL rounds a numeric half away from zero when it casts it to an
integer (numeric literals such as 2.5 are numeric), a float half to even,
accepts text only when it is an integer, and raises on overflow and on
division by zero; SQLite's CAST truncates and never fails, and its division
by zero is NULL.
"""

from __future__ import annotations

import pytest

import loomdb


@pytest.fixture
def nums(fresh_db):
    fresh_db.execute("CREATE TABLE nums (id INT PRIMARY KEY, r DOUBLE PRECISION, n NUMERIC(10, 2), s TEXT)")
    fresh_db.executemany(
        "INSERT INTO nums VALUES (%s, %s, %s, %s)",
        [(1, 2.5, "2.50", " 42 "), (2, 3.5, "-2.50", "7"), (3, -0.5, "0.49", "-3")],
    )
    return fresh_db


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 2.5::int", 3),
        ("SELECT (-2.5)::int", -3),
        ("SELECT 2.4::bigint", 2),
        ("SELECT 1.5::smallint", 2),
        ("SELECT '12'::int", 12),
        ("SELECT ' 12 '::int", 12),
        ("SELECT 7::smallint", 7),
        ("SELECT 7 / 2", 3),
        ("SELECT 7 % 3", 1),
        ("SELECT r::int FROM nums WHERE id = 1", 2),
        ("SELECT r::int FROM nums WHERE id = 2", 4),
        ("SELECT r::int FROM nums WHERE id = 3", 0),
        ("SELECT n::int FROM nums WHERE id = 1", 3),
        ("SELECT n::int FROM nums WHERE id = 2", -3),
        ("SELECT s::int FROM nums WHERE id = 1", 42),
        ("SELECT sum(s::int) FROM nums", 46),
        ("SELECT %s::int", 5),
    ],
)
def test_casts_to_integers_round_as_postgresql_does(nums, sql, expected):
    got = nums.execute(sql, [5] if "%s" in sql else None).fetchone()[0]
    assert got == expected
    assert type(got) is int


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 'abc'::int", "invalid input syntax for type integer"),
        ("SELECT '12.5'::int", "invalid input syntax for type integer"),
        ("SELECT 3000000000::int", "integer out of range"),
        ("SELECT 40000::smallint", "smallint out of range"),
        ("SELECT 1 / 0", "division by zero"),
        ("SELECT 1.5 / 0", "division by zero"),
        ("SELECT 7 % 0", "division by zero"),
        ("SELECT id / (id - 1) FROM nums", "division by zero"),
    ],
)
def test_bad_casts_and_division_by_zero_raise_as_in_postgresql(nums, sql, message):
    with pytest.raises(loomdb.DataError, match=message):
        nums.execute(sql).fetchall()


def test_null_divided_by_zero_is_null_as_in_postgresql(nums):
    assert nums.execute("SELECT CAST(NULL AS INT) / 0, NULL % 0").fetchone() == (None, None)


def test_a_failed_cast_in_an_update_changes_nothing(nums):
    with pytest.raises(loomdb.DataError, match="invalid input syntax"):
        nums.execute("UPDATE nums SET id = (s || 'x')::int WHERE id = 1")
    assert nums.execute("SELECT id FROM nums ORDER BY id").fetchall() == [(1,), (2,), (3,)]
