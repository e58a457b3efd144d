"""Timestamps and dates compared with string literals, as PostgreSQL compares them.

The SQLite engine stores a timestamp as fixed-width UTC text; a literal
written another way ('2024-05-01 10:05:00', '2024-05-01T10:05:00Z', '+02')
is the same instant in PostgreSQL, so it must select the same rows.
"""

from __future__ import annotations

import datetime as dt

import pytest

import loomdb

UTC = dt.UTC


@pytest.fixture
def steps(fresh_db):
    fresh_db.execute("CREATE TABLE steps (n INT PRIMARY KEY, at TIMESTAMPTZ, day DATE)")
    fresh_db.executemany(
        "INSERT INTO steps VALUES (%s, %s, %s)",
        [(n, dt.datetime(2024, 5, 1, 10, n, tzinfo=UTC), dt.date(2024, 5, n)) for n in range(1, 8)],
    )
    return fresh_db


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("at > '2024-05-01 10:05:00'", [6, 7]),
        ("at >= '2024-05-01 10:05:00'", [5, 6, 7]),
        ("at = '2024-05-01T10:03:00Z'", [3]),
        ("at < '2024-05-01 12:02:00+02'", [1]),
        ("at <> '2024-05-01 10:01:00'", [2, 3, 4, 5, 6, 7]),
        ("'2024-05-01 10:06:00' < at", [7]),
        ("at BETWEEN '2024-05-01 10:02:00' AND '2024-05-01T10:04:00+00:00'", [2, 3, 4]),
        ("at IN ('2024-05-01 10:01:00', '2024-05-01T10:07:00Z')", [1, 7]),
        ("day > '2024-05-05'", [6, 7]),
        ("day = '2024-05-03'", [3]),
    ],
)
def test_a_time_literal_selects_what_postgresql_selects(steps, where, expected):
    rows = steps.execute(f"SELECT n FROM steps WHERE {where} ORDER BY n").fetchall()
    assert [r[0] for r in rows] == expected


def test_a_literal_that_is_no_timestamp_is_an_error(steps):
    with pytest.raises(loomdb.DataError, match="invalid input syntax for type timestamp"):
        steps.execute("SELECT n FROM steps WHERE at > 'yesterday-ish'").fetchall()
