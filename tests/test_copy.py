"""loomdb.copy and `loomdb copy`: a whole store, history included, between engines.

These tests cross engines by design (SQLite -> PostgreSQL -> SQLite), so they
use ``sqlite_path`` and ``pg_url`` rather than the conformance fixtures.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import numpy as np
import pytest
from click.testing import CliRunner

import loomdb
from loomdb.cli import cli


def _build(location: str) -> None:
    """A store with history worth copying: branches, updates, deletes, a merge, DDL."""
    with loomdb.connect(location) as db:
        db.execute(
            "CREATE TABLE iterations (run_id TEXT, step INT, action TEXT, embedding VECTOR(4),"
            " state JSONB, cost NUMERIC, ok BOOLEAN, at TIMESTAMP DEFAULT NOW(), day DATE, id UUID,"
            " blob BYTEA, PRIMARY KEY (run_id, step))"
        )
        db.execute("CREATE INDEX iterations_emb ON iterations USING hnsw (embedding vector_cosine_ops)")
        for step in range(6):
            db.execute(
                "INSERT INTO iterations (run_id, step, action, embedding, state, cost, ok, day, id, blob)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    "r1",
                    step,
                    f"act {step}",
                    [1.0, step, 0.5, -step],
                    {"plan": [f"p{step}"], "n": step, "nested": {"z": 1, "a": None}},
                    Decimal(f"{step}.25"),
                    step % 2 == 0,
                    dt.date(2026, 1, 1 + step),
                    uuid.UUID(int=step + 1),
                    bytes([step, 255]),
                ],
            )
        a = db.branch("approach-a")
        a.execute("UPDATE iterations SET action = 'retried', cost = cost * 2 WHERE step >= 3")
        a.execute("DELETE FROM iterations WHERE step = 1")
        b = db.branch("approach-b", from_=db.head - 2)
        b.execute("INSERT INTO iterations (run_id, step, action) VALUES ('r2', 0, 'other run')")
        db.execute("ALTER TABLE iterations ADD COLUMN note TEXT DEFAULT 'none'")
        db.execute("CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO notes (body) VALUES ('one'), ('two')")
        db.merge("approach-a", into="main")
        with db.transaction(message="tidy", author="agent-7"):
            db.execute("UPDATE notes SET body = 'ONE' WHERE id = 1")
            db.execute("DELETE FROM notes WHERE id = 2")
        dropped = db.branch("scratch")
        dropped.execute("INSERT INTO notes (body) VALUES ('scratch')")
        db.drop_branch("scratch")


def _snapshot(location: str) -> dict:
    """Everything a user can observe: branches, logs, and rows on every branch and some past commits."""
    out: dict = {}
    with loomdb.connect(location) as db:
        out["branches"] = [(b.name, b.parent, b.fork, b.head) for b in db.branches()]
        for branch in db.branches():
            handle = db.checkout(branch.name)
            out[("log", branch.name)] = [
                (c.id, c.branch, c.message, c.author, c.parents) for c in handle.log()
            ]
            for table in ("iterations", "notes"):
                try:
                    rows = handle.execute(f"SELECT * FROM {table}").fetchall()
                except loomdb.ProgrammingError:
                    continue  # not on this branch
                out[(table, branch.name)] = sorted(repr(_plain(r)) for r in rows)
        for commit in db.log()[::3]:
            past = db.as_of(commit.id)
            try:
                out[("as_of", commit.id)] = sorted(
                    repr(_plain(r)) for r in past.execute("SELECT run_id, step, action FROM iterations")
                )
            except loomdb.ProgrammingError:
                out[("as_of", commit.id)] = None
    return out


def _plain(row: loomdb.Row) -> tuple:
    """Comparable values: vectors as lists, JSON with sorted keys (jsonb keeps its own key order)."""
    return tuple(
        v.tolist()
        if isinstance(v, np.ndarray)
        else json.dumps(v, sort_keys=True)
        if isinstance(v, dict)
        else v
        for v in row
    )


def test_a_store_survives_a_round_trip_sqlite_postgres_sqlite(sqlite_path, pg_store, tmp_path):
    _build(sqlite_path)
    on_pg = pg_store()
    to_pg = loomdb.copy(sqlite_path, on_pg)
    assert to_pg.verified and to_pg.branches == 3 and to_pg.commits > 10
    back = str(tmp_path / "back.loom")
    to_sqlite = loomdb.copy(on_pg, back)
    assert to_sqlite.verified
    assert (to_sqlite.commits, to_sqlite.versions) == (to_pg.commits, to_pg.versions)
    original = _snapshot(sqlite_path)
    assert _snapshot(on_pg) == original
    assert _snapshot(back) == original


@pytest.mark.parametrize("direction", ["sqlite-to-postgres", "postgres-to-sqlite"])
def test_a_copied_store_keeps_working(direction, sqlite_path, pg_store, tmp_path):
    """After a copy, writes, SERIAL counters, vector search, merges and new branches carry on."""
    if direction == "sqlite-to-postgres":
        source, destination = sqlite_path, pg_store()
    else:
        source, destination = pg_store(), str(tmp_path / "dest.loom")
    _build(source)
    loomdb.copy(source, destination)
    with loomdb.connect(destination) as db:
        db.execute("INSERT INTO notes (body) VALUES ('three')")
        assert db.execute("SELECT id, body FROM notes ORDER BY id").fetchall() == [(1, "ONE"), (4, "three")]
        nearest = db.execute(
            "SELECT step FROM iterations ORDER BY embedding <-> %s LIMIT 2", [[1.0, 4.0, 0.5, -4.0]]
        ).fetchall()
        assert [r[0] for r in nearest] == [4, 3]
        head = db.head
        c = db.branch("after-copy")
        c.execute("UPDATE iterations SET action = 'late' WHERE step = 0")
        db.merge("after-copy")
        assert db.head > head
        assert db.execute("SELECT action FROM iterations WHERE step = 0").fetchone()[0] == "late"
        # The branch written before the copy merges too: its base survived the copy.
        result = db.merge("approach-b")
        assert result.added == 1


def test_copy_refuses_a_destination_with_history(sqlite_path, pg_store):
    _build(sqlite_path)
    target = pg_store()
    with loomdb.connect(target) as db:
        db.execute("CREATE TABLE mine (x INT)")
    with pytest.raises(loomdb.ProgrammingError, match="already holds a loomdb store"):
        loomdb.copy(sqlite_path, target)
    with loomdb.connect(target) as db:  # untouched
        assert db.execute("SELECT count(*) FROM mine").fetchone()[0] == 0
        assert [b.name for b in db.branches()] == ["main"]


def test_copy_into_a_new_sqlite_file_between_two_files(sqlite_path, tmp_path):
    _build(sqlite_path)
    dest = str(tmp_path / "copy.loom")
    assert loomdb.copy(sqlite_path, dest).verified
    assert _snapshot(dest) == _snapshot(sqlite_path)


def test_cli_copy_reports_what_it_copied(sqlite_path, pg_store):
    _build(sqlite_path)
    target = pg_store()
    result = CliRunner().invoke(cli, ["copy", sqlite_path, target])
    assert result.exit_code == 0, result.output
    assert "copied 3 branches" in result.output and "verified" in result.output
    again = CliRunner().invoke(cli, ["copy", sqlite_path, target])
    assert again.exit_code == 1
    assert "already holds a loomdb store" in again.output


def test_cli_copy_of_a_missing_store_fails_cleanly(tmp_path, pg_store):
    result = CliRunner().invoke(cli, ["copy", str(tmp_path / "nope.loom"), pg_store()])
    assert result.exit_code == 1
    assert "no store at" in result.output
