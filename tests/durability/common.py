"""Shared pieces of the durability tests: the agent-loop table, rows, worker plumbing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apsw

if TYPE_CHECKING:
    import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)

# The table from the product brief (VECTOR(8) instead of 1536 to keep rows small).
ITERATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS iterations (run_id TEXT, step INT, action TEXT,"
    " observation TEXT, embedding VECTOR(8), state_snapshot JSONB, tokens_used INT,"
    " created_at TIMESTAMP DEFAULT NOW())"
)
INSERT_STEP = (
    "INSERT INTO iterations (run_id, step, action, observation, embedding,"
    " state_snapshot, tokens_used) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def step_params(run_id: str, step: int) -> list:
    """The parameters of one agent step; every value is derived from (run_id, step)."""
    state = {"plan": f"plan-{step}", "step": step, "tokens_used": step * 3, "todo": [step, "x"]}
    embedding = [float(step % 7) + i / 8 for i in range(8)]
    observation = f"obs-{run_id}-{step}-" + "o" * (step % 97)
    return [run_id, step, f"act-{step}", observation, embedding, state, step * 3]


def commit_steps(step: int) -> list[int]:
    """The steps the crash worker writes in the one commit that starts at ``step``.

    Usually one INSERT; every seventh commit is a ``transaction()`` of four steps.
    """
    return list(range(step, step + 4)) if step % 7 == 3 else [step]


def check_step_row(row, run_id: str, step: int) -> None:
    """Assert a row read back through loomdb holds what step_params wrote."""
    expected = step_params(run_id, step)
    assert row["run_id"] == run_id
    assert row["step"] == step
    assert row["action"] == expected[2]
    assert row["observation"] == expected[3]
    assert [float(x) for x in row["embedding"]] == expected[4]
    assert row["state_snapshot"] == expected[5]
    assert row["tokens_used"] == expected[6]


def is_postgres(location: str) -> bool:
    """Whether a store location is a PostgreSQL URL (else a SQLite file path)."""
    return str(location).startswith(("postgresql://", "postgres://"))


def split_pg_location(location: str) -> tuple[str, str]:
    """``(server URL, schema)`` of a ``postgresql://...?schema=NAME`` store location."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return url, (schemas[-1] if schemas else "public")


def with_pg_params(location: str, **params: str) -> str:
    """A PostgreSQL store location with extra libpq parameters (e.g. application_name)."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def pg_admin(location: str) -> psycopg.Connection:
    """An autocommit psycopg connection to the server of a store location (no loomdb)."""
    import psycopg  # only here: the SQLite workers need not import it

    return psycopg.connect(split_pg_location(location)[0], autocommit=True, connect_timeout=30)


def store_exists(location: str) -> bool:
    """Whether anything exists at a store location yet: the file, or the schema."""
    if not is_postgres(location):
        return os.path.exists(location)
    _, schema = split_pg_location(location)
    with pg_admin(location) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is not None


def tagged(location: str, tag: str) -> str:
    """The location a worker process opens: on PostgreSQL its connections carry
    ``application_name=tag`` (see wait_disconnected); a SQLite path is unchanged."""
    return with_pg_params(location, application_name=tag) if is_postgres(location) else location


def wait_disconnected(location: str, tag: str, timeout: float = 120.0) -> None:
    """Wait until the server has no backend left for a killed worker's connections.

    A client killed while its COMMIT was on the wire leaves a backend that may
    still commit; only once it is gone is the store's state final. No-op on SQLite.
    """
    if not is_postgres(location):
        return
    deadline = time.monotonic() + timeout
    with pg_admin(location) as conn:
        while True:
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [tag]
            ).fetchone()[0]
            if left == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{left} backend(s) of {tag} still there after {timeout}s")
            time.sleep(0.01)


# Invariants of loomdb's storage model (docs/design.md, "Storage: versioned rows")
# that every committed state keeps, as queries that return the offending rows.
# {t} is a physical table; INF marks a version that is still current.
INF = 9223372036854775807
_CATALOG_INVARIANTS = {
    "a commit on a branch that does not exist": (
        "SELECT c.seq FROM loom_commits c WHERE NOT EXISTS (SELECT 1 FROM loom_branches b WHERE b.bid = c.bid)"
    ),
    "a commit whose parent does not exist": (
        "SELECT c.seq FROM loom_commits c WHERE c.parent IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM loom_commits p WHERE p.seq = c.parent)"
    ),
    "a branch whose fork commit does not exist": (
        "SELECT b.bid FROM loom_branches b WHERE b.fork IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM loom_commits c WHERE c.seq = b.fork)"
    ),
}
_TABLE_INVARIANTS = {
    "a version written by no commit of its branch": (
        "SELECT v._vid FROM {t} v WHERE NOT EXISTS"
        " (SELECT 1 FROM loom_commits c WHERE c.seq = v._seq AND c.bid = v._bid)"
    ),
    "a version ended by no later commit of its branch": (
        f"SELECT v._vid FROM {{t}} v WHERE v._end <> {INF} AND NOT EXISTS"
        " (SELECT 1 FROM loom_commits c WHERE c.seq = v._end AND c.bid = v._bid AND c.seq > v._seq)"
    ),
    "two current versions of one row on one branch": (
        f"SELECT _rid, _bid FROM {{t}} WHERE _end = {INF} GROUP BY _rid, _bid HAVING count(*) > 1"
    ),
    "two versions of one row by one commit": (
        "SELECT _rid, _bid, _seq FROM {t} GROUP BY _rid, _bid, _seq HAVING count(*) > 1"
    ),
    "a row identity that is no version's id": (
        "SELECT v._vid FROM {t} v WHERE NOT EXISTS (SELECT 1 FROM {t} f WHERE f._vid = v._rid)"
    ),
    "a tombstone flag other than 0 or 1": "SELECT _vid FROM {t} WHERE _del NOT IN (0, 1)",
}


def _invariant_problems(query) -> list[str]:
    """Violations of loomdb's storage invariants; ``query(sql)`` returns a list of rows.

    A store whose catalog was never committed (a crash while creating it) has none.
    """
    problems = []
    for what, sql in _CATALOG_INVARIANTS.items():
        bad = query(sql)
        if bad:
            problems.append(f"{what}: {bad[:5]}")
    for (physical,) in query("SELECT physical FROM loom_tables ORDER BY tid"):
        for what, sql in _TABLE_INVARIANTS.items():
            bad = query(sql.format(t=f'"{physical}"'))
            if bad:
                problems.append(f"{physical}: {what}: {bad[:5]}")
    return problems


def _sqlite_integrity_check(path: str) -> list[str]:
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        con.setbusytimeout(60_000)
        found = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
        if found != ["ok"]:
            return found
        with con:  # one read transaction: one committed state
            catalog = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'loom_tables'").fetchall()
            if not catalog:
                return found
            problems = _invariant_problems(lambda sql: con.execute(sql).fetchall())
        return problems or found
    finally:
        con.close()


AMCHECK_SCHEMA = "loomdb_test_amcheck"


def _amcheck(conn: psycopg.Connection) -> bool:
    """Install PostgreSQL's amcheck (in a schema of its own) if the server has it."""
    import psycopg

    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone():
        return True
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'").fetchone():
        return False
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {AMCHECK_SCHEMA}")
        conn.execute(f"CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {AMCHECK_SCHEMA}")
    except psycopg.Error:
        return False  # no privilege, or created by another session at this moment
    return True


def _pg_integrity_check(location: str) -> list[str]:
    import psycopg

    _, schema = split_pg_location(location)
    with pg_admin(location) as conn:
        has_amcheck = _amcheck(conn)
        where = conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'amcheck'"
        ).fetchone()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            problems = []
            if has_amcheck and where is not None:
                # Every B-tree of the store is well formed and indexes every row.
                indexes = conn.execute(
                    "SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam"
                    " WHERE n.nspname = %s AND a.amname = 'btree'",
                    [schema],
                ).fetchall()
                for oid, name in indexes:
                    try:
                        conn.execute(f'SELECT "{where[0]}".bt_index_check(%s, true)', [oid])
                    except psycopg.Error as exc:
                        problems.append(f"index {name}: {exc}")
                        conn.execute("ROLLBACK")
                        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            catalog = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'loom_tables'", [schema]
            ).fetchone()
            if catalog:
                conn.execute(f'SET LOCAL search_path = "{schema}"')
                problems += _invariant_problems(lambda sql: conn.execute(sql).fetchall())
        finally:
            conn.execute("ROLLBACK")
    return problems or ["ok"]


def integrity_check(location: str) -> list[str]:
    """A store's physical and logical consistency, checked without loomdb: ``["ok"]``
    or the problems found.

    SQLite: ``PRAGMA integrity_check`` through plain apsw, opened without
    SQLITE_OPEN_CREATE (checking must never create the file). PostgreSQL
    (``postgresql://...?schema=``): amcheck's ``bt_index_check`` on every B-tree
    of the schema, when the server has amcheck (the server's own recovery is
    PostgreSQL's business, but an index that lost rows would show here). Both:
    loomdb's storage invariants (each version belongs to a commit of its branch,
    at most one current version per row and branch, ...), read in one snapshot.
    """
    if is_postgres(location):
        return _pg_integrity_check(location)
    return _sqlite_integrity_check(location)


def worker_cmd(script: str, config: dict) -> list[str]:
    return [sys.executable, os.path.join(HERE, script), json.dumps(config)]


def worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([TESTS_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_worker(script: str, config: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        worker_cmd(script, config),
        capture_output=True,
        text=True,
        env=worker_env(),
        timeout=timeout,
    )
