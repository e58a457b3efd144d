"""The contract every storage engine fulfils, and the optional abilities an engine may add.

loomdb's upper layers (SQL compilation, versioning, the public ``Database``)
talk to an engine only through :class:`Backend`: they hand it SQL in the
engine's dialect with positional parameters (``?`` or ``?n``), and it runs
them. An engine knows nothing of branches; it stores the physical tables it
is told to create (their layout is :mod:`loomdb.layout`).

What only some engines can do is not a boolean flag but an ability: a small
Protocol of its own (:class:`AllocatedVersions`, :class:`NativeSerials`,
:class:`PipelinedWrites`, :class:`ProbedReads`). A caller asks for one at
run time through its detection function and gets the engine back typed as
that ability, or None::

    if (p := pipelined(backend)) is not None:
        p.write_in_one_trip(bid, steps)

The engines prove to mypy that they implement the contract and the abilities
they claim (see ``_conforms`` at the bottom of each backend module), and
``tests/test_backend_contract.py`` runs every engine against it.

Errors: every method that touches the database raises loomdb's PEP 249
errors (:mod:`loomdb.errors`), never the driver's: ProgrammingError (bad SQL,
an unknown table or column, a wrong parameter count), IntegrityError (a
violated constraint), DataError (a value that does not fit its type),
OperationalError (a lock wait that timed out, a lost connection, I/O),
NotSupportedError (a feature the engine lacks), NotALoomStoreError (the
location holds something else), DatabaseError (anything else the engine
reports). Messages are the engine's own, PostgreSQL-like where the engine is
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

if TYPE_CHECKING:
    from sqlglot.dialects.dialect import Dialect

    from ..errors import Error
    from ..types import ColumnType

#: One result row.
Row = tuple[Any, ...]
#: One statement with its parameters.
Statement = tuple[str, Sequence[Any]]


class Backend(Protocol):
    """The core contract: what every engine does and every caller may use."""

    @property
    def name(self) -> str:
        """A short engine name: ``"sqlite"`` or ``"postgres"`` (recorded in exports)."""
        ...

    @property
    def path(self) -> str:
        """What reopens the store: an absolute file path or a URL (it may hold a password)."""
        ...

    @property
    def dialect(self) -> type[Dialect]:
        """The sqlglot dialect that writes SQL this engine runs (its functions,
        casts and ``?n`` parameters)."""
        ...

    # -- the store itself ---------------------------------------------------------------------

    def describe(self) -> str:
        """The store's location for messages, without a password."""
        ...

    def is_empty(self) -> bool:
        """True when the file or schema holds nothing at all yet (a store may be created there)."""
        ...

    def has_table(self, name: str) -> bool:
        """Whether a table ``name`` exists in the store (never raises for a missing one)."""
        ...

    def prepare_new_store(self) -> None:
        """Apply the engine settings a new store needs before its catalog is
        written (SQLite: WAL mode). Raises OperationalError when it cannot."""
        ...

    def catalog_sql(self, statement: str) -> str:
        """A statement of :data:`loomdb.layout.CATALOG_DDL` (written in SQLite's
        types) in this engine's types."""
        ...

    def id_list_sql(self, param: int) -> str:
        """A parenthesised subquery yielding the integers of the JSON array bound
        to parameter ``param`` (for ``x IN <subquery>``)."""
        ...

    def unindexed(self, expression: str) -> str:
        """``expression`` spelled so that the planner does not drive a scan from
        an index on it. SQLite: ``+expression`` (its planner would otherwise
        pick the low-selectivity ``_bid`` index); engines whose planner weighs
        statistics return it unchanged (a ``+`` would hide them)."""
        ...

    # -- running SQL --------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
        """Run one statement (after any deferred writes) and iterate its result
        rows as tuples; a statement without rows yields none. Raises the loomdb
        errors listed in the module docstring."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row; the first error is raised
        (earlier rows stay written inside the open transaction)."""
        ...

    def changes(self) -> int:
        """The number of rows the last INSERT, UPDATE or DELETE changed."""
        ...

    @property
    def has_deferred(self) -> bool:
        """Whether writes handed to :meth:`defer` are waiting for the next statement."""
        ...

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a write whose result nobody reads: now (where a statement is an
        in-process call), or with the next statement in its round trip (its
        errors then surface there; a rollback discards it)."""
        ...

    def translate(self, exc: Exception) -> Error:
        """The loomdb error for an exception the engine's driver raised (while
        iterating a result, say); a loomdb error is returned as it is."""
        ...

    def query_plan(self, sql: str, params: Sequence[Any]) -> list[str]:
        """The engine's plan for ``sql``, one line per step (indented by depth
        where the engine reports a tree)."""
        ...

    # -- transactions -------------------------------------------------------------------------

    def begin_write(self, lock: int = 0, probes: Sequence[Statement] = ()) -> list[Row | None]:
        """Start a write transaction holding the lock of branch ``lock`` (0: the catalog).

        Writers of one branch are ordered; an engine may also order writers of
        different branches (SQLite has one write lock). Waits in line up to the
        connection's timeout, then raises OperationalError (no transaction is
        left open). ``probes`` are taken only by engines with
        :class:`PipelinedWrites`, which run them after the lock in the same
        round trip and return each one's first row (or None); others raise
        InternalError when given any, and return ``[]``.
        """
        ...

    def lock_catalog(self) -> None:
        """Also hold the catalog lock until the open write transaction ends."""
        ...

    def begin_read(self) -> None:
        """Start a read-only transaction that sees one committed state throughout."""
        ...

    def commit(self) -> None:
        """Make the open transaction durable (per the durability setting).
        Raises OperationalError when it could not be committed."""
        ...

    def rollback(self) -> None:
        """Discard the open transaction and any deferred writes; does nothing
        when none is open, and never raises."""
        ...

    def abandon(self) -> None:
        """Roll back whatever is open, whatever state an interrupt (a
        KeyboardInterrupt in the middle of a round trip, say) left the
        connection in; afterwards the backend is ready for a new transaction.
        Raises OperationalError only when that cannot be done (a server that
        cannot be reached)."""
        ...

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this connection."""
        ...

    def others_committed(self) -> bool:
        """True when another connection may have committed since the last call.
        Cheap where the engine can tell (SQLite's data_version); engines that
        cannot always answer True and have :class:`ProbedReads`."""
        ...

    def set_statement_time(self, now: str | None) -> None:
        """The value SQL's NOW() returns until the next call (None: the clock
        when the statement runs). Engines whose NOW() is already the
        transaction's start ignore it."""
        ...

    # -- physical schema ----------------------------------------------------------------------

    def create_physical_table(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> None:
        """Create the versioned table ``table``: :data:`loomdb.layout.VERSION_COLUMNS`,
        then the user columns ``(physical name, type)``, and the identity index
        :func:`loomdb.layout.identity_index`. Raises NotSupportedError for a type
        the engine cannot store (a VECTOR without pgvector)."""
        ...

    def add_physical_column(self, table: str, column: str, ctype: ColumnType) -> None:
        """Add user column ``column`` of type ``ctype`` to ``table`` (NULL in existing rows)."""
        ...

    def upgrade_timestamp_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """Turn the ``(table, column)`` pairs, the TIMESTAMP columns of a format-1 store,
        into the type format 2 gives TIMESTAMP, keeping each value's UTC wall time;
        runs inside the caller's write transaction."""
        ...

    def create_physical_index(
        self,
        table: str,
        index: str,
        columns: Sequence[str],
        method: str | None = None,
        opclass: str | None = None,
    ) -> None:
        """Create index ``index`` unless it exists: a B-tree on ``columns`` then
        :data:`loomdb.layout.COVERING_COLUMNS`, or, for ``method`` hnsw/ivfflat,
        a vector index with ``opclass`` where the engine builds one (an engine
        that searches exactly records nothing and returns)."""
        ...

    def sync_sequences(self, physical_tables: Sequence[str]) -> None:
        """After rows were written with explicit ids (a copy), make every id the
        engine hands out come after the largest one present (the catalog's
        and ``physical_tables``' ids); nothing to do where ids come from max()."""
        ...

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back."""
        ...


# -- optional abilities ------------------------------------------------------------------------


class AllocatedVersions(Protocol):
    """The engine hands out version ids itself (PostgreSQL: a sequence per table).

    Its ids then do not follow the commit order across branches: no
    version-id range search for a commit's versions, and no in-memory vector
    copy that is refreshed by id. Without this ability versions are ordered:
    loomdb allocates each table's ids in commit order (one writer at a time).
    """

    def allocating_insert_sql(self, table: str, columns: Sequence[tuple[str, ColumnType]]) -> str:
        """The INSERT of one version into ``table`` that allocates its ``_vid``
        and returns it (one row, one column). Parameters: ``_rid`` (None: the
        new ``_vid``), ``_bid``, ``_seq``, ``_end``, ``_del``, then the user
        columns ``columns`` in order."""
        ...


class NativeSerials(Protocol):
    """SERIAL counters are the engine's own sequences (one per column), so
    writers on different branches never wait on a shared counter row. Without
    this ability loomdb keeps the counters in ``loom_serial``. As in
    PostgreSQL, a value handed out by a rolled-back statement is not reused."""

    def serial_next(self, table: str, column: str) -> int:
        """The next value of the counter of SERIAL column ``column`` of ``table``."""
        ...

    def serial_bump(self, table: str, column: str, value: int) -> None:
        """Make the counter hand out values above ``value`` (never moves it back)."""
        ...

    def serial_value(self, table: str, column: str) -> int:
        """The last value the counter handed out (0: none yet)."""
        ...

    def serial_set(self, table: str, column: str, value: int) -> None:
        """Make the counter hand out ``value + 1`` next (``value`` 0: start afresh)."""
        ...


class BatchOutcome(NamedTuple):
    """What :meth:`PipelinedWrites.insert_batch` did."""

    #: The commit written (None: nothing was inserted, and nothing committed).
    seq: int | None
    #: The schema epoch the server had when the batch ran (no row is inserted under another).
    epoch: str | None
    #: Rows each row INSERT inserted (0 or 1).
    counts: list[int]


class PipelinedWrites(Protocol):
    """A round trip costs more than a commit row a no-op transaction rolls back.

    ``begin_write`` takes ``probes`` (run after the lock, in BEGIN's round
    trip), and whole write transactions can be sent in one round trip.
    loomdb then writes the commit row with BEGIN, and runs a batch of
    ``INSERT ... ON CONFLICT DO NOTHING`` as :meth:`write_in_one_trip` (see
    :mod:`loomdb.engine.batch_insert`).
    """

    def absent_insert_sql(
        self, table: str, columns: Sequence[tuple[str, ColumnType]], view: str, key: Sequence[tuple[str, int]]
    ) -> str:
        """The INSERT of one new row into ``table`` that inserts nothing when a
        row of ``view`` (a branch view) has its ``key`` already (``(user name,
        index into columns)`` pairs; none: a table without keys), or when the
        schema epoch is not parameter ``?2``. ``?1`` is the branch, then the
        columns. Its commit id is the transaction's ``loom.batch_seq`` setting,
        which the first step of :meth:`write_in_one_trip` sets."""
        ...

    def write_in_one_trip(self, lock: int, steps: Sequence[Statement]) -> list[tuple[Row | None, int]]:
        """BEGIN, the lock of branch ``lock``, ``steps``, COMMIT, in one round
        trip: each step's first row (or None) and row count. The first error
        aborts the rest: nothing is committed, the transaction is rolled back
        and the error raised (a loomdb error)."""
        ...

    def insert_batch(
        self,
        lock: int,
        commit: Statement,
        rows: Sequence[Statement],
        tables: Sequence[str],
        epoch: str,
        drop_commit: Callable[[str], str],
    ) -> BatchOutcome:
        """One write transaction of row INSERTs in one round trip (see
        :mod:`loomdb.engine.batch_insert`): BEGIN and branch ``lock``; ``commit``
        (the commit row's INSERT ... RETURNING seq, whose id the ``rows``'
        :meth:`absent_insert_sql` INSERTs read); ``rows``; then, when no row of
        ``tables`` was written under that commit, ``drop_commit(seq)`` (the
        DELETE of the commit row given its id as an SQL expression); COMMIT,
        unless schema epoch ``epoch`` still holds and nothing was inserted, in
        which case the transaction is rolled back with no commit at all.
        Raises the first failing statement's error, nothing committed."""
        ...


class ProbedReads(Protocol):
    """Telling whether another connection committed costs a round trip
    (:meth:`Backend.others_committed` always answers True), so a query carries
    its own probe (the schema epoch) in its round trip instead."""

    def execute_probed(
        self, probe: str, sql: str, params: Sequence[Any] = ()
    ) -> tuple[Row | None, list[Row]]:
        """Run ``probe``, then ``sql`` with ``params``, in one round trip: the
        probe's first row (or None) and all of the statement's rows. Raises as
        :meth:`Backend.execute`."""
        ...


# -- run-time detection ------------------------------------------------------------------------

_known: dict[tuple[type, type], bool] = {}


def _members(ability: type) -> list[str]:
    """The public methods, properties and attributes ``ability`` declares."""
    names = set(getattr(ability, "__annotations__", {}))
    names.update(name for name in vars(ability) if not name.startswith("_"))
    return sorted(names)


def has_ability(backend: object, ability: type) -> bool:
    """Whether ``backend``'s class provides every member of ``ability``. Worked out once per class, then a dict look-up;
    so an ability declares only methods and properties, never attributes an
    engine would set in ``__init__``."""
    key = (type(backend), ability)
    found = _known.get(key)
    if found is None:
        cls = type(backend)
        found = all(hasattr(cls, name) for name in _members(ability))
        _known[key] = found
    return found


def version_allocator(backend: Backend) -> AllocatedVersions | None:
    """``backend`` as :class:`AllocatedVersions`, or None: its version ids follow
    the commit order and loomdb allocates them."""
    return cast(AllocatedVersions, backend) if has_ability(backend, AllocatedVersions) else None


def native_serials(backend: Backend) -> NativeSerials | None:
    """``backend`` as :class:`NativeSerials`, or None: SERIAL counters are rows of ``loom_serial``."""
    return cast(NativeSerials, backend) if has_ability(backend, NativeSerials) else None


def pipelined(backend: Backend) -> PipelinedWrites | None:
    """``backend`` as :class:`PipelinedWrites`, or None: a statement is cheap,
    nothing is gained by batching (and ``begin_write`` takes no probes)."""
    return cast(PipelinedWrites, backend) if has_ability(backend, PipelinedWrites) else None


def probed_reads(backend: Backend) -> ProbedReads | None:
    """``backend`` as :class:`ProbedReads`, or None: :meth:`Backend.others_committed`
    is cheap, and queries need no probe."""
    return cast(ProbedReads, backend) if has_ability(backend, ProbedReads) else None
