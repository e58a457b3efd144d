"""PostgreSQL's type resolution on both engines: operators and aggregates over types
PostgreSQL has none for raise 42883 (ProgrammingError), and an unknown string literal
meeting a number or a boolean is read as that type (22P02, DataError, when it is not
one). On SQLite this is :mod:`loomdb.backend.sqlite.type_checks`; on PostgreSQL the
server decides, and both give the same class and SQLSTATE."""

from __future__ import annotations

import pytest

from loomdb import errors


@pytest.fixture
def typed(fresh_db):
    fresh_db.execute("CREATE TABLE ty (id INT PRIMARY KEY, s TEXT, ok BOOLEAN, n NUMERIC(6,2), j JSONB)")
    fresh_db.executemany(
        "INSERT INTO ty VALUES (%s, %s, %s, %s, %s)",
        [(1, "a", True, "1.50", '{"k": 1}'), (2, "b", False, "2.00", "{}"), (3, None, None, None, None)],
    )
    return fresh_db


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT true + 1", "operator does not exist: boolean + integer"),
        ("SELECT ok + 1 FROM ty", "operator does not exist: boolean + integer"),
        ("SELECT s * 2 FROM ty", "operator does not exist: text * integer"),
        ("SELECT j + 1 FROM ty", "operator does not exist: jsonb + integer"),
        ("SELECT -7::text", "operator does not exist: - text"),
        ("SELECT -ok FROM ty", "operator does not exist: - boolean"),
        ("SELECT sum(s) FROM ty", "function sum(text) does not exist"),
        ("SELECT avg(ok) FROM ty", "function avg(boolean) does not exist"),
        ("SELECT max(ok) FROM ty", "function max(boolean) does not exist"),
        ("SELECT min(j) FROM ty", "function min(jsonb) does not exist"),
    ],
)
def test_undefined_operator_or_aggregate(typed, sql, message):
    with pytest.raises(errors.ProgrammingError, match=r"does not exist") as info:
        typed.execute(sql).fetchall()
    assert info.value.sqlstate == "42883"
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT '2' + 1 AS v", 3),
        ("SELECT id + ' 4 ' AS v FROM ty WHERE id = 1", 5),
        ("SELECT count(*) AS v FROM ty WHERE ok = 'true'", 1),
        ("SELECT count(*) AS v FROM ty WHERE ok = 'f'", 1),
        ("SELECT count(*) AS v FROM ty WHERE ok <> 'yes'", 1),
        ("SELECT count(*) AS v FROM ty WHERE ok IN ('on', '0')", 2),
        ("SELECT count(*) AS v FROM ty WHERE id = '2'", 1),
        ("SELECT bool_and(ok) AS v FROM ty", False),
        ("SELECT every(ok) AS v FROM ty", False),
        ("SELECT every(ok) AS v FROM ty WHERE id = 1", True),
    ],
)
def test_unknown_literal_takes_the_other_type(typed, sql, expected):
    got = typed.execute(sql).fetchone()["v"]
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a' + 1",
        "SELECT id FROM ty WHERE ok = 'maybe'",
        "SELECT id FROM ty WHERE id = 'x'",
        "SELECT id FROM ty WHERE ok IN ('t', 'o')",
    ],
)
def test_bad_unknown_literal_is_22p02(typed, sql):
    with pytest.raises(errors.DataError) as info:
        typed.execute(sql).fetchall()
    assert info.value.sqlstate == "22P02"


@pytest.mark.parametrize(
    ("sql", "sqlstate", "message"),
    [
        ("SELECT id LIKE '1%' FROM ty", "42883", "operator does not exist: integer ~~ unknown"),
        ("SELECT upper(ok) FROM ty", "42883", "function upper(boolean) does not exist"),
        ("SELECT abs(s) FROM ty", "42883", "function abs(text) does not exist"),
        ("SELECT coalesce(s, 1) FROM ty", "42804", "COALESCE types text and integer cannot be matched"),
        ("SELECT '10' / '2'", "42725", "operator is not unique: unknown / unknown"),
        ("SELECT ts + 1 FROM tt", "42883", "timestamp with time zone + integer"),
        ("SELECT ts = 1 FROM tt", "42883", "timestamp with time zone = integer"),
    ],
)
def test_more_undefined_operators(typed, sql, sqlstate, message):
    typed.execute("CREATE TABLE tt (id INT PRIMARY KEY, ts TIMESTAMPTZ)")
    with pytest.raises(errors.ProgrammingError) as info:
        typed.execute(sql).fetchall()
    assert info.value.sqlstate == sqlstate
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT ok AND 'true' AS v FROM ty WHERE id = 1", True),
        ("SELECT count(*) AS v FROM ty WHERE 't' AND ok", 1),
        ("SELECT coalesce(ok, 'yes') AS v FROM ty WHERE id = 3", True),
        ("SELECT nullif(id, '2') AS v FROM ty WHERE id = 2", None),
        ("SELECT greatest(id, '7') AS v FROM ty WHERE id = 1", 7),
        ("SELECT CASE WHEN ok THEN 1 ELSE '2' END AS v FROM ty WHERE id = 2", 2),
        ("SELECT ok::text AS v FROM ty WHERE id = 2", "false"),
        ("SELECT ok || '!' AS v FROM ty WHERE id = 1", "true!"),
        ("SELECT (id > 1)::text AS v FROM ty WHERE id = 1", "false"),
        ("SELECT concat(ok, '-', id) AS v FROM ty WHERE id = 1", "t-1"),
        ("SELECT CASE ok WHEN 'yes' THEN 1 ELSE 0 END AS v FROM ty WHERE id = 1", 1),
    ],
)
def test_literals_and_booleans_as_postgres_reads_them(typed, sql, expected):
    got = typed.execute(sql).fetchone()["v"]
    assert got == expected and type(got) is type(expected)


def test_case_branch_that_is_no_integer_is_22p02(typed):
    with pytest.raises(errors.DataError) as info:
        typed.execute("SELECT CASE WHEN ok THEN 1 ELSE 'a' END FROM ty").fetchall()
    assert info.value.sqlstate == "22P02"
