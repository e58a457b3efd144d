"""The server engine: a loomdb store in one schema of a PostgreSQL database.

Columns are PostgreSQL's native types (jsonb, timestamptz, numeric,
boolean, uuid, and pgvector's ``vector(n)``), so the store can be queried,
indexed and backed up with PostgreSQL's own tools. Values cross the
boundary in loomdb's storage forms (see :mod:`loomdb.types`): results come
back as JSON text, little-endian float32 bytes, fixed-width UTC timestamp
text, exactly as the SQLite engine returns them, so every layer above
behaves the same on both engines.

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
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import errors as pgerrors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format, TransactionStatus
from psycopg.types import TypeInfo
from psycopg.types.datetime import TimestamptzBinaryLoader

from .. import errors
from ..sql.dialect import LoomPostgresOut
from ..types import ColumnType, VectorBlob, format_timestamp
from .pg_wire import Result, Wire

CATALOG_LOCK = 0  # advisory lock key for catalog changes; branch locks use the branch id
INF_SEQ = 9223372036854775807  # _end of a version nobody has superseded yet
# The transaction-local setting that holds a one-round-trip batch's commit id.
BATCH_SEQ = "loom.batch_seq"
_EPOCH_SQL = "SELECT value FROM loom_meta WHERE key = 'epoch'"  # store.EPOCH_SQL (a backend imports no store)

# Native column types by loomdb kind. Text compares bytewise (COLLATE "C"),
# as on SQLite, so ORDER BY and comparisons agree across engines.
_NATIVE = {
    "text": 'text COLLATE "C"',
    "int": "bigint",
    "serial": "bigint",
    "float": "double precision",
    "numeric": "numeric",
    "bool": "boolean",
    "json": "jsonb",
    "timestamp": "timestamptz",
    "date": "date",
    "bytes": "bytea",
    "uuid": "uuid",
}

_SIZED = {
    "smallint": "smallint",
    "int2": "smallint",
    "smallserial": "smallint",
    "int": "integer",
    "integer": "integer",
    "int4": "integer",
    "serial": "integer",
}

# Catalog columns whose values an identity sequence hands out.
_IDENTITIES = (
    ("loom_branches", "bid"),
    ("loom_commits", "seq"),
    ("loom_schema", "id"),
    ("loom_tables", "tid"),
)

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# One scan over SQL text: quoted strings, quoted identifiers and comments are
# copied; ?n / $n / bare ? become native $k placeholders, numbered in order.
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\?(\d*)|\$(\d+)""")


def translate_sql(sql: str) -> tuple[str, tuple[int, ...]]:
    """``sql`` with loomdb's placeholders as PostgreSQL's ``$1, $2, ...`` in
    order of appearance, and the 0-based parameter index each one takes."""
    order: list[int] = []
    sequential = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal sequential
        text = match.group(0)
        if text[0] == "?":
            if match.group(1):
                order.append(int(match.group(1)) - 1)
            else:
                order.append(sequential)
                sequential += 1
        elif text[0] == "$":
            order.append(int(match.group(2)) - 1)
        else:
            return text
        return f"${len(order)}"

    return _TOKEN.sub(replace, sql), tuple(order)


def split_url(url: str, schema: str | None) -> tuple[str, str]:
    """``(libpq URL, schema)``: loomdb's ``?schema=`` is taken out of the URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    from_url = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    if schema is None:
        schema = from_url[-1] if from_url else "public"
    elif from_url and from_url[-1] != schema:
        raise errors.ProgrammingError(
            f"schema {schema!r} contradicts ?schema={from_url[-1]} in the URL; give one of them"
        )
    if not _SCHEMA_NAME.match(schema) or schema.lower().startswith("pg_"):
        raise errors.ProgrammingError(
            f"invalid schema name {schema!r}: use letters, digits and _ (at most 63, not starting with"
            " a digit or with pg_, which PostgreSQL reserves)"
        )
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), schema


def _translate(exc: Exception) -> errors.Error:
    """Map a psycopg exception onto loomdb's PEP 249 hierarchy, keeping its message."""
    if isinstance(exc, errors.Error):
        return exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (pgerrors.LockNotAvailable, pgerrors.QueryCanceled, pgerrors.DeadlockDetected)):
        return errors.OperationalError(f"the store stayed locked by another writer: {message}")
    if isinstance(exc, psycopg.IntegrityError):
        return errors.IntegrityError(message)
    if isinstance(exc, psycopg.DataError):
        return errors.DataError(message)
    if isinstance(exc, pgerrors.FeatureNotSupported):
        return errors.NotSupportedError(message)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return errors.OperationalError(f"PostgreSQL connection failed: {message}")
    if isinstance(exc, psycopg.ProgrammingError):
        return errors.ProgrammingError(message)
    if isinstance(exc, psycopg.InternalError):
        return errors.OperationalError(message)
    if isinstance(exc, psycopg.Error):
        return errors.DatabaseError(message)
    return errors.InternalError(message)


# -- adapting loomdb's storage forms to PostgreSQL's binary formats ------------------------


class _VectorDumper(Dumper):
    """VectorBlob (little-endian float32) -> pgvector's binary ``vector``."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        values = np.frombuffer(obj, dtype="<f4")
        return struct.pack(">HH", len(values), 0) + values.astype(">f4").tobytes()


class _VectorLoader(Loader):
    """pgvector's binary ``vector`` -> little-endian float32 bytes (a VectorBlob,
    so that a value read and written back stays a vector)."""

    format = Format.BINARY

    def load(self, data: Any) -> bytes:
        return VectorBlob(np.frombuffer(data, dtype=">f4", offset=4).astype("<f4").tobytes())


class _JsonbLoader(Loader):
    """Binary jsonb (a version byte, then the text) -> the JSON text, unparsed."""

    format = Format.BINARY

    def load(self, data: Any) -> str:
        return bytes(data[1:]).decode()


class _JsonLoader(Loader):
    format = Format.BINARY

    def load(self, data: Any) -> str:
        return bytes(data).decode()


class _TimestampLoader(TimestamptzBinaryLoader):
    """timestamptz -> loomdb's fixed-width UTC text."""

    def load(self, data: Any) -> Any:
        return format_timestamp(super().load(data))


class _BoolDumper(Dumper):
    """Python bool as PostgreSQL boolean (psycopg's default; kept explicit)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return b"\x01" if obj else b"\x00"


class PostgresBackend:
    """A loomdb engine over one schema of a PostgreSQL database (see the module docstring)."""

    name = "postgres"
    dialect = LoomPostgresOut
    #: Version ids come from a sequence and do not follow commit order across
    #: branches, so there is no in-memory vector copy (pgvector ranks) and no
    #: version-id range search (an index on (_seq, _bid) answers instead).
    #: ``+column`` would hide a column's statistics from PostgreSQL's planner.
    plus_hints = False
    #: SERIAL counters are sequences (see serial_next).
    native_serials = True
    ordered_versions = False
    #: A round trip costs more than a commit row a no-op statement rolls back:
    #: the commit row is written with BEGIN and the branch lock.
    eager_commit = True
    #: No cheap "did anyone commit?" (SQLite's data_version): a query reads the
    #: schema epoch in its own round trip instead (see execute_probed).
    cheap_change_check = False

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        durability: str = "full",
        timeout: float = 60.0,
        create: bool = True,
    ):
        if durability not in ("full", "normal"):
            raise errors.ProgrammingError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.conninfo, self.schema = split_url(url, schema)
        self.path = url if schema is None else _with_schema(url, self.schema)
        self.timeout = float(timeout)
        self._translated: dict[str, tuple[str, tuple[int, ...]]] = {}
        self._deferred: list[tuple[str, list[Any] | None]] = []
        self._changes = 0
        try:
            self.conn = psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=max(1, int(min(timeout, 30)))
            )
        except psycopg.Error as exc:
            raise errors.OperationalError(
                f"cannot connect to PostgreSQL at {_display(self.conninfo)}: {_translate(exc)}"
            ) from None
        self._wire = Wire(self.conn)
        try:
            self._setup(durability, create)
        except BaseException:
            self.conn.close()
            raise

    # -- opening -------------------------------------------------------------------------

    def _setup(self, durability: str, create: bool) -> None:
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
        adapters = self.conn.adapters
        adapters.register_dumper(bool, _BoolDumper)
        for name, loader in (
            ("jsonb", _JsonbLoader),
            ("json", _JsonLoader),
            ("timestamptz", _TimestampLoader),
        ):
            info = TypeInfo.fetch(self.conn, name)
            assert info is not None
            adapters.register_loader(info.oid, loader)
        if self.has_vector:
            info = TypeInfo.fetch(self.conn, "vector")
            assert info is not None
            _VectorDumper.oid = info.oid
            adapters.register_dumper(VectorBlob, _VectorDumper)
            adapters.register_loader(info.oid, _VectorLoader)
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
        rows = self.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = ? AND tablename = ?", (self.schema, name)
        )
        return next(rows, None) is not None

    def describe(self) -> str:
        return f"schema {self.schema!r} of {_display(self.conninfo)}"

    def id_list_sql(self, param: int) -> str:
        """A subquery of the integers in the JSON array bound to parameter ``param``."""
        return f"(SELECT CAST(value AS bigint) FROM jsonb_array_elements_text(CAST(?{param} AS jsonb)))"

    def prepare_new_store(self) -> None:
        """Nothing to switch on: PostgreSQL's WAL is always on."""

    def catalog_sql(self, statement: str) -> str:
        """A catalog statement written for SQLite in this engine's types.

        The commit index covers main too: SQLite leaves main out to save a
        page write per commit, but PostgreSQL's planner, before it has
        statistics, would find main's head by scanning every commit.
        """
        statement = statement.replace(" WHERE bid > 1", "")
        statement = statement.replace(
            "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        )
        return re.sub(r"\bINTEGER\b", "BIGINT", statement)

    # -- running SQL ---------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        for _ in self.execute(sql, params):
            pass

    def _prepare(self, sql: str, params: Sequence[Any]) -> tuple[str, list[Any] | None]:
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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        if self._deferred:
            _, rows = self._pipeline([], (sql, params))
            return iter(rows)
        result = self._send([self._prepare(sql, params)])[0]
        self._changes = result.rowcount
        return iter(result.rows or ())

    def _send(self, statements: list[tuple[str, list[Any] | None]]) -> list[Result]:
        """Run ``statements`` in one round trip (see :mod:`.pg_wire`)."""
        try:
            return self._wire.run(statements)
        except psycopg.Error as exc:
            raise _translate(exc) from None

    @property
    def has_deferred(self) -> bool:
        return bool(self._deferred)

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue a write whose result nobody reads; it is sent with the next
        statement, in the same round trip (a rollback discards it)."""
        self._deferred.append(self._prepare(sql, params))

    def execute_probed(
        self, probe: str, sql: str, params: Sequence[Any] = ()
    ) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
        """Run ``probe`` then ``sql`` in one round trip: the probe's first row and
        the statement's rows."""
        (first,), rows = self._pipeline([(probe, ())], (sql, params))
        return first, rows

    def _pipeline(
        self, probes: Sequence[tuple[str, Sequence[Any]]], last: tuple[str, Sequence[Any]] | None
    ) -> tuple[list[tuple[Any, ...] | None], list[tuple[Any, ...]]]:
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
        return _translate(exc)

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
        return self._changes

    def begin_write(
        self, lock: int = CATALOG_LOCK, probes: Sequence[tuple[str, Sequence[Any]]] = ()
    ) -> list[tuple[Any, ...] | None]:
        """BEGIN, take branch ``lock``'s advisory lock, then run ``probes``: one
        round trip (a pipeline); returns each probe's first row (or None).

        At READ COMMITTED each probe, running after the lock, sees every
        commit of the writer before us on this branch.
        """
        steps = [
            ("BEGIN ISOLATION LEVEL READ COMMITTED", ()),
            (f"SELECT pg_advisory_xact_lock(hashtext(current_schema()), {int(lock)})", ()),
            *probes,
        ]
        try:
            rows, _ = self._pipeline(steps, None)
        except errors.Error:
            self.rollback()  # BEGIN went through when the lock wait failed
            raise
        return rows[2:]

    def lock(self, key: int) -> None:
        """Take advisory lock ``key`` (a branch id, or the catalog) until the transaction ends."""
        self._run(f"SELECT pg_advisory_xact_lock(hashtext(current_schema()), {int(key)})")

    def lock_catalog(self) -> None:
        self.lock(CATALOG_LOCK)

    def begin_read(self) -> None:
        self._run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def commit(self) -> None:
        self._run("COMMIT")

    def rollback(self) -> None:
        self._deferred = []
        if self.in_transaction:
            try:
                self._run("ROLLBACK")
            except errors.Error:
                pass

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def others_committed(self) -> bool:
        # No cheap change counter: callers re-read what they cache.
        return True

    def set_statement_time(self, now: str | None) -> None:
        """NOW() is PostgreSQL's own: the start of the transaction."""

    # -- physical schema -----------------------------------------------------------------

    def _native(self, ctype: ColumnType) -> str:
        if ctype.kind == "vector":
            if not self.has_vector:
                raise errors.NotSupportedError(
                    "VECTOR columns need the pgvector extension, which this PostgreSQL server does not"
                    " have enabled: install pgvector and run CREATE EXTENSION vector (as a superuser)"
                    " in this database"
                )
            return f"vector({ctype.dim})"
        if ctype.kind in ("int", "serial"):
            # The width the user declared, as PostgreSQL has it: sum() of an
            # INT column is a bigint, of a BIGINT column a numeric.
            base = ctype.sql.split("(")[0].strip().lower()
            return _SIZED.get(base, _NATIVE[ctype.kind])
        return _NATIVE[ctype.kind]

    def _cast_type(self, ctype: ColumnType) -> str:
        return self._native(ctype).split(" COLLATE ")[0]

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        user = "".join(f', "{phys}" {self._native(ctype)}' for phys, ctype in columns)
        for phys, ctype in columns:
            if ctype.kind == "serial":
                self._run(f"CREATE SEQUENCE {_serial(table, phys)}")
        self._run(f'CREATE SEQUENCE "{table}__vid"')
        self._run(
            f'CREATE TABLE "{table}" (_vid bigint PRIMARY KEY, _rid bigint NOT NULL,'
            f" _bid bigint NOT NULL, _seq bigint NOT NULL, _end bigint NOT NULL,"
            f" _del smallint NOT NULL{user})"
        )
        self._run(
            f'CREATE INDEX "{table}__rid" ON "{table}" (_rid, _bid, _seq) WHERE _bid > 1 OR _vid <> _rid'
        )
        # A branch's changes since a commit (merge, diff) are found by this index. It
        # leads with _seq: led by _bid it would lure the planner into "_bid = 1" scans.
        self._run(f'CREATE INDEX "{table}__seq" ON "{table}" (_seq, _bid)')

    def allocating_insert_sql(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> str:
        """The INSERT of one version that takes its _vid from the table's sequence
        and returns it; parameters: _rid (None: the new _vid), _bid, _seq, _end,
        _del, then the user columns. Typed casts, because an INSERT ... SELECT
        does not give untyped parameters the target column's type."""
        names = "".join(f', "{phys}"' for phys, _ in columns)
        values = "".join(
            f", CAST(?{i + 6} AS {self._cast_type(ctype)})" for i, (_, ctype) in enumerate(columns)
        )
        return (
            f'INSERT INTO "{table}" (_vid, _rid, _bid, _seq, _end, _del{names})'
            f" SELECT n.v, COALESCE(CAST(?1 AS bigint), n.v), CAST(?2 AS bigint), CAST(?3 AS bigint),"
            f" CAST(?4 AS bigint), CAST(?5 AS smallint){values}"
            f" FROM (SELECT nextval('\"{table}__vid\"') AS v) AS n RETURNING _vid"
        )

    def absent_insert_sql(
        self, table: str, columns: Sequence[tuple[str, ColumnType]], view: str, key: Sequence[tuple[str, int]]
    ) -> str:
        """The INSERT of one new row that inserts nothing when a row of ``view``
        (a branch view) has its ``key`` already: ``(user name, index into
        columns)`` pairs (none: a table without keys). Its _vid comes from the table's
        sequence, its commit id from the transaction's ``loom.batch_seq`` setting
        (see ``write_in_one_trip`` and loomdb.batch_insert).
        Parameters: ?1 the branch, ?2 the schema epoch the caller planned with
        (nothing is inserted under another), then the columns. Typed casts, as
        in ``allocating_insert_sql``."""
        names = "".join(f', "{phys}"' for phys, _ in columns)
        casts = [f"CAST(?{i + 3} AS {self._cast_type(ctype)})" for i, (_, ctype) in enumerate(columns)]
        absent = ""
        if key:
            same = " AND ".join(f't."{name}" = {casts[i]}' for name, i in key)
            absent = f" AND NOT EXISTS (SELECT 1 FROM {view} AS t WHERE {same})"
        return (
            f'INSERT INTO "{table}" (_vid, _rid, _bid, _seq, _end, _del{names})'
            f" SELECT n.v, n.v, CAST(?1 AS bigint), CAST(current_setting('{BATCH_SEQ}') AS bigint),"
            f" {INF_SEQ}, 0{''.join(', ' + c for c in casts)}"
            f" FROM (SELECT nextval('\"{table}__vid\"') AS v) AS n"
            f" WHERE ({_EPOCH_SQL}) = CAST(?2 AS text){absent}"
        )

    def write_in_one_trip(
        self, lock: int, steps: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[tuple[tuple[Any, ...] | None, int]]:
        """BEGIN, take branch ``lock``'s advisory lock, run ``steps``, COMMIT: one
        round trip. Returns each step's first row (or None) and row count. The
        first error aborts the rest (COMMIT included): the transaction is rolled
        back and the error raised."""
        statements = [
            ("BEGIN ISOLATION LEVEL READ COMMITTED", ()),
            (f"SELECT pg_advisory_xact_lock(hashtext(current_schema()), {int(lock)})", ()),
            *steps,
            ("COMMIT", ()),
        ]
        try:
            results = self._send([self._prepare(sql, params) for sql, params in statements])
        except errors.Error:
            self.rollback()
            raise
        return [(r.rows[0] if r.rows else None, r.rowcount) for r in results[2:-1]]

    def sync_sequences(self, physical_tables: Sequence[str]) -> None:
        """After rows were written with explicit ids (a copy), make every
        sequence hand out ids after the largest one present."""
        pairs = [(f"pg_get_serial_sequence('{t}', '{c}')", t, c) for t, c in _IDENTITIES]
        pairs += [(f"'\"{t}__vid\"'", f'"{t}"', "_vid") for t in physical_tables]
        for sequence, table, column in pairs:
            self._run(
                f"SELECT setval({sequence}, (SELECT COALESCE(max({column}), 0) + 1 FROM {table}), false)"
            )

    def add_physical_column(self, table: str, column: str, ctype: ColumnType) -> None:
        if ctype.kind == "serial":
            self._run(f"CREATE SEQUENCE {_serial(table, column)}")
        self._run(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {self._native(ctype)}')

    # SERIAL counters: a sequence per column, as PostgreSQL's own SERIAL. Like
    # PostgreSQL's, a value handed out by a rolled-back statement is not reused.

    def serial_next(self, table: str, column: str) -> int:
        return int(next(self.execute(f"SELECT nextval('{_serial(table, column)}')"))[0])

    def serial_bump(self, table: str, column: str, value: int) -> None:
        name = _serial(table, column)
        self._run(
            f"SELECT setval('{name}', ?) FROM {name}"
            " WHERE ? > CASE WHEN is_called THEN last_value ELSE last_value - 1 END",
            (value, value),
        )

    def serial_value(self, table: str, column: str) -> int:
        name = _serial(table, column)
        return int(
            next(self.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {name}"))[0]
        )

    def serial_set(self, table: str, column: str, value: int) -> None:
        name = _serial(table, column)
        if value > 0:
            self._run(f"SELECT setval('{name}', ?, true)", (value,))
        else:
            self._run(f"SELECT setval('{name}', 1, false)")

    def create_physical_index(
        self,
        table: str,
        index: str,
        columns: Sequence[str],
        method: str | None = None,
        opclass: str | None = None,
    ) -> None:
        if method in ("hnsw", "ivfflat"):
            if not self.has_vector:
                raise errors.NotSupportedError(f"index method {method!r} needs the pgvector extension")
            (column,) = columns
            ops = f" {opclass}" if opclass else ""
            self._run(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" USING {method} ("{column}"{ops})')
            return
        cols = ", ".join([f'"{c}"' for c in columns] + ["_bid", "_end", "_del", "_seq", "_rid"])
        self._run(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ({cols})')

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        return [str(r[0]) for r in self.execute("EXPLAIN " + sql, params)]

    def close(self) -> None:
        try:
            self.conn.close()
        except psycopg.Error as exc:
            raise _translate(exc) from None


def _serial(table: str, column: str) -> str:
    """The quoted name of the sequence behind SERIAL column ``column`` of ``table``."""
    return f'"{table}__{column}__serial"'


def _display(conninfo: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(conninfo)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = user.split(":", 1)[0] + "@" + host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    query.append(("schema", schema))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
