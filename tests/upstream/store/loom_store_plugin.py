"""Run LangGraph's own store tests (langgraph-checkpoint's ``tests/test_store.py``) on LoomStore.

That file tests ``langgraph.store.memory.InMemoryStore``. This pytest plugin
puts a LoomStore subclass in its place before the file is imported: it takes
InMemoryStore's constructor arguments (``index=``) and opens a fresh loomdb
store for each instance, a SQLite file or (``--loom-engine postgres``) a new
schema on the test PostgreSQL server (``tests/pg_server.py``, or the server
named by ``LOOMDB_TEST_POSTGRES_URL``).

It also runs the file's ``async def`` tests (each in a fresh event loop, as
pytest-asyncio's auto mode does) and deselects the tests listed, each with
its reason, in ``deselected.txt`` beside this file.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/, for pg_server

import langgraph.store.memory  # noqa: E402

import loomdb  # noqa: E402
from loomdb.langgraph.store import LoomStore  # noqa: E402


class _Locations:
    """Fresh store locations for the session's engine, and their cleanup."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.folder = Path(tempfile.mkdtemp(prefix="loomdb-upstream-store-"))
        self.server: Any = None
        self.url: str | None = None
        self.schemas: list[str] = []
        self.open: list[loomdb.Database] = []
        self.opened = 0
        self.tests_using: set[str] = set()

    def new(self) -> str:
        if self.engine == "sqlite":
            return str(self.folder / f"{uuid.uuid4().hex[:12]}.loom")
        if self.url is None:
            import pg_server

            self.url = pg_server.server_url_from_env()
            if self.url is None:
                self.server = pg_server.get_server()
                self.url = self.server.url
        self.schemas.append(f"t_{uuid.uuid4().hex[:16]}")
        return f"{self.url}?schema={self.schemas[-1]}"

    def close_open(self) -> None:
        while self.open:
            self.open.pop().close()

    def cleanup(self) -> None:
        self.close_open()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.schemas and self.url is not None:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                for schema in self.schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if self.server is not None:
            self.server.stop(cleanup=True)


_locations: _Locations | None = None
_deselected: list[str] = []  # "test: reason", reported at the end


class LoomInMemoryStore(LoomStore):
    """LoomStore with InMemoryStore's constructor: a fresh, empty loomdb store per instance."""

    def __init__(self, *, index: Any = None) -> None:
        assert _locations is not None, "the loom_store_plugin is not configured"
        db = loomdb.connect(_locations.new())
        _locations.open.append(db)
        _locations.opened += 1
        super().__init__(db, index=index)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--loom-engine",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the loomdb engine the substituted InMemoryStore runs on",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _locations
    _locations = _Locations(config.getoption("--loom-engine"))
    langgraph.store.memory.InMemoryStore = LoomInMemoryStore  # type: ignore[misc]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _locations is not None:
        _locations.cleanup()


@pytest.fixture(autouse=True)
def _close_stores(request: pytest.FixtureRequest) -> Any:
    """Close the stores a test opened (PostgreSQL would run out of connections)."""
    assert _locations is not None
    before = _locations.opened
    yield
    if _locations.opened > before:
        _locations.tests_using.add(request.node.nodeid)
    _locations.close_open()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _deselected:
        terminalreporter.write_line(f"loom_store_plugin: deselected {line}")
    if _locations is not None:
        terminalreporter.write_line(
            f"loom_store_plugin: {len(_locations.tests_using)} tests ran on LoomStore ({_locations.engine}),"
            f" opening {_locations.opened} stores"
        )


def deselected() -> dict[str, str]:
    """The node names listed in deselected.txt, each with its reason."""
    out = {}
    for line in (HERE / "deselected.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            out[name] = reason.strip(" -")
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for module in {item.module for item in items if isinstance(item, pytest.Function)}:
        if getattr(module, "InMemoryStore", LoomInMemoryStore) is not LoomInMemoryStore:
            raise pytest.UsageError(f"{module.__name__} imported InMemoryStore before the substitution")
    listed = deselected()
    dropped = [item for item in items if _base_name(item) in listed]
    if dropped:
        _deselected.extend(f"{item.name}: {listed[_base_name(item)]}" for item in dropped)
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _base_name(item: pytest.Item) -> str:
    """A test's name without its parameters."""
    return getattr(item, "originalname", item.name)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True
