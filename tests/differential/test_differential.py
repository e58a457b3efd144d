"""The differential suite: every corpus entry on loomdb (both engines) against raw PostgreSQL.

One test per loomdb engine runs the whole corpus (see README.md) on a store
loaded with ``schema``'s data and on a plain psycopg connection to a schema
of its own on the same server, classifies each entry (``harness.classify``)
and checks the set of non-passing outcomes against
``expected_differences.txt`` (``ratchet``). With ``LOOMDB_DIFF_UPDATE=1``
it rewrites that file instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
import ratchet
import schema
from harness import Outcome, classify, load_corpus, run_loomdb, run_raw
from pgvector.psycopg import register_vector

import loomdb

CORPUS_DIR = Path(__file__).parent / "corpus"
CORPUS = load_corpus(CORPUS_DIR)


@pytest.fixture(scope="module")
def raw_conn(pg_url):
    """A plain psycopg connection (default loaders, pgvector's, TimeZone UTC) on a loaded schema."""
    name = f"diff_raw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.UniqueViolation:  # another process created it at the same moment
            pass
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(f'SET search_path TO "{name}", public')
        conn.execute("SET TimeZone TO 'UTC'")
        register_vector(conn)
        schema.load_raw(conn)
        yield conn
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(scope="module")
def raw_results(raw_conn):
    """Raw PostgreSQL's results for every entry, computed once per test process."""
    return {e.key: run_raw(raw_conn, e) for e in CORPUS}


@pytest.fixture(params=["sqlite", "postgres"])
def loaded_store(request, tmp_path_factory):
    """A loomdb store on the engine, with the schema and data loaded (shared by all read entries)."""
    if request.param == "sqlite":
        location = str(tmp_path_factory.mktemp("differential") / "agent.loom")
        schema_name = None
    else:
        schema_name = f"diff_loom_{uuid.uuid4().hex[:12]}"
        location = f"{request.getfixturevalue('pg_url')}?schema={schema_name}"
    db = loomdb.connect(location)
    schema.load_loomdb(db)
    yield request.param, db
    db.close()
    if schema_name:
        with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')


def test_corpus_parses():
    """The corpus is well formed and large enough to mean something."""
    assert len(CORPUS) >= 300
    assert len({e.key for e in CORPUS}) == len(CORPUS)


def test_differential(loaded_store, raw_results, request):
    """Each entry's outcome on this engine is the one expected_differences.txt lists (or a pass)."""
    engine, db = loaded_store
    outcomes: list[Outcome] = [classify(e, engine, raw_results[e.key], run_loomdb(db, e)) for e in CORPUS]
    text = ratchet.summary(engine, outcomes)
    _publish(request.config, engine, text)
    if os.environ.get("LOOMDB_DIFF_UPDATE") == "1":
        ratchet.rewrite_expected(engine, outcomes)
        return
    problem = ratchet.ratchet_report(engine, outcomes, ratchet.read_expected())
    if problem:
        pytest.fail(problem + "\n\n" + text, pytrace=False)


def _publish(config: pytest.Config, engine: str, text: str) -> None:
    """Leave the summary where tests/conftest.py's terminal-summary hook finds it (xdist workers too)."""
    print(text)
    if getattr(config, "cache", None) is not None:
        folder = config.cache.mkdir("differential")
        (folder / f"{engine}.txt").write_text(text + "\n")
