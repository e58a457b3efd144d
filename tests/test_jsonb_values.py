"""jsonb values come back, compare and combine as in PostgreSQL, on both engines.

What JSON-building functions and jsonb operators return is a Python dict or
list (as psycopg returns PostgreSQL's jsonb), ``||`` and ``-`` on jsonb are
jsonb's own operators (not text concatenation or subtraction), and two jsonb
values equal in PostgreSQL (keys in another order) are equal.
"""

from __future__ import annotations

import pytest
from value_checks import one

import loomdb


@pytest.fixture
def docs(fresh_db):
    fresh_db.execute("CREATE TABLE docs (id INT PRIMARY KEY, state JSONB)")
    fresh_db.executemany(
        "INSERT INTO docs VALUES (%s, %s)",
        [(1, {"plan": ["read", "edit"], "n": 1}), (2, {"plan": [], "goal": "fix"}), (3, [1, "a", "b"])],
    )
    return fresh_db


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


# -- PostgreSQL's jsonb text form, numbers and comparisons ------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT state::text FROM docs WHERE id = 1", '{"n": 1, "plan": ["read", "edit"]}'),
        ("SELECT state ->> 'plan' FROM docs WHERE id = 1", '["read", "edit"]'),
        (
            """SELECT '{"bb": 1, "a": {"c": 2.50}, "B": 1e2}'::jsonb::text""",
            '{"B": 100, "a": {"c": 2.50}, "bb": 1}',
        ),
        ("""SELECT '{"a": 1.50}'::jsonb ->> 'a'""", "1.50"),
        ("""SELECT '{"a": {"b": [true]}}'::jsonb #>> '{a,b}'""", "[true]"),
        ("""SELECT '{"a": 1e2}'::jsonb -> 'a'""", 100),
        ("SELECT '[1.0]'::jsonb -> 0", 1.0),
        ("SELECT '1.0'::jsonb = '1'::jsonb", True),
        ("""SELECT '{"a": 1, "b": [2]}'::jsonb = '{"b": [2.0], "a": 1}'""", True),
        ("SELECT 'true'::jsonb = '1'::jsonb", False),
        ("""SELECT '{"a": 1.0}'::jsonb @> '{"a": 1}'""", True),
        ("""SELECT '{"a": [1, 2]}'::jsonb @> '{"a": 1}'""", False),
        ("SELECT state ? 'a' FROM docs WHERE id = 3", True),
        ("SELECT state ? 'n' FROM docs WHERE id = 3", False),
        ("""SELECT '"x"'::jsonb ? 'x'""", True),
    ],
)
def test_jsonb_prints_and_compares_as_postgresql(docs, sql, expected):
    got = one(docs, sql)
    assert got == expected
    assert type(got) is type(expected)


def test_a_string_stored_into_jsonb_keeps_its_numbers_as_numerics(docs):
    docs.execute("""INSERT INTO docs VALUES (4, '{"a": 1.50, "b": 1e2}')""")
    assert one(docs, "SELECT state FROM docs WHERE id = 4") == {"a": 1.5, "b": 100}
    assert one(docs, "SELECT state::text FROM docs WHERE id = 4") == '{"a": 1.50, "b": 100}'


def test_has_key_of_null_is_null(docs):
    docs.execute("INSERT INTO docs VALUES (4, NULL)")
    assert one(docs, "SELECT state ? 'n' FROM docs WHERE id = 4") is None
    assert one(docs, "SELECT count(*) FROM docs WHERE state ? 'plan'") == 2


# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT jsonb_set(state, '{plan,0}', '\"x\"') FROM docs WHERE id = 1",
            {"plan": ["x", "edit"], "n": 1},
        ),
        (
            "SELECT jsonb_set(state, '{m}', '2', false) FROM docs WHERE id = 1",
            {"plan": ["read", "edit"], "n": 1},
        ),
        ("SELECT jsonb_set(state, '{-1}', '9') FROM docs WHERE id = 3", [1, "a", 9]),
        ("SELECT jsonb_set(state, '{9}', '9') FROM docs WHERE id = 3", [1, "a", "b", 9]),
        ("SELECT jsonb_insert(state, '{1}', '0') FROM docs WHERE id = 3", [1, 0, "a", "b"]),
        ("SELECT jsonb_insert(state, '{1}', '0', true) FROM docs WHERE id = 3", [1, "a", 0, "b"]),
        ("SELECT state #> '{plan,1}' FROM docs WHERE id = 1", "edit"),
        ("SELECT state #>> '{plan}' FROM docs WHERE id = 1", '["read", "edit"]'),
        ("SELECT state #- '{plan,0}' FROM docs WHERE id = 1", {"plan": ["edit"], "n": 1}),
        ("SELECT state #- '{plan}' || '{\"z\": 1}' FROM docs WHERE id = 1", {"n": 1, "z": 1}),
    ],
)
def test_text_array_paths_are_postgresqls(docs, sql, expected):
    got = one(docs, sql)
    assert got == expected
    assert type(got) is type(expected)


def test_a_path_or_key_list_may_be_a_python_list_parameter(docs):
    assert one(docs, "SELECT state #> %s FROM docs WHERE id = 1", (["plan", "0"],)) == "read"
    assert one(docs, "SELECT jsonb_set(state, %s, '2') FROM docs WHERE id = 1", (["n"],)) == {
        "plan": ["read", "edit"],
        "n": 2,
    }
    assert one(docs, "SELECT state - %s FROM docs WHERE id = 1", (["n", "plan"],)) == {}
    assert one(docs, "SELECT state #- %s FROM docs WHERE id = 1", ("{plan,0}",)) == {"plan": ["edit"], "n": 1}
    assert one(docs, "SELECT state - %s FROM docs WHERE id = 1", ("n",)) == {"plan": ["read", "edit"]}
    assert one(docs, "SELECT state - %s FROM docs WHERE id = 3", (0,)) == ["a", "b"]


def test_path_errors_are_postgresqls(docs):
    with pytest.raises(loomdb.DataError) as caught:
        one(docs, "SELECT jsonb_set('5'::jsonb, '{a}', '1')")
    assert caught.value.sqlstate == "22023"
    with pytest.raises(loomdb.DataError) as caught:
        one(docs, "SELECT jsonb_insert(state, '{n}', '1') FROM docs WHERE id = 1")
    assert caught.value.sqlstate == "22023"
    with pytest.raises(loomdb.DataError) as caught:
        one(docs, "SELECT jsonb_set(state, '{x}', '1') FROM docs WHERE id = 3")
    assert caught.value.sqlstate == "22P02"


# -- JSON built from typed values --------------------------------------------------------


def test_json_builders_keep_jsonb_booleans_and_numerics(docs):
    docs.execute("CREATE TABLE t (id INT PRIMARY KEY, ok BOOLEAN, price NUMERIC(6,2), doc JSONB)")
    docs.execute("INSERT INTO t VALUES (1, true, 2.50, '{\"a\": [1]}'), (2, NULL, NULL, NULL)")
    got = one(
        docs, "SELECT jsonb_build_object('ok', ok, 'p', price, 'd', doc, 'gt', id > 1) FROM t WHERE id = 1"
    )
    assert got == {"ok": True, "p": 2.5, "d": {"a": [1]}, "gt": False}
    assert one(docs, "SELECT jsonb_agg(doc ORDER BY id) FROM t") == [{"a": [1]}, None]
    assert one(docs, "SELECT jsonb_agg(ok ORDER BY id) FROM t") == [True, None]
    assert one(docs, "SELECT to_jsonb(ok) FROM t WHERE id = 2") is None
    assert one(docs, "SELECT jsonb_build_array(1e2, 1.50)") == [100, 1.5]


# -- set-returning functions in FROM ---------------------------------------------------


def test_json_set_returning_functions_in_from_name_and_decode_their_columns(docs):
    cur = docs.execute("""SELECT * FROM jsonb_each('{"a": [1], "b": 2.0}'::jsonb) ORDER BY key""")
    assert [d[0] for d in cur.description] == ["key", "value"]
    assert cur.fetchall() == [("a", [1]), ("b", 2.0)]
    rows = docs.execute(
        "SELECT d.id, e.value FROM docs d, jsonb_array_elements_text(d.state) e WHERE d.id = 3"
    )
    assert [tuple(r) for r in rows.fetchall()] == [(3, "1"), (3, "a"), (3, "b")]
    keys = docs.execute(
        "SELECT k FROM docs, jsonb_object_keys(state) AS k WHERE id = 1 ORDER BY k"
    ).fetchall()
    assert [r[0] for r in keys] == ["n", "plan"]


def test_jsonb_type_errors_are_postgresqls(docs):
    for sql, state in [
        ("SELECT jsonb_array_length('{}'::jsonb)", "22023"),
        ("SELECT * FROM jsonb_each('[1]'::jsonb)", "22023"),
        ("SELECT * FROM jsonb_array_elements('{}'::jsonb)", "22023"),
        ("SELECT '{x'::jsonb", "22P02"),
        ("SELECT state + 1 FROM docs", "42883"),
    ]:
        with pytest.raises(loomdb.Error) as caught:
            one(docs, sql)
        assert caught.value.sqlstate == state, sql


def test_a_json_set_returning_function_in_the_select_list_gives_a_row_per_element(docs):
    rows = docs.execute(
        "SELECT id, jsonb_array_elements_text(state) AS v FROM docs WHERE id = 3 ORDER BY id, v"
    ).fetchall()
    assert [tuple(r) for r in rows] == [(3, "1"), (3, "a"), (3, "b")]
    keys = docs.execute("SELECT jsonb_object_keys(state) FROM docs WHERE id = 2 ORDER BY 1").fetchall()
    assert [r[0] for r in keys] == ["goal", "plan"]
    assert [r[0] for r in docs.execute("SELECT jsonb_array_elements('[{\"a\": 1}]'::jsonb)")] == [{"a": 1}]
