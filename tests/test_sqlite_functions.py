"""PostgreSQL's string functions on both engines, and honest refusals on SQLite.

Each function gives PostgreSQL's value and Python type on the SQLite engine
(loomdb's ``loom_*`` functions, :mod:`loomdb.backend.sqlite.functions`) and on
the PostgreSQL engine (the server itself), NULL for a NULL argument, and
PostgreSQL's errors with its SQLSTATE. A PostgreSQL function the SQLite
engine cannot run exactly raises NotSupportedError (0A000) naming it; a name
PostgreSQL does not know raises 42883 on both, as PostgreSQL does.

Case mapping and ``initcap``'s words follow PostgreSQL's C locale, the ctype
of the test server's databases: only ASCII letters change case.
"""

from __future__ import annotations

import pytest

import loomdb
from loomdb import errors


def value(db, sql: str):
    """The single value ``sql`` (one column named v) returns."""
    return db.execute(sql).fetchone()["v"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT left('abcde', 2) AS v", "ab"),
        ("SELECT left('abcde', -1) AS v", "abcd"),
        ("SELECT left('abc', -5) AS v", ""),
        ("SELECT left('abc', 0) AS v", ""),
        ("SELECT right('abcde', 2) AS v", "de"),
        ("SELECT right('abcde', -1) AS v", "bcde"),
        ("SELECT right('abc', -5) AS v", ""),
        ("SELECT right('abc', 9) AS v", "abc"),
        ("SELECT repeat('ab', 3) AS v", "ababab"),
        ("SELECT repeat('ab', 0) AS v", ""),
        ("SELECT repeat('x', -1) AS v", ""),
        ("SELECT reverse('abc\u00e9') AS v", "\u00e9cba"),
        ("SELECT initcap('hello wORLD foo_bar 3abc') AS v", "Hello World Foo_Bar 3abc"),
        ("SELECT initcap('\u00e9a \u00c9A x\u00c9a') AS v", "\u00e9A \u00c9A X\u00c9A"),
        ("SELECT lpad('ab', 5, 'xy') AS v", "xyxab"),
        ("SELECT lpad('ab', 5) AS v", "   ab"),
        ("SELECT lpad('abcdef', 3, 'x') AS v", "abc"),
        ("SELECT lpad('abc', 5, '') AS v", "abc"),
        ("SELECT rpad('ab', 5, 'xy') AS v", "abxyx"),
        ("SELECT rpad('ab', -1) AS v", ""),
        ("SELECT md5('abc') AS v", "900150983cd24fb0d6963f7d28e17f72"),
        ("SELECT md5('\u00e9') AS v", "66ddcd97cfdeabb2f6fb8a999b4bc76f"),
        ("SELECT split_part('a,b,c', ',', 2) AS v", "b"),
        ("SELECT split_part('a,b,c', ',', -1) AS v", "c"),
        ("SELECT split_part('a,b,c', ',', 9) AS v", ""),
        ("SELECT split_part('', ',', 1) AS v", ""),
        ("SELECT split_part('abc', '', 1) AS v", "abc"),
        ("SELECT translate('abcabc', 'aab', 'x') AS v", "xcxc"),
        ("SELECT translate('abc', 'ab', 'xy') AS v", "xyc"),
        ("SELECT starts_with('search', 'se') AS v", True),
        ("SELECT starts_with('search', 'x') AS v", False),
        ("SELECT ascii('A') AS v", 65),
        ("SELECT ascii('') AS v", 0),
        ("SELECT chr(65) AS v", "A"),
        ("SELECT chr(233) AS v", "\u00e9"),
        ("SELECT strpos('abcb', 'b') AS v", 2),
        ("SELECT position('z' in 'abc') AS v", 0),
        ("SELECT regexp_replace('a1b22c', '[0-9]+', '#') AS v", "a#b22c"),
        ("SELECT regexp_replace('a1b22c', '[0-9]+', '#', 'g') AS v", "a#b#c"),
        ("SELECT regexp_replace('aAa', 'a', 'x', 'gi') AS v", "xxx"),
        ("SELECT regexp_replace('abc', '(b)', '[\\1\\&]') AS v", "a[bb]c"),
        ("SELECT 'abc' ~ '^a' AS v", True),
        ("SELECT 'abc' ~ '^A' AS v", False),
        ("SELECT 'abc' ~* '^A' AS v", True),
        ("SELECT 'abc' !~ '^a' AS v", False),
        ("SELECT 'abc' !~* 'B' AS v", False),
    ],
)
def test_string_function(fresh_db, sql, expected):
    got = value(fresh_db, sql)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT left(NULL, 2) AS v",
        "SELECT left('abc', NULL) AS v",
        "SELECT right(NULL, 2) AS v",
        "SELECT repeat(NULL, 2) AS v",
        "SELECT reverse(NULL) AS v",
        "SELECT initcap(NULL) AS v",
        "SELECT lpad(NULL, 3) AS v",
        "SELECT rpad('a', 3, NULL) AS v",
        "SELECT md5(NULL) AS v",
        "SELECT split_part('a,b', NULL, 1) AS v",
        "SELECT translate('abc', NULL, 'x') AS v",
        "SELECT starts_with(NULL, 'a') AS v",
        "SELECT ascii(NULL) AS v",
        "SELECT chr(NULL) AS v",
        "SELECT strpos(NULL, 'a') AS v",
        "SELECT regexp_replace(NULL, 'a', 'b') AS v",
        "SELECT NULL ~ 'a' AS v",
        "SELECT 'a' ~* NULL AS v",
    ],
)
def test_null_argument_gives_null(fresh_db, sql):
    assert value(fresh_db, sql) is None


@pytest.mark.parametrize(
    ("sql", "sqlstate", "cls"),
    [
        ("SELECT split_part('a,b', ',', 0) AS v", "22023", errors.DataError),
        ("SELECT chr(0) AS v", "54000", errors.OperationalError),
        ("SELECT chr(-1) AS v", "22023", errors.DataError),
        ("SELECT chr(1114112) AS v", "54000", errors.OperationalError),
        ("SELECT chr(55296) AS v", "54000", errors.OperationalError),
        ("SELECT 'a' ~ '(' AS v", "2201B", errors.DataError),
        ("SELECT regexp_replace('a', 'a', 'b', 'z') AS v", "22023", errors.DataError),
        ("SELECT no_such_function_anywhere(1) AS v", "42883", errors.ProgrammingError),
        ("SELECT left('abc', 'x') AS v", "22P02", errors.DataError),
    ],
)
def test_errors_carry_postgres_sqlstate(fresh_db, sql, sqlstate, cls):
    with pytest.raises(errors.Error) as caught:
        value(fresh_db, sql)
    assert caught.value.sqlstate == sqlstate
    assert type(caught.value) is cls


@pytest.fixture
def flags(fresh_db):
    fresh_db.execute("CREATE TABLE flags (id INT PRIMARY KEY, g TEXT, ok BOOLEAN)")
    fresh_db.executemany(
        "INSERT INTO flags VALUES (%s, %s, %s)",
        [(1, "a", True), (2, "a", False), (3, "b", True), (4, "b", None), (5, "c", None)],
    )
    return fresh_db


def test_bool_and_bool_or(flags):
    rows = flags.execute(
        "SELECT g, bool_and(ok) AS a, bool_or(ok) AS o FROM flags GROUP BY g ORDER BY g"
    ).fetchall()
    assert [(r["g"], r["a"], r["o"]) for r in rows] == [
        ("a", False, True),
        ("b", True, True),
        ("c", None, None),
    ]
    assert all(type(r["a"]) in (bool, type(None)) for r in rows)
    empty = flags.execute("SELECT bool_and(ok) AS a, bool_or(ok) AS o FROM flags WHERE id > 99").fetchone()
    assert (empty["a"], empty["o"]) == (None, None)


@pytest.fixture
def floats(fresh_db):
    fresh_db.execute("CREATE TABLE fl (id INT PRIMARY KEY, g TEXT, d DOUBLE PRECISION)")
    fresh_db.executemany(
        "INSERT INTO fl VALUES (%s, %s, %s)",
        [(1, "a", 1.0), (2, "a", 2.0), (3, "a", 4.0), (4, "a", None), (5, "b", 0.1), (6, "c", None)],
    )
    return fresh_db


def test_float_variance_aggregates(floats):
    """Over double precision: PostgreSQL's float8 results, to the bit."""
    row = floats.execute(
        "SELECT stddev(d) AS a, stddev_samp(d) AS b, stddev_pop(d) AS c, variance(d) AS e,"
        " var_samp(d) AS f, var_pop(d) AS g FROM fl WHERE g = 'a'"
    ).fetchone()
    assert tuple(row) == (
        1.5275252316519468,
        1.5275252316519468,
        1.247219128924647,
        2.3333333333333335,
        2.3333333333333335,
        1.5555555555555556,
    )
    assert all(type(v) is float for v in row)
    one = floats.execute("SELECT stddev(d) AS a, var_pop(d) AS b FROM fl WHERE g = 'b'").fetchone()
    assert (one["a"], one["b"]) == (None, 0.0)
    none = floats.execute("SELECT stddev_pop(d) AS a, variance(d) AS b FROM fl WHERE g = 'c'").fetchone()
    assert (none["a"], none["b"]) == (None, None)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT stddev(x::real) AS v FROM (SELECT 1 AS x) s", "stddev"),
        ("SELECT stddev(x) OVER () AS v FROM (SELECT 1::float8 AS x) s", "stddev"),
        ("SELECT bool_or(x) OVER () AS v FROM (SELECT true AS x) s", "bool_or"),
        ("SELECT jsonb_path_exists('1'::jsonb, '$') AS v", "jsonb_path_exists"),
        ("SELECT age(timestamp '2024-03-01', timestamp '2024-01-01') AS v", "age"),
        ("SELECT gcd(4, 6) AS v", "gcd"),
    ],
)
def test_sqlite_refuses_postgres_functions_it_lacks(fresh_db, sql, name):
    with pytest.raises(errors.NotSupportedError) as caught:
        value(fresh_db, sql)
    assert caught.value.sqlstate == "0A000"
    assert f"{name}()" in str(caught.value)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("pattern", ["[[:alpha:]]", "\\ma", "a\\y"])
def test_sqlite_refuses_regex_it_would_read_otherwise(fresh_db, pattern):
    with pytest.raises(errors.NotSupportedError) as caught:
        value(fresh_db, f"SELECT 'a b' ~ '{pattern}' AS v")
    assert caught.value.sqlstate == "0A000"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT left('abc', 2) AS v",  # a scalar function
        "SELECT string_agg(x, ',') AS v FROM (SELECT 'a' AS x) s",  # an aggregate
        "SELECT sum(1.5) OVER () AS v",  # an exact window aggregate
        "SELECT now() IS NOT NULL AS v",  # the statement clock
    ],
)
def test_loomdb_functions_are_there_for_the_first_statement_of_a_connection(tmp_path, sql):
    """The SQLite engine registers its functions when a statement first names them:
    a fresh connection answers a statement using one at once."""
    path = str(tmp_path / "lazy.loom")
    loomdb.connect(path).close()
    db = loomdb.connect(path)
    try:
        assert db.execute(sql).fetchall()[0][0] is not None
    finally:
        db.close()


def test_a_plain_read_runs_on_a_connection_without_loomdb_functions(tmp_path):
    """Reads that call no function leave the connection without loomdb's functions
    (SQLite steps statements more slowly the more functions a connection has)."""
    from loomdb.backend.sqlite.backend import SQLiteBackend

    backend = SQLiteBackend(str(tmp_path / "plain.db"))
    try:
        names = {r[0] for r in backend.execute("SELECT name FROM pragma_function_list")}
        assert not any(n.startswith("loom_") for n in names)
        list(backend.execute("SELECT loom_divisor(2, 0)"))
        names = {r[0] for r in backend.execute("SELECT name FROM pragma_function_list")}
        assert "loom_divisor" in names
    finally:
        backend.conn.close()
