"""jsonb values come back, compare and combine as in PostgreSQL, on both engines.

What JSON-building functions and jsonb operators return is a Python dict or
list (as psycopg returns PostgreSQL's jsonb), ``||`` and ``-`` on jsonb are
jsonb's own operators (not text concatenation or subtraction), and two jsonb
values equal in PostgreSQL (keys in another order) are equal.
"""

from __future__ import annotations

import pytest

import loomdb


@pytest.fixture
def docs(fresh_db):
    fresh_db.execute("CREATE TABLE docs (id INT PRIMARY KEY, state JSONB)")
    fresh_db.executemany(
        "INSERT INTO docs VALUES (%s, %s)",
        [(1, {"plan": ["read", "edit"], "n": 1}), (2, {"plan": [], "goal": "fix"}), (3, [1, "a", "b"])],
    )
    return fresh_db


def one(db, sql, params=None):
    return db.execute(sql, params).fetchone()[0]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT jsonb_build_object('a', 1, 'b', 'x')", {"a": 1, "b": "x"}),
        ("SELECT json_build_object('a', 1)", {"a": 1}),
        ("SELECT jsonb_build_array(1, 'x')", [1, "x"]),
        ("SELECT jsonb_agg(id ORDER BY id) FROM docs", [1, 2, 3]),
        ("SELECT json_agg(id ORDER BY id) FROM docs", [1, 2, 3]),
        ("SELECT jsonb_object_agg(id, id) FROM docs", {"1": 1, "2": 2, "3": 3}),
        (
            "SELECT state || '{\"z\": 1}'::jsonb FROM docs WHERE id = 1",
            {"plan": ["read", "edit"], "n": 1, "z": 1},
        ),
        ("SELECT state || '{\"n\": 2}' FROM docs WHERE id = 1", {"plan": ["read", "edit"], "n": 2}),
        ("SELECT state || '[true]'::jsonb FROM docs WHERE id = 3", [1, "a", "b", True]),
        ("SELECT state || '{\"k\": 0}'::jsonb FROM docs WHERE id = 3", [1, "a", "b", {"k": 0}]),
        ("SELECT state - 'plan' FROM docs WHERE id = 2", {"goal": "fix"}),
        ("SELECT state - 'a' FROM docs WHERE id = 3", [1, "b"]),
        ("SELECT state - 0 FROM docs WHERE id = 3", ["a", "b"]),
        ("SELECT state - -1 FROM docs WHERE id = 3", [1, "a"]),
        ('SELECT \'{"a":1,"b":2}\'::jsonb = \'{"b":2,"a":1}\'::jsonb', True),
        ("SELECT 'x' || 'y'", "xy"),
    ],
)
def test_json_values_and_operators_are_postgresqls(docs, sql, expected):
    got = one(docs, sql)
    assert got == expected
    assert type(got) is type(expected)


def test_an_update_with_jsonb_operators_stores_json(docs):
    docs.execute("UPDATE docs SET state = state - 'plan' WHERE id = 1")
    docs.execute("UPDATE docs SET state = state || '{\"done\": true}'::jsonb WHERE id = 2")
    rows = dict(docs.execute("SELECT id, state FROM docs WHERE id < 3 ORDER BY id").fetchall())
    assert rows == {1: {"n": 1}, 2: {"plan": [], "goal": "fix", "done": True}}
    assert one(docs, "SELECT count(*) FROM docs WHERE state @> '{\"done\": true}'") == 1


def test_deleting_from_a_scalar_or_an_object_by_index_is_an_error(docs):
    with pytest.raises(loomdb.DataError, match="cannot delete from"):
        one(docs, "SELECT '5'::jsonb - 'a'")
    with pytest.raises(loomdb.DataError, match="integer index"):
        one(docs, "SELECT state - 1 FROM docs WHERE id = 1")
