"""Shared fixtures.

The conformance suite runs every test that asks for ``store_path``,
``fresh_db`` or ``new_store`` once per engine: ``[sqlite]`` on a file under
pytest's tmp_path (under /tmp), ``[postgres]`` in a fresh schema of a real
PostgreSQL 18 server with pgvector (started once per test process by
``pg_server``, data directory under /tmp, fsync on), or of the server named
by ``LOOMDB_TEST_POSTGRES_URL``. Tests that exercise one engine's own
machinery (SQLite files, power cuts, PostgreSQL connections) ask for
``sqlite_path`` or ``pg_url`` instead and say why.
"""

from __future__ import annotations

import os
import time
import uuid

import pg_server
import psycopg
import pytest
from hypothesis import HealthCheck, settings

import loomdb

# Machines here are shared and noisy: never let timing fail a property test.
settings.register_profile(
    "loomdb",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "loomdb-thorough",
    parent=settings.get_profile("loomdb"),
    max_examples=500,
)
settings.load_profile(os.environ.get("LOOMDB_HYPOTHESIS_PROFILE", "loomdb"))

ENGINES = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def pg_server_instance():
    """The test session's own PostgreSQL server (None when an external one is named)."""
    if pg_server.server_url_from_env():
        yield None
        return
    server = pg_server.get_server()
    yield server
    server.stop(cleanup=True)


@pytest.fixture(scope="session")
def pg_url(pg_server_instance) -> str:
    """URL of the PostgreSQL server the tests use (without a schema)."""
    return pg_server.server_url_from_env() or pg_server_instance.url


class StoreFactory:
    """Makes fresh store locations for one engine: files, or schemas it drops afterwards."""

    def __init__(self, engine: str, tmp_path, pg_url: str | None):
        self.engine, self.tmp_path, self.pg_url = engine, tmp_path, pg_url
        self.schemas: list[str] = []

    def __call__(self, name: str | None = None) -> str:
        if self.engine == "sqlite":
            return str(self.tmp_path / f"{name or uuid.uuid4().hex[:12]}.loom")
        return f"{self.pg_url}?schema={self.schema()}"

    def schema(self) -> str:
        """A fresh PostgreSQL schema name, dropped with the others afterwards."""
        self.schemas.append(f"t_{uuid.uuid4().hex[:16]}")
        return self.schemas[-1]

    def cleanup(self) -> None:
        if not self.schemas:
            return
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """The engine a conformance test runs on."""
    return request.param


@pytest.fixture
def new_store(engine, tmp_path, request):
    """A factory of fresh store locations (path or URL) on the test's engine."""
    url = request.getfixturevalue("pg_url") if engine == "postgres" else None
    factory = StoreFactory(engine, tmp_path, url)
    yield factory
    factory.cleanup()


@pytest.fixture
def pg_store(tmp_path, pg_url):
    """Fresh PostgreSQL store URLs (and schema names), whatever the test's engine."""
    factory = StoreFactory("postgres", tmp_path, pg_url)
    yield factory
    factory.cleanup()


@pytest.fixture
def store_path(new_store) -> str:
    """Location of a store that does not exist yet: a file path or a postgresql:// URL."""
    return new_store("test")


@pytest.fixture
def sqlite_path(tmp_path) -> str:
    """Path of a SQLite store file that does not exist yet (for SQLite-only tests)."""
    return str(tmp_path / "test.loom")


@pytest.fixture
def fresh_db(store_path):
    """An empty store on branch main, closed after the test."""
    db = loomdb.connect(store_path)
    yield db
    db.close()


_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The differential suite's per-engine summary (tests/differential), when this run included it.

    Here and not in tests/differential/conftest.py: under pytest-xdist only
    the controller prints, and it loads only this top-level conftest. The
    tests (on whichever worker) leave their summaries in pytest's cache.
    """
    if getattr(config, "cache", None) is None:
        return
    folder = config.cache.mkdir("differential")
    reports = [p for p in sorted(folder.glob("*.txt")) if p.stat().st_mtime >= _SESSION_STARTED]
    if reports:
        terminalreporter.section("loomdb differential suite")
        for path in reports:
            terminalreporter.write_line(path.read_text().rstrip())
