"""The server engine: a loomdb store in one schema of a PostgreSQL database.

Columns are PostgreSQL's native types and values cross the boundary in
loomdb's storage forms (see :mod:`.types`); statements travel in batches,
one round trip each (see :mod:`.wire`).

Concurrency contract
--------------------
* Each write transaction runs at READ COMMITTED and first takes a
  transaction-scoped advisory lock on its branch: writers on one branch are
  ordered (their commits are totally ordered, and every statement after the
  lock sees the previous writer's commit), writers on different branches
  never wait for each other. Catalog changes (CREATE TABLE, new branches)
  also take the store's catalog lock.
* Multi-statement reads run in one REPEATABLE READ, READ ONLY transaction,
  so they see one committed state.
* ``durability="full"`` is ``synchronous_commit=on`` (the server's fsync
  settings apply); ``"normal"`` is ``synchronous_commit=off`` (a returned
  commit survives a crashed client, but the server may lose its last
  commits if it crashes itself).
* A lost connection raises OperationalError; the open transaction is gone
  with it (PostgreSQL rolls it back), so nothing half-written is visible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ... import errors
from ...layout import (
    CATALOG_DDL,
    EPOCH_SQL,
    INF_SEQ,
    MAIN_BID,
    version_insert_sql,
)
from ...types import ColumnType
from ..protocol import (
    AllocatedVersions,
    Backend,
    BatchOutcome,
    NativeSerials,
    PipelinedWrites,
    ProbedReads,
    Row,
    Statement,
)
from . import ddl
from .batch import BATCH_SEQ, insert_batch
from .dialect import LoomPostgresOut
from .translate import translate, translate_sql
from .types import cast_type, register_adapters
from .urls import display, split_url, with_schema
from .wire import Result, Wire

CATALOG_LOCK = 0  # advisory lock key for catalog changes; branch locks use the branch id

# Catalog columns whose values an identity sequence hands out: the INTEGER
# PRIMARY KEYs of the catalog (see catalog_sql).
_IDENTITIES = tuple(
    m.groups()
    for m in (re.match(r"CREATE TABLE (\w+) \((\w+) INTEGER PRIMARY KEY", s) for s in CATALOG_DDL)
    if m
)


def _lock_sql(key: int) -> str:
    """The statement taking advisory lock ``key`` of this store until the transaction ends."""
    return f"SELECT pg_advisory_xact_lock(hashtext(current_schema()), {int(key)})"


_BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"


class PostgresBackend:
    """A loomdb engine over one schema of a PostgreSQL database (see the module docstring).

    Abilities (see :mod:`loomdb.backend.protocol`): AllocatedVersions (a
    sequence per table), NativeSerials (a sequence per SERIAL column),
    PipelinedWrites (a round trip costs more than a commit row a no-op
    rolls back) and ProbedReads (no cheap "did anyone commit?").
    """

    name = "postgres"
    dialect = LoomPostgresOut

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        durability: str = "full",
        timeout: float = 60.0,
        create: bool = True,
    ):
        """Connect to ``url`` and use schema ``schema`` (or the URL's
        ``?schema=``, else public), creating it unless ``create`` is False.
        Installs pgvector when the server has it and the role may. Raises
        ProgrammingError for a bad ``durability`` or schema name,
        OperationalError when it cannot connect or (``create=False``) there
        is no such schema."""
        if durability not in ("full", "normal"):
            raise errors.ProgrammingError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.conninfo, self.schema = split_url(url, schema)
        self.path = url if schema is None else with_schema(url, self.schema)
        self.timeout = float(timeout)
        self.has_vector = False
        self._translated: dict[str, tuple[str, tuple[int, ...]]] = {}
        self._deferred: list[tuple[str, list[Any] | None]] = []
        self._changes = 0
        self._durability = durability
        #: Whether a transaction this backend began is open (BEGIN sent, no COMMIT or ROLLBACK yet).
        self._began = False
        self._connect(create)

    def _connect(self, create: bool) -> None:
        """Open the connection, with loomdb's session settings and adapters."""
        try:
            self.conn = psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=max(1, int(min(self.timeout, 30)))
            )
        except psycopg.Error as exc:
            raise errors.OperationalError(
                f"cannot connect to PostgreSQL at {display(self.conninfo)}: {translate(exc)}"
            ) from None
        self._wire = Wire(self.conn)
        try:
            self._setup(self._durability, create)
        except BaseException:
            self.conn.close()
            raise

    def _reopen(self) -> None:
        """A fresh connection in place of one an interrupted round trip closed
        (the server rolled back whatever that one had open)."""
        try:
            self.conn.close()
        except psycopg.Error:
            pass
        self._began = False
        self._deferred = []
        self._connect(create=False)

    # -- opening -------------------------------------------------------------------------

    def _setup(self, durability: str, create: bool) -> None:
        """Session settings, the schema (created when missing and allowed), the
        search path and loomdb's adapters."""
        sync = "on" if durability == "full" else "off"
        self._run(f"SET synchronous_commit = {sync}")
        self._run("SET TIME ZONE 'UTC'")
        self._run(f"SET lock_timeout = {int(self.timeout * 1000)}")
        self._run("SET client_min_messages = warning")
        self.has_vector = self._ensure_vector()
        exists = next(self.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (self.schema,)), None)
        if exists is None:
            if not create:
                raise errors.OperationalError(f"no store at {self.describe()}: the schema does not exist")
            try:
                self._run(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            except errors.IntegrityError:
                pass  # created by another connection at the same moment
        path = [f'"{self.schema}"']
        if self.has_vector:
            where = next(
                self.execute(
                    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                    " WHERE e.extname = 'vector'"
                )
            )[0]
            if where != self.schema:
                path.append(f'"{where}"')
        self._run(f"SET search_path = {', '.join(path)}")
        register_adapters(self.conn, self.has_vector)
        self._wire.adapters_changed()

    def _ensure_vector(self) -> bool:
        """Whether pgvector is usable; installs it when the server has it and we may."""
        if next(self.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'"), None):
            return True
        available = next(self.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"), None)
        if available is None:
            return False
        try:
            self._run("CREATE EXTENSION IF NOT EXISTS vector")
        except errors.IntegrityError:
            pass  # installed by another connection at the same moment
        except errors.Error:
            return False  # no privilege: VECTOR columns will say how to enable it
        return True

    def is_empty(self) -> bool:
        """True when the schema holds nothing at all (tables, views, sequences, functions, types)."""
        row = next(
            self.execute(
                "SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid)"
                " + (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid)"
                " + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid AND t.typtype IN ('d', 'e', 'r', 'm'))"
                " FROM pg_namespace n WHERE n.nspname = ?",
                (self.schema,),
            ),
            None,
        )
        return row is None or int(row[0]) == 0

    def has_table(self, name: str) -> bool:
        """Whether the store's schema has a table ``name``."""
        rows = self.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = ? AND tablename = ?", (self.schema, name)
        )
        return next(rows, None) is not None

    def describe(self) -> str:
        """``schema 'name' of postgresql://user@host/db`` (no password)."""
        return f"schema {self.schema!r} of {display(self.conninfo)}"

    def id_list_sql(self, param: int) -> str:
        """A subquery of the integers in the JSON array bound to parameter ``param``."""
        return f"(SELECT CAST(value AS bigint) FROM jsonb_array_elements_text(CAST(?{param} AS jsonb)))"

    def unindexed(self, expression: str) -> str:
        """``expression`` unchanged: PostgreSQL's planner weighs statistics,
        which a ``+`` would hide from it."""
        return expression

    def prepare_new_store(self) -> None:
        """Nothing to switch on: PostgreSQL's WAL is always on."""

    def catalog_sql(self, statement: str) -> str:
        """A catalog statement written for SQLite in this engine's types:
        BIGINT, and identity columns for INTEGER PRIMARY KEYs.

        The commit index covers main too: SQLite leaves main out to save a
        page write per commit, but PostgreSQL's planner, before it has
        statistics, would find main's head by scanning every commit.
        """
        statement = statement.replace(f" WHERE bid > {MAIN_BID}", "")
        statement = statement.replace(
            "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        )
        return re.sub(r"\bINTEGER\b", "BIGINT", statement)

    # -- running SQL ---------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run ``sql``, discarding any rows."""
        for _ in self.execute(sql, params):
            pass

    def _prepare(self, sql: str, params: Sequence[Any]) -> tuple[str, list[Any] | None]:
        """``sql`` with native placeholders and its parameters in their order
        (cached by text). ProgrammingError when too few were given."""
        found = self._translated.get(sql)
        if found is None:
            found = translate_sql(sql)
            if len(self._translated) > 4096:
                self._translated.clear()
            self._translated[sql] = found
        text, order = found
        if not order:
            return sql, None
        try:
            return text, [params[i] for i in order]
        except IndexError:
            raise errors.ProgrammingError(
                f"the statement needs {max(order) + 1} parameter(s) but {len(params)} were given"
            ) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
        """Run ``sql`` (with the deferred writes before it, in one round trip);
        its rows are all read before this returns."""
        if self._deferred:
            _, rows = self._pipeline([], (sql, params))
            return iter(rows)
        result = self._send([self._prepare(sql, params)])[0]
        self._changes = result.rowcount
        return iter(result.rows or ())

    def _send(self, statements: list[tuple[str, list[Any] | None]]) -> list[Result]:
        """Run ``statements`` in one round trip (see :mod:`.wire`); loomdb errors.

        A connection an interrupted round trip closed is opened again first,
        unless a transaction was open on it: that one is gone (rolled back),
        which the caller must hear about rather than go on outside it."""
        if self.conn.closed:
            if self._began:
                raise errors.OperationalError(
                    "the PostgreSQL connection was closed in the middle of a transaction"
                    " (an interrupted round trip); the transaction was rolled back"
                )
            self._reopen()
        try:
            return self._wire.run(statements)
        except psycopg.Error as exc:
            raise translate(exc) from None

    @property
    def has_deferred(self) -> bool:
        """Whether writes wait to be sent with the next statement."""
        return bool(self._deferred)

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue a write whose result nobody reads; it is sent with the next
        statement, in the same round trip (a rollback discards it)."""
        self._deferred.append(self._prepare(sql, params))

    def execute_probed(
        self, probe: str, sql: str, params: Sequence[Any] = ()
    ) -> tuple[Row | None, list[Row]]:
        """Run ``probe`` then ``sql`` in one round trip: the probe's first row and
        the statement's rows."""
        (first,), rows = self._pipeline([(probe, ())], (sql, params))
        return first, rows

    def _pipeline(
        self, probes: Sequence[Statement], last: Statement | None
    ) -> tuple[list[Row | None], list[Row]]:
        """One round trip: the deferred writes, then ``probes`` (their first rows
        are returned), then ``last`` (all its rows are returned)."""
        queued, self._deferred = self._deferred, []
        statements = queued + [self._prepare(sql, params) for sql, params in probes]
        if last is not None:
            statements.append(self._prepare(*last))
        results = self._send(statements)[len(queued) :]
        final = results.pop() if last is not None else None
        firsts = [r.rows[0] if r.rows else None for r in results]
        if final is None:
            return firsts, []
        self._changes = final.rowcount
        return firsts, final.rows or []

    def translate(self, exc: Exception) -> errors.Error:
        """See :func:`translate`."""
        return translate(exc)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per row of ``rows``, 1,000 rows per round trip."""
        batch: list[tuple[str, list[Any] | None]] = []
        for row in rows:
            batch.append(self._prepare(sql, row))
            if len(batch) == 1000:
                self._send(batch)
                batch = []
        if batch:
            self._send(batch)

    def changes(self) -> int:
        """The row count of the last statement's command tag."""
        return self._changes

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        """EXPLAIN's lines."""
        return [str(r[0]) for r in self.execute("EXPLAIN " + sql, params)]

    # -- transactions --------------------------------------------------------------------

    def begin_write(self, lock: int = CATALOG_LOCK, probes: Sequence[Statement] = ()) -> list[Row | None]:
        """BEGIN, take branch ``lock``'s advisory lock, then run ``probes``: one
        round trip (a pipeline); returns each probe's first row (or None).

        At READ COMMITTED each probe, running after the lock, sees every
        commit of the writer before us on this branch.
        """
        steps = [(_BEGIN_WRITE, ()), (_lock_sql(lock), ()), *probes]
        try:
            rows, _ = self._pipeline(steps, None)
        except errors.Error:
            self.rollback()  # BEGIN went through when the lock wait failed
            raise
        self._began = True
        return rows[2:]

    def lock(self, key: int) -> None:
        """Take advisory lock ``key`` (a branch id, or the catalog) until the transaction ends."""
        self._run(_lock_sql(key))

    def lock_catalog(self) -> None:
        """Take the catalog's advisory lock until the transaction ends."""
        self.lock(CATALOG_LOCK)

    def begin_read(self) -> None:
        """BEGIN a REPEATABLE READ, READ ONLY transaction (one snapshot)."""
        self._run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._began = True

    def commit(self) -> None:
        """COMMIT (durable per ``synchronous_commit``)."""
        self._run("COMMIT")
        self._began = False

    def rollback(self) -> None:
        """Drop the deferred writes and ROLLBACK any open transaction; never raises."""
        self._deferred = []
        if self.in_transaction and not self.conn.closed:
            try:
                self._run("ROLLBACK")
            except errors.Error:
                pass
        self._began = False

    def abandon(self) -> None:
        """Roll back whatever is open, whatever state an interruption left the
        connection in: a connection closed by an interrupted round trip, or one
        a ROLLBACK cannot reach, is opened afresh (the server rolls back what
        it had). Raises OperationalError only when no connection can be opened."""
        self._deferred = []
        if not self.conn.closed:
            status = self.conn.info.transaction_status
            if status == TransactionStatus.IDLE:
                self._began = False
                return
            if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                try:
                    self._run("ROLLBACK")
                    self._began = False
                    return
                except errors.Error:
                    pass
        self._reopen()

    @property
    def in_transaction(self) -> bool:
        """Whether the connection is not idle (in a transaction, or in a failed one)."""
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def others_committed(self) -> bool:
        """Always True: no cheap change counter (see ProbedReads)."""
        return True

    def set_statement_time(self, now: str | None) -> None:
        """Nothing to do: NOW() is PostgreSQL's own, the start of the transaction."""

    # -- pipelined writes ----------------------------------------------------------------

    def absent_insert_sql(
        self, table: str, columns: Sequence[tuple[str, ColumnType]], view: str, key: Sequence[tuple[str, int]]
    ) -> str:
        """The INSERT of one new row that inserts nothing when a row of ``view``
        (a branch view) has its ``key`` already: ``(user name, index into
        columns)`` pairs (none: a table without keys). Its _vid comes from the
        table's sequence, its commit id from the transaction's ``loom.batch_seq``
        setting (see ``insert_batch`` and loomdb.engine.batch_insert).
        Parameters: ?1 the branch, ?2 the schema epoch the caller planned with
        (nothing is inserted under another), then the columns. Typed casts, as
        in ``allocating_insert_sql``."""
        casts = [f"CAST(?{i + 3} AS {self._cast_type(ctype)})" for i, (_, ctype) in enumerate(columns)]
        absent = ""
        if key:
            same = " AND ".join(f't."{name}" = {casts[i]}' for name, i in key)
            absent = f" AND NOT EXISTS (SELECT 1 FROM {view} AS t WHERE {same})"
        return (
            version_insert_sql(table, [phys for phys, _ in columns])
            + f" SELECT n.v, n.v, CAST(?1 AS bigint), CAST(current_setting('{BATCH_SEQ}') AS bigint),"
            f" {INF_SEQ}, 0{''.join(', ' + c for c in casts)}"
            f" FROM (SELECT nextval('\"{table}__vid\"') AS v) AS n"
            f" WHERE ({EPOCH_SQL}) = CAST(?2 AS text){absent}"
        )

    def write_in_one_trip(self, lock: int, steps: Sequence[Statement]) -> list[tuple[Row | None, int]]:
        """BEGIN, take branch ``lock``'s advisory lock, run ``steps``, COMMIT: one
        round trip. Returns each step's first row (or None) and row count. The
        first error aborts the rest (COMMIT included): the transaction is rolled
        back and the error raised."""
        statements = [(_BEGIN_WRITE, ()), (_lock_sql(lock), ()), *steps, ("COMMIT", ())]
        try:
            results = self._send([self._prepare(sql, params) for sql, params in statements])
        except errors.Error:
            self.rollback()
            raise
        return [(r.rows[0] if r.rows else None, r.rowcount) for r in results[2:-1]]

    def insert_batch(
        self,
        lock: int,
        commit: Statement,
        rows: Sequence[Statement],
        tables: Sequence[str],
        epoch: str,
        drop_commit: Callable[[str], str],
    ) -> BatchOutcome:
        """Row INSERTs as one write transaction in one round trip (see :mod:`.batch`)."""
        return insert_batch(self, lock, commit, rows, tables, epoch, drop_commit)

    # -- physical schema -----------------------------------------------------------------

    def _cast_type(self, ctype: ColumnType) -> str:
        """The type a parameter for a column of ``ctype`` is cast to."""
        return cast_type(ctype, self.has_vector)

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        """The versioned table, the sequences behind its ids and SERIAL columns,
        and its indexes (see :func:`.ddl.physical_table`)."""
        for statement in ddl.physical_table(table, columns, self.has_vector):
            self._run(statement)

    def allocating_insert_sql(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> str:
        """The INSERT of one version that takes its _vid from the table's sequence
        and returns it (see :func:`.ddl.allocating_insert`)."""
        return ddl.allocating_insert(table, columns, self.has_vector)

    def sync_sequences(self, physical_tables: Sequence[str]) -> None:
        """After rows were written with explicit ids (a copy), make every
        sequence hand out ids after the largest one present."""
        pairs = [(f"pg_get_serial_sequence('{t}', '{c}')", t, c) for t, c in _IDENTITIES]
        pairs += [(f"'\"{t}__vid\"'", f'"{t}"', "_vid") for t in physical_tables]
        for sequence, table, column in pairs:
            self._run(
                f"SELECT setval({sequence}, (SELECT COALESCE(max({column}), 0) + 1 FROM {table}), false)"
            )

    def upgrade_timestamp_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """ALTER each timestamptz column into a timestamp holding its UTC wall time."""
        for table, column in columns:
            self._run(ddl.timestamp_upgrade(table, column))

    def add_physical_column(self, table: str, column: str, ctype: ColumnType) -> None:
        """ALTER TABLE ... ADD COLUMN (and the sequence of a SERIAL column)."""
        for statement in ddl.added_column(table, column, ctype, self.has_vector):
            self._run(statement)

    def create_physical_index(
        self,
        table: str,
        index: str,
        columns: Sequence[str],
        method: str | None = None,
        opclass: str | None = None,
    ) -> None:
        """A covering B-tree index, or a pgvector index (hnsw, ivfflat) on one
        column; NotSupportedError for the latter without pgvector."""
        if method in ("hnsw", "ivfflat") and not self.has_vector:
            raise errors.NotSupportedError(f"index method {method!r} needs the pgvector extension")
        self._run(ddl.index(table, index, columns, method, opclass))

    # -- SERIAL counters: a sequence per column, as PostgreSQL's own SERIAL ----------------

    def serial_next(self, table: str, column: str) -> int:
        """nextval of the column's sequence."""
        return int(next(self.execute(f"SELECT nextval('{ddl.serial_sequence(table, column)}')"))[0])

    def serial_bump(self, table: str, column: str, value: int) -> None:
        """setval to ``value`` unless the sequence is past it already."""
        name = ddl.serial_sequence(table, column)
        self._run(
            f"SELECT setval('{name}', ?) FROM {name}"
            " WHERE ? > CASE WHEN is_called THEN last_value ELSE last_value - 1 END",
            (value, value),
        )

    def serial_value(self, table: str, column: str) -> int:
        """The sequence's last value, 0 before its first nextval."""
        name = ddl.serial_sequence(table, column)
        return int(
            next(self.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {name}"))[0]
        )

    def serial_set(self, table: str, column: str, value: int) -> None:
        """setval so that nextval returns ``value + 1``."""
        name = ddl.serial_sequence(table, column)
        if value > 0:
            self._run(f"SELECT setval('{name}', ?, true)", (value,))
        else:
            self._run(f"SELECT setval('{name}', 1, false)")

    def close(self) -> None:
        """Close the connection (the server rolls back an open transaction)."""
        try:
            self.conn.close()
        except psycopg.Error as exc:
            raise translate(exc) from None


def _conforms(
    backend: PostgresBackend,
) -> tuple[Backend, AllocatedVersions, NativeSerials, PipelinedWrites, ProbedReads]:
    """Never called: mypy checks here that PostgresBackend fulfils the contract
    and has every ability its docstring claims."""
    return backend, backend, backend, backend, backend
