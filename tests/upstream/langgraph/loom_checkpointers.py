"""pytest plugin: LangGraph's own graph tests, run against LoomSaver.

LangGraph's ``tests/conftest.py`` hands every graph test its checkpointer
through two parametrised fixtures, ``sync_checkpointer`` and
``async_checkpointer``, whose parameters name the savers (``memory``,
``sqlite``, ``sqlite_aio``, ...).  Loaded with ``-p loom_checkpointers``
(this folder on ``PYTHONPATH``), this plugin swaps both fixtures for
versions of them whose parameters are loomdb's savers:

- ``loom_sqlite``: ``LoomSaver.from_conn_string`` on a fresh embedded store, a file in a
  temporary folder;
- ``loom_postgres``: the same on a fresh schema of the test session's
  throwaway PostgreSQL 18 server (``tests/pg_server.py``, one per xdist
  worker), or of the server named by ``LOOMDB_TEST_POSTGRES_URL``.

The swap happens when pytest registers their conftest module, before
pytest reads the fixtures from it (it defers that until the folder is
collected), so their conftest and test files run unmodified.  Any other
parameter name (say ``memory``) is handed to their original fixture, which
is how the harness itself is checked against LangGraph's own savers.

Which savers run: ``LOOMDB_UPSTREAM_CHECKPOINTERS``, a comma-separated list
of names (default ``loom_sqlite,loom_postgres``); each fixture takes the
loom names and those of its own original parameters.

Tests listed in ``deselected.txt`` (next to this file: one node id or node
id prefix per line, each with a ``# reason``) are deselected.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DESELECT_FILE = HERE / "deselected.txt"

LOOM_CHECKPOINTERS = ("loom_sqlite", "loom_postgres")
CHECKPOINTERS_ENV = "LOOMDB_UPSTREAM_CHECKPOINTERS"
FIXTURES = ("sync_checkpointer", "async_checkpointer")

# Set once LangGraph's conftest has had its fixtures swapped.
_swapped: set[str] = set()


def _load_pg_server() -> ModuleType:
    """loomdb's tests/pg_server.py, imported by path (upstream owns the name ``tests``)."""
    spec = importlib.util.spec_from_file_location("pg_server", ROOT / "tests" / "pg_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pg_server = _load_pg_server()


def _wanted() -> list[str]:
    names = os.environ.get(CHECKPOINTERS_ENV, ",".join(LOOM_CHECKPOINTERS))
    return [name.strip() for name in names.split(",") if name.strip()]


# --- loomdb's savers -----------------------------------------------------------


@pytest.fixture(scope="session")
def loom_pg_url() -> Iterator[str]:
    """URL of the PostgreSQL server loom_postgres uses, started on first use."""
    external = pg_server.server_url_from_env()
    if external:
        yield external
        return
    server = pg_server.get_server()
    yield server.url
    server.stop(cleanup=True)


@contextlib.contextmanager
def _loom_location(request: pytest.FixtureRequest, name: str) -> Iterator[str]:
    """A fresh store location for saver ``name``, removed afterwards."""
    if name == "loom_sqlite":
        folder = tempfile.mkdtemp(prefix="loomdb-upstream-")
        try:
            yield os.path.join(folder, "checkpoints.loom")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elif name == "loom_postgres":
        url = request.getfixturevalue("loom_pg_url")
        # Not uuid.uuid4(): some tests patch it to count the ids LangGraph draws.
        schema = f"lg_{secrets.token_hex(8)}"
        try:
            yield f"{url}?schema={schema}"
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        raise ValueError(f"not a loom checkpointer: {name}")


@contextlib.contextmanager
def loom_saver(request: pytest.FixtureRequest, name: str) -> Iterator[object]:
    """A LoomSaver on a fresh store, opened as users open one, closed (and removed) afterwards."""
    from loomdb.langgraph import LoomSaver

    with _loom_location(request, name) as location, LoomSaver.from_conn_string(location) as saver:
        yield saver


# --- the swapped fixtures ------------------------------------------------------


def _original_params(fixture: object) -> list[str] | None:
    """The parameters an upstream fixture was declared with (None if unknown)."""
    marker = getattr(fixture, "_fixture_function_marker", None)
    params = getattr(marker, "params", None)
    return None if params is None else list(params)


def _names_for(fixture: object) -> list[str]:
    """The wanted names this fixture takes: the loom ones and those of its own parameters."""
    upstream = _original_params(fixture)
    return [name for name in _wanted() if name in LOOM_CHECKPOINTERS or upstream is None or name in upstream]


def _swap_sync(original: object, names: list[str]) -> object:
    upstream = original.__wrapped__  # the generator function under @pytest.fixture

    @pytest.fixture(scope="function", params=names, name="sync_checkpointer")
    def sync_checkpointer(request: pytest.FixtureRequest) -> Iterator[object]:
        if request.param in LOOM_CHECKPOINTERS:
            with loom_saver(request, request.param) as saver:
                yield saver
        else:
            yield from upstream(request)

    return sync_checkpointer


def _swap_async(original: object, names: list[str]) -> object:
    upstream = original.__wrapped__  # the async generator function under @pytest.fixture

    # An async generator itself, so that anyio's plugin runs it as it ran theirs.
    @pytest.fixture(scope="function", params=names, name="async_checkpointer")
    async def async_checkpointer(request: pytest.FixtureRequest) -> AsyncIterator[object]:
        if request.param in LOOM_CHECKPOINTERS:
            with loom_saver(request, request.param) as saver:
                yield saver
        else:
            async for saver in upstream(request):
                yield saver

    return async_checkpointer


def _is_langgraph_conftest(plugin: object, plugin_name: str | None) -> bool:
    return (
        isinstance(plugin, ModuleType)
        and bool(plugin_name)
        and Path(plugin_name).name == "conftest.py"
        and Path(plugin_name).parent.name == "tests"
        and all(hasattr(plugin, fixture) for fixture in FIXTURES)
    )


def pytest_plugin_registered(plugin: object, plugin_name: str | None) -> None:
    # pytest reads a conftest's fixtures only when it collects the conftest's
    # folder, so replacing the module's attributes now is in time.
    # A fixture left with no names skips its tests ("empty parameter set").
    if _is_langgraph_conftest(plugin, plugin_name):
        sync_names = _names_for(plugin.sync_checkpointer)
        async_names = _names_for(plugin.async_checkpointer)
        unknown = set(_wanted()) - set(sync_names) - set(async_names)
        if unknown or not _wanted():
            raise pytest.UsageError(f"{CHECKPOINTERS_ENV}: no checkpointer named {sorted(unknown)}")
        plugin.sync_checkpointer = _swap_sync(plugin.sync_checkpointer, sync_names)
        plugin.async_checkpointer = _swap_async(plugin.async_checkpointer, async_names)
        _swapped.update(FIXTURES)


# --- deselection ---------------------------------------------------------------


def read_deselected(path: Path = DESELECT_FILE) -> dict[str, str]:
    """Node id (or prefix) -> reason, from ``path``; every entry must give a reason."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        node_id, _, reason = line.partition("#")
        if not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: no '# reason' for {node_id.strip()}")
        entries[node_id.strip()] = reason.strip()
    return entries


def _matches(node_id: str, entry: str) -> bool:
    return node_id == entry or node_id.startswith((f"{entry}[", f"{entry}::"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = set(FIXTURES) - _swapped
    if missing:
        raise pytest.UsageError(
            f"loom_checkpointers: LangGraph's tests/conftest.py was not found, {sorted(missing)} "
            "not swapped; run pytest from the langgraph sdist folder (tests/upstream/run_langgraph.sh)"
        )
    entries = read_deselected()
    kept, deselected, used = [], [], set()
    for item in items:
        hits = [entry for entry in entries if _matches(item.nodeid, entry)]
        used.update(hits)
        (deselected if hits else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    collected = {item.nodeid.split("::")[0] for item in kept + deselected}
    stale = [e for e in entries if e not in used and e.split("::")[0] in collected]
    if stale and not config.getoption("keyword") and not config.getoption("markexpr"):
        warnings.warn(
            pytest.PytestWarning(f"{DESELECT_FILE.name}: entries that match no test: {stale}"),
            stacklevel=1,
        )
