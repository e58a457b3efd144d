"""TIMESTAMP, TIMESTAMPTZ and DATE values as PostgreSQL (TimeZone UTC) has them,
on both engines, and the upgrade of stores written when TIMESTAMP meant timestamptz."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import apsw
import psycopg
import pytest

import loomdb
from loomdb.backend.sqlite.backend import SQLiteBackend
from loomdb.layout import FORMAT_VERSION
from loomdb.time_values import parse_input, timestamp_text

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
FIXTURE = Path(__file__).parent / "fixtures" / "format1_timestamps.loom"


# -- input and text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "with_tz", "expected"),
    [
        ("2024-03-01 9:00", False, dt.datetime(2024, 3, 1, 9, 0)),
        ("2024-03-01T10:00:00Z", False, dt.datetime(2024, 3, 1, 10, 0)),
        ("2024-03-01T10:00:00Z", True, dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("2024-03-01 12:00+02", True, dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        ("2024-03-01 12:00:00+05:30", True, dt.datetime(2024, 3, 1, 6, 30, tzinfo=UTC)),
        ("2024-03-01 12:00:00-0330", True, dt.datetime(2024, 3, 1, 15, 30, tzinfo=UTC)),
        ("2024-03-01 12:00:00+05:30", False, dt.datetime(2024, 3, 1, 12, 0)),
        ("2024-03-01", True, dt.datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01 24:00:00", False, dt.datetime(2024, 3, 2)),
        ("2024-03-01 12:00:00.1234567", False, dt.datetime(2024, 3, 1, 12, 0, 0, 123457)),
        ("epoch", True, dt.datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_input_is_read_as_postgresql_reads_it(text, with_tz, expected):
    assert parse_input(text, with_tz) == expected


@pytest.mark.parametrize(
    ("text", "sqlstate"),
    [("2024-02-30", "22008"), ("2024-03-01 25:00", "22008"), ("yesterday-ish", "22007"), ("", "22007")],
)
def test_bad_timestamp_input_raises_postgresqls_error(text, sqlstate):
    with pytest.raises(loomdb.DataError) as caught:
        parse_input(text, with_tz=False)
    assert caught.value.sqlstate == sqlstate


def test_relative_and_infinite_inputs_without_a_statement_time_are_refused():
    for word in ("now", "today", "infinity", "-infinity"):
        with pytest.raises(loomdb.NotSupportedError):
            parse_input(word, with_tz=True)


@pytest.mark.parametrize(
    ("stored", "with_tz", "text"),
    [
        ("2024-03-01 12:00:00.000000+00:00", False, "2024-03-01 12:00:00"),
        ("2024-03-01 12:00:00.000000+00:00", True, "2024-03-01 12:00:00+00"),
        ("2024-03-01 12:00:00.500000+00:00", False, "2024-03-01 12:00:00.5"),
        ("2024-03-01 12:00:00.000120+00:00", True, "2024-03-01 12:00:00.00012+00"),
    ],
)
def test_timestamp_text_is_postgresqls(stored, with_tz, text):
    assert timestamp_text(stored, with_tz) == text


# -- values through SQL, on both engines ------------------------------------------------------


@pytest.fixture
def events(fresh_db):
    fresh_db.execute("CREATE TABLE events (id INT PRIMARY KEY, at TIMESTAMP, seen TIMESTAMPTZ, day DATE)")
    return fresh_db


def test_parameters_meet_timestamps_as_postgresql_takes_them(events):
    events.execute(
        "INSERT INTO events VALUES (1, %s, %s, %s), (2, %s, %s, NULL), (3, %s, %s::timestamptz, NULL)",
        [
            dt.datetime(2024, 3, 1, 12, 0, tzinfo=PLUS2),  # aware into TIMESTAMP: UTC wall time
            dt.datetime(2024, 3, 1, 12, 0),  # naive into TIMESTAMPTZ: taken as UTC
            dt.date(2024, 3, 1),
            "2024-03-01 12:00:00+02",  # text into TIMESTAMP: the offset is ignored
            "2024-03-01 12:00:00+02",  # text into TIMESTAMPTZ: the offset converts
            "2024-03-01 12:00:00+02",
            "2024-03-01 12:00:00+02",  # cast to timestamptz first, then into the TIMESTAMP
        ],
    )
    rows = events.execute("SELECT at, seen, day FROM events ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [
        (dt.datetime(2024, 3, 1, 10, 0), dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC), dt.date(2024, 3, 1)),
        (dt.datetime(2024, 3, 1, 12, 0), dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC), None),
        (dt.datetime(2024, 3, 1, 12, 0), dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC), None),
    ]
    found = events.execute(
        "SELECT id FROM events WHERE at = %s ORDER BY id", [dt.datetime(2024, 3, 1, 12, 0)]
    )
    assert [r[0] for r in found] == [2, 3]
    found = events.execute("SELECT id FROM events WHERE seen < %s ORDER BY id", ["2024-03-01 13:00:00+02"])
    assert [r[0] for r in found] == [2, 3]


def test_timestamp_text_and_arithmetic_are_postgresqls(events):
    events.execute(
        "INSERT INTO events VALUES (1, '2024-03-01 12:00:00.5', '2024-03-01 12:00:00+02', '2024-03-01')"
    )
    row = events.execute(
        "SELECT at::text, seen::text, day + 30, day - 1, day - date '2024-01-01', at - seen,"
        " max(at) - min(at), seen AT TIME ZONE 'UTC' FROM events GROUP BY at, seen, day"
    ).fetchone()
    assert tuple(row) == (
        "2024-03-01 12:00:00.5",
        "2024-03-01 10:00:00+00",
        dt.date(2024, 3, 31),
        dt.date(2024, 2, 29),
        60,
        dt.timedelta(hours=2, microseconds=500000),
        dt.timedelta(0),
        dt.datetime(2024, 3, 1, 10, 0),
    )


def test_now_is_one_value_per_statement_and_per_transaction(events):
    assert events.execute("SELECT now() = now(), now() = current_timestamp").fetchone() == (True, True)
    with events.transaction():
        events.execute("INSERT INTO events (id, seen) VALUES (1, now())")
        first = events.execute("SELECT now()").fetchone()[0]
        events.execute("INSERT INTO events (id, seen) VALUES (2, now())")
        second = events.execute("SELECT now()").fetchone()[0]
    assert first == second and first.tzinfo is not None
    assert [r[0] for r in events.execute("SELECT seen FROM events ORDER BY id")] == [first, first]


def test_relative_inputs_are_read_at_the_statements_time(events):
    row = events.execute(
        "SELECT 'today'::date, 'tomorrow'::date - 'yesterday'::date, 'now'::timestamptz = now()"
    ).fetchone()
    assert (
        row[0] == dt.datetime.now(UTC).date()
        or row[0] == (dt.datetime.now(UTC) - dt.timedelta(minutes=1)).date()
    )
    assert row[1:] == (2, True)


def test_an_interval_on_sqlite_is_refused_where_it_would_be_computed_with(events, engine):
    sql = "SELECT id FROM events WHERE at - seen > at - seen"
    if engine == "postgres":
        assert events.execute(sql).fetchall() == []
    else:
        with pytest.raises(loomdb.NotSupportedError, match="timestamp - timestamp"):
            events.execute(sql)


# -- upgrading stores written by format 1 --------------------------------------------------------


def _format_of_file(path: str) -> str:
    raw = apsw.Connection(path)
    try:
        return str(raw.execute("SELECT value FROM loom_meta WHERE key = 'format'").fetchall()[0][0])
    finally:
        raw.close()


def test_a_format_1_sqlite_store_is_upgraded_on_open(tmp_path):
    # The fixture was written by loomdb at format 1, where TIMESTAMP came back aware.
    path = str(tmp_path / "old.loom")
    shutil.copy(FIXTURE, path)
    assert _format_of_file(path) == "1"
    db = loomdb.connect(path)
    try:
        rows = db.execute("SELECT id, at, seen, day, later FROM events ORDER BY id").fetchall()
        assert [tuple(r) for r in rows] == [
            (
                1,
                dt.datetime(2024, 3, 1, 12, 0),
                dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
                dt.date(2024, 3, 1),
                None,
            ),
            (2, None, None, None, None),
            (
                3,
                dt.datetime(2024, 3, 2, 8, 30, 0, 250000),
                dt.datetime(2024, 3, 2, 8, 30, tzinfo=UTC),
                dt.date(2024, 3, 2),
                dt.datetime(2025, 1, 1, 0, 0, 1),
            ),
        ]
        branch = db.checkout("exp")
        assert branch.execute("SELECT at FROM events WHERE id = 1").fetchone()[0] == dt.datetime(
            2024, 4, 1, 6, 0
        )
        assert db.execute("SELECT id FROM events WHERE at < '2024-03-02' ORDER BY id").fetchall() == [(1,)]
        db.execute("INSERT INTO events (id, at) VALUES (4, '2024-03-01 11:00:00+02')")
        assert db.execute("SELECT at FROM events WHERE id = 4").fetchone()[0] == dt.datetime(
            2024, 3, 1, 11, 0
        )
    finally:
        db.close()
    assert _format_of_file(path) == str(FORMAT_VERSION)


def test_a_failed_upgrade_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    path = str(tmp_path / "old.loom")
    shutil.copy(FIXTURE, path)

    def fail(self, columns):
        raise loomdb.OperationalError("disk on fire")

    monkeypatch.setattr(SQLiteBackend, "upgrade_timestamp_columns", fail)
    with pytest.raises(loomdb.OperationalError, match="disk on fire"):
        loomdb.connect(path)
    assert _format_of_file(path) == "1"


def test_a_format_1_postgresql_store_is_upgraded_on_open(pg_url):
    # Format 1 made a TIMESTAMP column a timestamptz: the store is rewritten into
    # that form by hand, then opened.
    schema = f"old_{uuid.uuid4().hex[:12]}"
    url = f"{pg_url}?schema={schema}"
    db = loomdb.connect(url)
    db.execute("CREATE TABLE events (id INT PRIMARY KEY, at TIMESTAMP, seen TIMESTAMPTZ)")
    db.execute(
        "INSERT INTO events VALUES (1, '2024-03-01 12:00:00.5', '2024-03-01 12:00:00+02'), (2, NULL, NULL)"
    )
    db.close()

    def column_types(conn):
        return dict(
            conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
                " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = 'loom_t1' AND a.attnum > 0 AND NOT a.attisdropped",
                [schema],
            ).fetchall()
        )

    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            types = column_types(conn)
            (at,) = [name for name, kind in types.items() if kind == "timestamp without time zone"]
            conn.execute(
                f'ALTER TABLE "{schema}".loom_t1 ALTER COLUMN "{at}" TYPE timestamptz USING "{at}" AT TIME ZONE \'UTC\''
            )
            conn.execute(f"UPDATE \"{schema}\".loom_meta SET value = '1' WHERE key = 'format'")
            db = loomdb.connect(url)
            try:
                rows = db.execute("SELECT id, at, seen FROM events ORDER BY id").fetchall()
                assert [tuple(r) for r in rows] == [
                    (
                        1,
                        dt.datetime(2024, 3, 1, 12, 0, 0, 500000),
                        dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
                    ),
                    (2, None, None),
                ]
            finally:
                db.close()
            assert column_types(conn)[at] == "timestamp without time zone"
            fmt = conn.execute(f"SELECT value FROM \"{schema}\".loom_meta WHERE key = 'format'").fetchone()
            assert fmt == (str(FORMAT_VERSION),)
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- text, JSON and the time functions on SQLite (answers PostgreSQL gives) -------------------------


def test_timestamps_become_text_and_json_as_postgresql_writes_them(events):
    events.execute(
        "INSERT INTO events VALUES (1, '2024-03-01 12:00:00.25', '2024-03-01 12:00:00+02', '2024-03-01')"
    )
    row = events.execute(
        "SELECT 'at ' || at, seen || '', jsonb_build_object('at', at, 'seen', seen, 'day', day),"
        " jsonb_agg(seen ORDER BY id) FROM events GROUP BY at, seen, day"
    ).fetchone()
    assert tuple(row) == (
        "at 2024-03-01 12:00:00.25",
        "2024-03-01 10:00:00+00",
        {"at": "2024-03-01T12:00:00.25", "seen": "2024-03-01T10:00:00+00:00", "day": "2024-03-01"},
        ["2024-03-01T10:00:00+00:00"],
    )


def test_time_constructors_are_postgresqls(fresh_db):
    row = fresh_db.execute(
        "SELECT make_date(2024, 2, 29), make_timestamp(2024, 3, 1, 12, 30, 15.5), to_timestamp(1709287200.5)"
    ).fetchone()
    assert tuple(row) == (
        dt.date(2024, 2, 29),
        dt.datetime(2024, 3, 1, 12, 30, 15, 500000),
        dt.datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=UTC),
    )
    for sql in ("SELECT make_date(2024, 2, 30)", "SELECT make_timestamp(2024, 3, 1, 25, 0, 0)"):
        with pytest.raises(loomdb.DataError) as caught:
            fresh_db.execute(sql).fetchall()
        assert caught.value.sqlstate == "22008"


def test_a_cast_parameter_into_a_timestamp_column_of_another_kind_converts_as_the_cast_says(events):
    # %s::timestamptz into a TIMESTAMP column: the offset converts (the column's own
    # conversion would drop it); into a TIMESTAMPTZ column the cast changes nothing.
    events.executemany(
        "INSERT INTO events (id, at, seen) VALUES (%s, %s::timestamptz, %s::timestamptz)",
        [(1, "2024-03-01 12:00+02", "2024-03-01 12:00+02"), (2, None, None)],
    )
    rows = events.execute("SELECT at, seen FROM events ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [
        (dt.datetime(2024, 3, 1, 10, 0), dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)),
        (None, None),
    ]
