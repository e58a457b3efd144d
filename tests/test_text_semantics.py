"""PostgreSQL's text semantics on both engines: LIKE's default escape character,
ILIKE, SIMILAR TO, COLLATE "C", substr with a start before the first character,
char(n), E'' and U&'' strings, to_hex, uuid and bytea input. On SQLite these are
the dialect's rewrites (:mod:`loomdb.backend.sqlite.text_dialect`) and loomdb's
functions; on PostgreSQL the server's own."""

from __future__ import annotations

import re
import uuid

import pytest

from loomdb import errors


def row(db, sql: str, *params):
    """The single row ``sql`` returns, as a tuple."""
    return tuple(db.execute(sql, params).fetchone())


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (r"SELECT 'a_c' LIKE 'a\_c', 'abc' LIKE 'a\_c', '100%' LIKE '%\%'", (True, False, True)),
        (r"SELECT 'abc' LIKE 'a\bc', 'a\b' LIKE 'a\\b', 'ab' LIKE 'ab\'", (True, True, False)),
        ("SELECT 'a%c' LIKE 'a!%c' ESCAPE '!', 'abc' LIKE 'a!%c' ESCAPE '!'", (True, False)),
        (r"SELECT 'a\c' LIKE 'a\c' ESCAPE '', 'ab' NOT LIKE 'a%'", (True, False)),
        (r"SELECT 'A_C' ILIKE 'a\_c', 'ABC' NOT ILIKE 'a_c'", (True, False)),
        ("SELECT 'ab' SIMILAR TO 'a%', 'ab' SIMILAR TO 'a_', 'axb' SIMILAR TO 'a.b'", (True, True, False)),
        (
            "SELECT 'ab' SIMILAR TO '(a|c)b*', 'aaa' SIMILAR TO 'a{2,3}', 'ab' NOT SIMILAR TO 'x%'",
            (True, True, True),
        ),
        ("SELECT 'a%' SIMILAR TO 'a#%' ESCAPE '#', 'ab' SIMILAR TO 'a#%' ESCAPE '#'", (True, False)),
        (
            "SELECT substr('hello', -1, 3), substr('hello', 0), substring('hello' from -2 for 4)",
            ("h", "hello", "h"),
        ),
        (
            "SELECT substr('hello', 2, 0), substring('hello' from 'e(l+)'), substring('hello' from 'z')",
            ("", "ll", None),
        ),
        ("SELECT 'abc'::char(5), 'abcdef'::char(3), 'x'::char", ("abc  ", "abc", "x")),
        (
            "SELECT 'ab'::char(4) || 'x', char_length('ab'::char(4)), octet_length('ab'::char(4))",
            ("abx", 2, 4),
        ),
        ("SELECT 'ab '::char(3) = 'ab', 'ab'::char(4) = 'ab  '", (True, True)),
        (r"SELECT E'a\tb', E'\x41\101', E'it''s', U&'d\0061t'", ("a\tb", "AA", "it's", "dat")),
        (
            "SELECT to_hex(255), to_hex(-1), to_hex(5000000000), to_hex(NULL::int)",
            ("ff", "ffffffff", "12a05f200", None),
        ),
        ("SELECT 'b' < 'B' COLLATE \"C\", 'B' < 'a' COLLATE \"POSIX\"", (False, True)),
        ("SELECT substr('hello', '2'), substring('hello' for 2)", ("ello", "he")),
        ("SELECT 'abc'::char(5) LIKE 'abc', 'abc'::char(5) LIKE 'abc  '", (False, True)),
    ],
)
def test_text_semantics(fresh_db, sql, expected):
    assert row(fresh_db, sql) == expected


def test_like_pattern_parameter_escapes_with_backslash(fresh_db):
    assert row(fresh_db, "SELECT 'a_c' LIKE %s, 'abc' LIKE %s", r"a\_c", r"a\_c") == (True, False)


@pytest.mark.parametrize(
    ("sql", "sqlstate", "cls"),
    [
        ("SELECT substr('abc', 1, -1)", "22011", errors.DataError),
        ("SELECT 'a0eebc99'::uuid", "22P02", errors.DataError),
        ("SELECT to_hex(1.5)", "42883", errors.ProgrammingError),
        ("SELECT to_hex(1::smallint)", "42725", errors.ProgrammingError),
        ("SELECT true = 1", "42883", errors.ProgrammingError),
        ("SELECT 'a'::text = 1", "42883", errors.ProgrammingError),
    ],
)
def test_postgres_errors(fresh_db, sql, sqlstate, cls):
    with pytest.raises(cls) as info:
        fresh_db.execute(sql).fetchall()
    assert info.value.sqlstate == sqlstate


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT 'a' < 'b' COLLATE \"en_US\"", "en_US"),
        ("SELECT coalesce('a'::char(3), 'b')", "char(3)"),
        ("SELECT c FROM (SELECT 'a'::char(3) AS c) s", "char(3)"),
        ("SELECT quote_literal(1.5)", "quote_literal"),
    ],
)
def test_sqlite_refuses_what_it_cannot_do_exactly(fresh_db, engine, sql, named):
    if engine != "sqlite":
        pytest.skip("PostgreSQL runs these itself")
    with pytest.raises(errors.NotSupportedError, match=re.escape(named)):
        fresh_db.execute(sql).fetchall()


def test_quote_literal(fresh_db):
    sql = r"SELECT quote_literal('it''s'), quote_literal(E'a\\b'), quote_literal(42), quote_nullable(NULL)"
    assert row(fresh_db, sql) == ("'it''s'", "E'a\\\\b'", "'42'", "NULL")


def test_uuid_and_bytea_text_input(fresh_db):
    fresh_db.execute("CREATE TABLE ub (id INT PRIMARY KEY, u UUID, b BYTEA)")
    fresh_db.execute(
        r"INSERT INTO ub VALUES (1, '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}', '\x00ff'), (2, NULL, 'a\001\\')"
    )
    rows = [tuple(r) for r in fresh_db.execute("SELECT id, u, b FROM ub ORDER BY id")]
    assert rows == [
        (1, uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), b"\x00\xff"),
        (2, None, b"a\x01\\"),
    ]
    got = fresh_db.execute("SELECT id FROM ub WHERE u = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'").fetchall()
    assert [r[0] for r in got] == [1]
    got = fresh_db.execute(
        r"SELECT id FROM ub WHERE b = '\x00FF' OR b = 'a\001\\'::bytea ORDER BY id"
    ).fetchall()
    assert [r[0] for r in got] == [1, 2]
    assert row(fresh_db, r"SELECT '\x01ff'::bytea, 'abc'::bytea") == (b"\x01\xff", b"abc")
    with pytest.raises(errors.DataError) as info:
        fresh_db.execute("INSERT INTO ub VALUES (3, 'a0eebc99', NULL)")
    assert info.value.sqlstate == "22P02"
