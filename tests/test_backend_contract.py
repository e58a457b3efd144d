"""Every engine against the contract of loomdb.backend.protocol.

Each test runs on every engine (``[sqlite]`` on a file, ``[postgres]`` in a
fresh schema of the test server, see conftest's ``new_store``) and talks to
the backend directly, below loomdb's versioning: a physical table in the
layout of :mod:`loomdb.layout`, rows written and read back, transactions,
errors as loomdb's, and each optional ability present exactly on the engines
that have it and behaving as its Protocol documents.
"""

from __future__ import annotations

import doctest
import inspect
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlglot.dialects.dialect import Dialect

from loomdb import errors
from loomdb.backend import protocol
from loomdb.backend.protocol import (
    AllocatedVersions,
    Backend,
    NativeSerials,
    PipelinedWrites,
    ProbedReads,
    native_serials,
    pipelined,
    probed_reads,
    version_allocator,
)
from loomdb.layout import CATALOG_DDL, EPOCH_SQL, INF_SEQ, VERSION_COLUMNS, version_insert_sql
from loomdb.sql.dialect import parse
from loomdb.types import ColumnType

TABLE = "loom_t1"
COLUMNS = [("c1", ColumnType.parse("TEXT")), ("c2", ColumnType.parse("BIGINT"))]
INSERT = version_insert_sql(TABLE, [c for c, _ in COLUMNS]) + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

# The abilities each engine has (and the deprecated flags that say the same).
ABILITIES: dict[str, set[type]] = {
    "sqlite": set(),
    "postgres": {AllocatedVersions, NativeSerials, PipelinedWrites, ProbedReads},
}
DETECT: dict[type, Callable[[Backend], object]] = {
    AllocatedVersions: version_allocator,
    NativeSerials: native_serials,
    PipelinedWrites: pipelined,
    ProbedReads: probed_reads,
}


def open_backend(location: str, timeout: float = 10.0) -> Backend:
    """A backend on ``location`` as loomdb.connect makes one."""
    if location.startswith("postgresql://"):
        from loomdb.backend.postgres import PostgresBackend

        return PostgresBackend(location, timeout=timeout)
    from loomdb.backend.sqlite import SQLiteBackend

    return SQLiteBackend(location, timeout=timeout)


@pytest.fixture
def connect(new_store) -> Iterator[Callable[..., Backend]]:
    """Opens backends on one fresh store location; closes them afterwards."""
    location = new_store("contract")
    opened: list[Backend] = []

    def make(timeout: float = 10.0) -> Backend:
        """A new connection to the store."""
        backend = open_backend(location, timeout)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.rollback()
        backend.close()


@pytest.fixture
def backend(connect) -> Backend:
    """A backend on a new store, WAL and all, holding the physical table TABLE."""
    b = connect()
    assert b.is_empty()
    b.prepare_new_store()
    b.begin_write()
    b.create_physical_table(TABLE, COLUMNS)
    b.commit()
    return b


def write(b: Backend, *rows: tuple[int, str | None, int | None]) -> None:
    """Commit a version per row: ``(vid, c1, c2)``, each its own row on main."""
    b.begin_write(1)
    for vid, c1, c2 in rows:
        b.execute(INSERT, (vid, vid, 1, 1, INF_SEQ, 0, c1, c2))
    b.commit()


def values(b: Backend) -> list[tuple[Any, ...]]:
    """TABLE's rows as ``(vid, c1, c2)``, by vid."""
    return list(b.execute(f'SELECT _vid, c1, c2 FROM "{TABLE}" ORDER BY _vid'))


def with_catalog(b: Backend) -> None:
    """Create the catalog (in the engine's types) with a schema epoch of 1."""
    b.begin_write()
    for statement in CATALOG_DDL:
        b.execute(b.catalog_sql(statement))
    b.execute("INSERT INTO loom_meta (key, value) VALUES ('epoch', '1')")
    b.commit()


# -- the core contract ---------------------------------------------------------------------------


def test_identity_and_store(connect, engine):
    b = connect()
    assert b.name == engine
    assert issubclass(b.dialect, Dialect)
    assert all(hasattr(b, member) for member in protocol._members(Backend))
    assert b.is_empty() and not b.has_table(TABLE)
    b.prepare_new_store()
    b.begin_write()
    b.create_physical_table(TABLE, COLUMNS)
    b.commit()
    assert not b.is_empty() and b.has_table(TABLE)
    assert not b.has_table("loom_t2")
    other = open_backend(b.path)  # the path reopens the store
    try:
        assert other.has_table(TABLE)
    finally:
        other.close()


def test_physical_table_has_the_layout_columns(backend):
    write(backend, (1, "a", 10))
    rows = list(backend.execute(f'SELECT * FROM "{TABLE}"'))
    assert rows == [(1, 1, 1, 1, INF_SEQ, 0, "a", 10)]
    names = ", ".join(VERSION_COLUMNS)
    assert list(backend.execute(f'SELECT {names} FROM "{TABLE}"')) == [rows[0][:6]]


def test_write_and_read_rows(backend):
    write(backend, (1, "a", 10), (2, None, None), (3, "c", -(2**40)))
    assert values(backend) == [(1, "a", 10), (2, None, None), (3, "c", -(2**40))]
    backend.begin_write(1)
    backend.execute(f'UPDATE "{TABLE}" SET c2 = c2 + 1 WHERE c2 IS NOT NULL')
    assert backend.changes() == 2
    backend.executemany(INSERT, [(v, v, 1, 1, INF_SEQ, 0, f"m{v}", v) for v in (4, 5)])
    backend.commit()
    assert [r[1] for r in values(backend)] == ["a", None, "c", "m4", "m5"]
    assert values(backend)[0] == (1, "a", 11)


def test_rollback_discards_writes(backend):
    write(backend, (1, "kept", 1))
    assert not backend.in_transaction
    backend.begin_write(1)
    assert backend.in_transaction
    backend.execute(INSERT, (2, 2, 1, 1, INF_SEQ, 0, "gone", 2))
    backend.defer(f'UPDATE "{TABLE}" SET c1 = ? WHERE _vid = 1', ("changed",))
    backend.rollback()
    assert not backend.in_transaction and not backend.has_deferred
    assert values(backend) == [(1, "kept", 1)]
    backend.rollback()  # nothing open: does nothing


def test_deferred_write_lands_before_the_next_statement(backend):
    write(backend, (1, "a", 1))
    backend.begin_write(1)
    backend.defer(f'UPDATE "{TABLE}" SET c1 = ? WHERE _vid = ?', ("b", 1))
    assert backend.has_deferred == (pipelined(backend) is not None)
    assert list(backend.execute(f'SELECT c1 FROM "{TABLE}"')) == [("b",)]
    assert not backend.has_deferred
    backend.commit()
    assert values(backend) == [(1, "b", 1)]


def test_commits_reach_other_connections(backend, connect):
    other = connect()
    other.others_committed()  # the baseline
    if probed_reads(other) is None:
        assert not other.others_committed()  # cheap, and exact: nothing happened
    write(backend, (1, "a", 1))
    assert other.others_committed()
    assert values(other) == [(1, "a", 1)]


def test_a_read_transaction_sees_one_state(backend, connect):
    write(backend, (1, "a", 1))
    reader = connect()
    reader.begin_read()
    assert reader.in_transaction
    assert values(reader) == [(1, "a", 1)]
    write(backend, (2, "b", 2))
    assert values(reader) == [(1, "a", 1)]
    reader.commit()
    assert [r[0] for r in values(reader)] == [1, 2]


def test_writers_of_one_branch_wait_in_line_then_fail(backend, connect):
    waiter = connect(timeout=0.3)
    backend.begin_write(1)
    backend.lock_catalog()
    with pytest.raises(errors.OperationalError, match="locked"):
        waiter.begin_write(1)
    assert not waiter.in_transaction  # nothing left open by the failed wait
    backend.rollback()
    waiter.begin_write(1)  # free now
    waiter.rollback()


def test_a_waiting_writer_gets_the_lock_when_it_is_released(backend, connect):
    waiter = connect()
    backend.begin_write(1)
    got = threading.Event()

    def wait() -> None:
        """Wait for the lock, then commit."""
        waiter.begin_write(1)
        got.set()
        waiter.commit()

    thread = threading.Thread(target=wait)
    thread.start()
    assert not got.wait(0.3)
    backend.commit()
    thread.join(10)
    assert got.is_set()


def test_engine_errors_are_loomdb_errors(backend, engine):
    write(backend, (1, "a", 1))
    with pytest.raises(errors.ProgrammingError, match="syntax error"):
        backend.execute("SELEC 1")
    with pytest.raises(errors.ProgrammingError, match="no_such_table"):
        list(backend.execute("SELECT * FROM no_such_table"))
    with pytest.raises(errors.ProgrammingError):
        list(backend.execute("SELECT ?1, ?2", (1,)))
    backend.begin_write(1)
    with pytest.raises(errors.IntegrityError) as duplicate:
        backend.execute(INSERT, (1, 1, 1, 1, INF_SEQ, 0, "again", 1))
    backend.rollback()
    # PostgreSQL-like: one line saying what, on PostgreSQL PostgreSQL's own words.
    message = str(duplicate.value)
    assert message and "\n" not in message
    if engine == "postgres":
        assert message.startswith("duplicate key value violates unique constraint")
    backend.begin_write(1)
    with pytest.raises(errors.IntegrityError):
        backend.execute(f'INSERT INTO "{TABLE}" (_vid) VALUES (9)')  # NOT NULL version columns
    backend.rollback()
    assert values(backend) == [(1, "a", 1)]  # the failed transactions left nothing


def test_translate(backend):
    own = errors.DataError("mine")
    assert backend.translate(own) is own
    assert isinstance(backend.translate(RuntimeError("boom")), errors.InternalError)


def test_query_plan_has_lines(backend):
    write(backend, (1, "a", 1))
    lines = backend.query_plan(f'SELECT c1 FROM "{TABLE}" WHERE _vid = ?', [1])
    assert lines and all(isinstance(line, str) and line for line in lines)


def test_indexes_and_columns(backend):
    backend.begin_write()
    backend.create_physical_index(TABLE, f"{TABLE}_c1", ["c1"])
    backend.create_physical_index(TABLE, f"{TABLE}_c1", ["c1"])  # exists: nothing to do
    backend.add_physical_column(TABLE, "c3", ColumnType.parse("TEXT"))
    backend.commit()
    write(backend, (1, "a", 1))
    assert list(backend.execute(f'SELECT c1, c3 FROM "{TABLE}"')) == [("a", None)]


def test_sql_helpers(backend):
    write(backend, (1, "a", 1), (2, "b", 2), (3, "c", 3))
    ids = backend.id_list_sql(1)
    rows = backend.execute(f'SELECT c1 FROM "{TABLE}" WHERE _vid IN {ids} ORDER BY c1', (json.dumps([1, 3]),))
    assert list(rows) == [("a",), ("c",)]
    hinted = backend.unindexed("_bid")
    assert hinted.endswith("_bid")
    assert list(backend.execute(f'SELECT count(*) FROM "{TABLE}" WHERE {hinted} = 1')) == [(3,)]


def test_statement_time_is_fixed_within_a_transaction(backend):
    now = parse("SELECT NOW()").sql(dialect=backend.dialect)
    backend.begin_write(1)
    backend.set_statement_time("2030-01-02 03:04:05.000000+00:00")
    first = list(backend.execute(now))
    assert list(backend.execute(now)) == first
    backend.commit()
    backend.set_statement_time(None)


def test_catalog_and_id_generators(backend):
    with_catalog(backend)
    assert backend.has_table("loom_commits")
    assert list(backend.execute(EPOCH_SQL)) == [("1",)]
    backend.begin_write()
    backend.execute("INSERT INTO loom_branches (bid, name, created) VALUES (5, 'b', 'now')")
    backend.commit()
    backend.sync_sequences([TABLE])
    backend.begin_write()
    (bid,) = next(
        backend.execute("INSERT INTO loom_branches (name, created) VALUES ('c', 'now') RETURNING bid")
    )
    backend.commit()
    assert bid == 6


# -- abilities ------------------------------------------------------------------------------------


def test_each_engine_has_exactly_its_abilities(backend, engine):
    for ability, detect in DETECT.items():
        found = detect(backend)
        assert (found is not None) == (ability in ABILITIES[engine]), ability.__name__
        assert found is None or found is backend


def test_engines_without_pipelined_writes_take_no_probes(backend):
    if pipelined(backend) is not None:
        pytest.skip("this engine takes probes")
    with pytest.raises(errors.InternalError):
        backend.begin_write(1, probes=[("SELECT 1", ())])
    assert not backend.in_transaction


def test_allocated_versions(backend):
    allocator = version_allocator(backend)
    if allocator is None:
        pytest.skip("this engine's versions are ordered: loomdb allocates their ids")
    with_catalog(backend)  # sync_sequences moves the catalog's generators too
    sql = allocator.allocating_insert_sql(TABLE, COLUMNS)
    backend.begin_write(1)
    (first,) = next(backend.execute(sql, (None, 1, 1, INF_SEQ, 0, "a", 1)))
    (second,) = next(backend.execute(sql, (first, 1, 2, INF_SEQ, 0, "b", 2)))
    backend.commit()
    assert second > first
    rows = list(backend.execute(f'SELECT _vid, _rid, c1 FROM "{TABLE}" ORDER BY _vid'))
    assert rows == [(first, first, "a"), (second, first, "b")]
    write(backend, (100, "explicit", 0))  # a copy writes explicit ids...
    backend.sync_sequences([TABLE])  # ...after which the generator continues past them
    backend.begin_write(1)
    (third,) = next(backend.execute(sql, (None, 1, 3, INF_SEQ, 0, "c", 3)))
    backend.commit()
    assert third > 100


def test_native_serials(connect):
    b = connect()
    serials = native_serials(b)
    if serials is None:
        pytest.skip("this engine keeps SERIAL counters in loom_serial")
    b.begin_write()
    b.create_physical_table(TABLE, [("s", ColumnType.parse("SERIAL"))])
    b.add_physical_column(TABLE, "t", ColumnType.parse("BIGSERIAL"))
    b.commit()
    assert serials.serial_value(TABLE, "s") == 0
    assert [serials.serial_next(TABLE, "s") for _ in range(2)] == [1, 2]
    serials.serial_bump(TABLE, "s", 10)
    serials.serial_bump(TABLE, "s", 5)  # never moves back
    assert serials.serial_value(TABLE, "s") == 10
    assert serials.serial_next(TABLE, "s") == 11
    serials.serial_set(TABLE, "s", 0)
    assert serials.serial_value(TABLE, "s") == 0 and serials.serial_next(TABLE, "s") == 1
    serials.serial_set(TABLE, "s", 20)
    assert serials.serial_value(TABLE, "s") == 20 and serials.serial_next(TABLE, "s") == 21
    assert serials.serial_next(TABLE, "t") == 1  # one counter per column


def test_pipelined_writes(backend):
    p = pipelined(backend)
    if p is None:
        pytest.skip("statements are in-process calls here: nothing to pipeline")
    with_catalog(backend)
    # begin_write runs probes after the lock, in its round trip.
    assert backend.begin_write(1, probes=[("SELECT 7", ()), ("SELECT 1 WHERE false", ())]) == [(7,), None]
    assert backend.in_transaction
    backend.rollback()
    view = f'(SELECT c1 AS "name" FROM "{TABLE}" WHERE _del = 0)'
    insert = p.absent_insert_sql(TABLE, COLUMNS, view, [("name", 0)])
    seq = ("SELECT set_config('loom.batch_seq', '7', true)", ())
    done = p.write_in_one_trip(1, [seq, (insert, (1, "1", "a", 1)), (insert, (1, "1", "b", 2))])
    assert [count for _, count in done] == [1, 1, 1]
    assert not backend.in_transaction
    rows = list(backend.execute(f'SELECT _rid = _vid, _bid, _seq, _end, _del, c1 FROM "{TABLE}" ORDER BY c1'))
    assert rows == [(True, 1, 7, INF_SEQ, 0, "a"), (True, 1, 7, INF_SEQ, 0, "b")]
    # A key the view has, or another schema epoch: nothing inserted.
    done = p.write_in_one_trip(1, [seq, (insert, (1, "1", "a", 3)), (insert, (1, "2", "z", 4))])
    assert [count for _, count in done] == [1, 0, 0]
    # An error aborts the rest: nothing committed, the transaction rolled back.
    with pytest.raises(errors.ProgrammingError):
        p.write_in_one_trip(1, [seq, (insert, (1, "1", "c", 5)), ("SELECT * FROM no_such_table", ())])
    assert not backend.in_transaction
    assert [r[0] for r in backend.execute(f'SELECT c1 FROM "{TABLE}" ORDER BY c1')] == ["a", "b"]


def test_probed_reads(backend):
    reads = probed_reads(backend)
    if reads is None:
        pytest.skip("others_committed is cheap here: queries need no probe")
    write(backend, (1, "a", 1), (2, "b", 2))
    first, rows = reads.execute_probed("SELECT 42", f'SELECT c1 FROM "{TABLE}" ORDER BY c1')
    assert first == (42,) and rows == [("a",), ("b",)]
    first, rows = reads.execute_probed("SELECT 1 WHERE false", f'SELECT c1 FROM "{TABLE}" WHERE c2 = ?', (2,))
    assert first is None and rows == [("b",)]
    assert backend.others_committed() and backend.others_committed()  # no cheap check: always True
    with pytest.raises(errors.ProgrammingError):
        reads.execute_probed("SELECT 1", "SELECT * FROM no_such_table")


# -- detection ------------------------------------------------------------------------------------


def test_an_ability_is_found_by_its_methods_on_the_class():
    class Allocating:
        """Has AllocatedVersions' one method."""

        def allocating_insert_sql(self, table: str, columns: Any) -> str:
            """An INSERT."""
            return "INSERT"

    class Plain:
        """Has no ability's methods."""

    assert protocol.has_ability(Allocating(), AllocatedVersions)
    assert not protocol.has_ability(Allocating(), NativeSerials)
    assert not protocol.has_ability(Plain(), AllocatedVersions)


# -- SQLite: the dialect and the functions it calls ---------------------------------------------


def test_sqlite_dialect_calls_only_registered_functions():
    from loomdb.backend.sqlite import dialect, functions

    called = set(re.findall(r"\bloom_\w+|gen_random_uuid", inspect.getsource(dialect)))
    assert called and called <= functions.REGISTERED


def test_dialect_doctests():
    from loomdb.backend.postgres import dialect as postgres_dialect
    from loomdb.backend.sqlite import dialect as sqlite_dialect

    for module in (sqlite_dialect, postgres_dialect):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__
