"""One open store: the connection, the catalog (branches, commits, schemas), caches.

Every :class:`~loomdb.database.Database` handle derived from one ``connect``
shares one Store. The Store owns the write transaction state, so that one
commit is written per write statement (or per ``transaction()`` block).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import errors
from .catalog import TableSchema
from .sql.compile import Compiled
from .types import now_text, parse_timestamp
from .versioning.lineage import INF_SEQ, Lineage, build_lineage, commits_sql, visibility_sql

FORMAT_VERSION = 1

_CATALOG = [
    "CREATE TABLE loom_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # start: the newest commit when the branch was created; every version the
    # branch writes comes after it, which bounds scans for its changes.
    "CREATE TABLE loom_branches (bid INTEGER PRIMARY KEY, name TEXT NOT NULL, parent INTEGER,"
    " fork INTEGER, start INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL, dropped INTEGER NOT NULL DEFAULT 0)",
    "CREATE UNIQUE INDEX loom_branches_live_name ON loom_branches (name) WHERE dropped = 0",
    "CREATE TABLE loom_commits (seq INTEGER PRIMARY KEY, bid INTEGER NOT NULL, parent INTEGER,"
    " merge_parent INTEGER, merge_bid INTEGER, message TEXT, author TEXT, time TEXT NOT NULL)",
    # Main's commits stay out of this index (one page less per commit on main);
    # main's head is found by reading the commit table backwards instead.
    "CREATE INDEX loom_commits_branch ON loom_commits (bid, seq) WHERE bid > 1",
    "CREATE TABLE loom_schema (id INTEGER PRIMARY KEY, bid INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " name TEXT NOT NULL, definition TEXT)",
    "CREATE TABLE loom_tables (tid INTEGER PRIMARY KEY, physical TEXT NOT NULL, columns TEXT NOT NULL)",
    "CREATE TABLE loom_serial (tid INTEGER NOT NULL, phys TEXT NOT NULL, value INTEGER NOT NULL,"
    " PRIMARY KEY (tid, phys))",
]

EPOCH_SQL = "SELECT value FROM loom_meta WHERE key = 'epoch'"

# The newest commit of branch ?1: main's commits stay out of the branch index,
# so main reads the commit table backwards instead.
_HEAD_SQL = {
    False: "(SELECT max(seq) FROM loom_commits WHERE bid > 1 AND bid = ?1)",
    True: "(SELECT seq FROM loom_commits WHERE bid = ?1 ORDER BY seq DESC LIMIT 1)",
}
_BRANCH_COLUMNS = "bid, name, parent, fork, created, dropped, start"  # BranchInfo's fields, in order
_BRANCH_NAME = re.compile(r"^[A-Za-z0-9_.\-][A-Za-z0-9_.\-/@+=:]*$")


@dataclass(frozen=True)
class BranchInfo:
    bid: int
    name: str
    parent: int | None
    fork: int | None
    created: str
    dropped: bool
    start: int = 0


class KeyProbe(NamedTuple):
    """A key lookup sent with BEGIN: ``key`` = (table id, key columns, values)."""

    key: tuple[int, tuple[str, ...], tuple[Any, ...]]
    sql: str
    params: list[Any]


@dataclass
class Txn:
    """The write transaction open on this connection."""

    bid: int
    fork: int | None
    message: str | None
    author: str | None
    now: str
    explicit: bool
    #: The commit id: allocated at the first change, or at BEGIN on an engine
    #: where a round trip costs more than a rolled-back commit row.
    seq: int | None = None
    #: Whether anything was written (only then does the transaction commit).
    changed: bool = False
    ddl: bool = False
    #: False: a failing statement fails the whole transaction (no savepoint per statement).
    savepoints: bool = True
    #: Why the transaction was rolled back early (a statement failed), else None.
    failed: str | None = None
    #: Keys looked up with BEGIN: (table id, key columns, values) -> (rid, vid) or None.
    known_keys: dict[tuple[int, tuple[str, ...], tuple[Any, ...]], tuple[int, int] | None] = field(
        default_factory=dict
    )


class Store:
    """Catalog access and caches over one backend connection."""

    def __init__(self, backend: Any, create: bool = True):
        self.backend = backend
        self.lock = threading.RLock()
        self.txn: Txn | None = None
        self.closed = False
        self._epoch = -1
        self._schema_rows: list[tuple[int, int, str, str | None]] | None = None
        self._fingerprint: bytes | None = None
        self._schemas: dict[Lineage, dict[str, TableSchema]] = {}
        self._lineages: dict[tuple[int, int | None], Lineage] = {}
        self._branches: dict[int, BranchInfo] = {}
        self.compiled: dict[tuple[Any, ...], Any] = {}
        # Valid only while no other connection has committed (see refresh):
        # the next free _vid per physical table and each branch's head commit.
        self.next_vids: dict[str, int] = {}
        self._heads: dict[int, int] = {}
        # In-memory copies of VECTOR columns, by (physical table, physical column).
        self.vector_caches: dict[tuple[str, str], Any] = {}
        self._open(create)

    # -- opening -------------------------------------------------------------------------

    def _open(self, create: bool) -> None:
        backend = self.backend
        try:
            # Emptiness is read before the catalog: another process creating
            # the store commits all its tables at once, so if loom_meta is
            # still missing after a non-empty read, something else owns it.
            empty = backend.is_empty()
            if not backend.has_table("loom_meta"):
                if empty and not create:
                    raise errors.OperationalError(f"no store at {backend.describe()}")
                if not empty:
                    raise errors.NotALoomStoreError(
                        f"{backend.describe()} is a database but not a loomdb store; it was left untouched"
                    )
                self._initialise()
            fmt = self._meta("format")
            if fmt is None:
                raise errors.NotALoomStoreError(
                    f"{backend.describe()} has no loomdb format record; it was left untouched"
                )
            if int(fmt) > FORMAT_VERSION:
                raise errors.StoreVersionError(
                    f"{backend.describe()} uses store format {fmt}, newer than this loomdb supports"
                    f" ({FORMAT_VERSION}); upgrade loomdb to open it"
                )
        except errors.Error:
            backend.close()
            raise
        self.refresh(force=True)

    def _initialise(self) -> None:
        backend = self.backend
        backend.prepare_new_store()
        backend.begin_write()
        try:
            if backend.has_table("loom_meta"):  # another process got there first
                backend.commit()
                return
            for statement in _CATALOG:
                for _ in backend.execute(backend.catalog_sql(statement)):
                    pass
            now = now_text()
            for key, value in (("format", str(FORMAT_VERSION)), ("epoch", "0"), ("created", now)):
                backend.execute("INSERT INTO loom_meta (key, value) VALUES (?, ?)", (key, value))
            # main is branch 1 and the first commit is 1: both are the first
            # value of a fresh key.
            backend.execute(
                "INSERT INTO loom_branches (name, parent, fork, created) VALUES ('main', NULL, NULL, ?)",
                (now,),
            )
            backend.execute(
                "INSERT INTO loom_commits (bid, parent, message, author, time)"
                " VALUES (1, NULL, 'create store', NULL, ?)",
                (now,),
            )
            backend.commit()
        except BaseException:
            backend.rollback()
            raise

    def read_epoch(self) -> str | None:
        """The schema epoch as stored (one statement)."""
        return self._meta("epoch")

    def _meta(self, key: str) -> str | None:
        row = next(self.backend.execute("SELECT value FROM loom_meta WHERE key = ?", (key,)), None)
        return None if row is None else row[0]

    # -- cache coherence -----------------------------------------------------------------

    def refresh(self, force: bool = False, epoch_text: str | None = None) -> bool:
        """Drop caches when another connection changed the schema (cheap when none did).

        ``epoch_text``: the schema epoch, when the caller has just read it.
        Returns whether the schema caches were dropped.
        """
        if not (epoch_text is not None or self.backend.others_committed() or force):
            return False
        self.next_vids.clear()
        self._heads.clear()
        epoch = int((epoch_text if epoch_text is not None else self._meta("epoch")) or 0)
        if epoch != self._epoch or force:
            self._epoch = epoch
            self.invalidate()
            return True
        return False

    def invalidate(self) -> None:
        self._schema_rows = None
        self._schemas.clear()
        self.compiled.clear()

    def bump_epoch(self) -> None:
        """Record a schema change (inside the open write transaction)."""
        self.backend.lock_catalog()
        self.backend.execute(
            "UPDATE loom_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'epoch'"
        )
        self._epoch = int(self._meta("epoch") or 0)
        self.invalidate()
        if self.txn is not None:
            self.txn.ddl = True

    # -- branches ------------------------------------------------------------------------

    def _row_to_branch(self, row: tuple[Any, ...]) -> BranchInfo:
        return BranchInfo(row[0], row[1], row[2], row[3], row[4], bool(row[5]), int(row[6]))

    def branch_by_name(self, name: str) -> BranchInfo:
        if not isinstance(name, str):
            raise errors.ProgrammingError(f"a branch name is a str, not {type(name).__name__}")
        row = next(
            self.backend.execute(
                f"SELECT {_BRANCH_COLUMNS} FROM loom_branches WHERE name = ? AND dropped = 0",
                (name,),
            ),
            None,
        )
        if row is None:
            raise errors.BranchNotFoundError(f"branch {name!r} does not exist")
        info = self._row_to_branch(row)
        self._branches[info.bid] = info
        return info

    def branch_by_id(self, bid: int, fresh: bool = False) -> BranchInfo:
        info = None if fresh else self._branches.get(bid)
        if info is None:
            row = next(
                self.backend.execute(
                    f"SELECT {_BRANCH_COLUMNS} FROM loom_branches WHERE bid = ?",
                    (bid,),
                ),
                None,
            )
            if row is None:
                raise errors.InternalError(f"branch id {bid} is missing from the catalog")
            info = self._row_to_branch(row)
            self._branches[bid] = info
        return info

    def list_branches(self) -> list[BranchInfo]:
        rows = self.backend.execute(
            f"SELECT {_BRANCH_COLUMNS} FROM loom_branches WHERE dropped = 0 ORDER BY bid"
        )
        return [self._row_to_branch(r) for r in rows]

    def lineage(self, bid: int, snapshot: int | None) -> Lineage:
        key = (bid, snapshot)
        lineage = self._lineages.get(key)
        if lineage is None:
            chain: list[tuple[int, int | None]] = []
            current: int | None = bid
            while current is not None:
                info = self.branch_by_id(current)
                chain.append((info.bid, info.fork))
                current = info.parent
            lineage = build_lineage(chain, snapshot)
            self._lineages[key] = lineage
        return lineage

    def head(self, lineage: Lineage) -> int:
        """The newest commit visible through ``lineage``."""
        if lineage.snapshot is not None:
            return lineage.snapshot
        last = self.last_commit(lineage.bid)
        if last is not None:
            return last
        fork = self.branch_by_id(lineage.bid).fork
        return int(fork) if fork is not None else 0

    def last_commit(self, bid: int) -> int | None:
        """The newest commit made on branch ``bid`` itself (None when it has none)."""
        if bid > 1:
            sql = "SELECT max(seq) FROM loom_commits WHERE bid > 1 AND bid = ?"
        else:
            sql = "SELECT seq FROM loom_commits WHERE bid = ? ORDER BY seq DESC LIMIT 1"
        row = next(self.backend.execute(sql, (bid,)), None)
        return None if row is None or row[0] is None else int(row[0])

    def validate_branch_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise errors.ProgrammingError(f"a branch name must be a non-empty str, not {name!r}")
        if len(name) > 200 or not _BRANCH_NAME.match(name) or "//" in name or name.endswith("/"):
            raise errors.ProgrammingError(
                f"invalid branch name {name!r}: use letters, digits and . _ - / (not leading, trailing or doubled /)"
            )
        return name

    def create_branch(self, name: str, parent: int, fork: int) -> BranchInfo:
        self.validate_branch_name(name)
        self.begin_catalog_write()
        try:
            exists = next(
                self.backend.execute("SELECT 1 FROM loom_branches WHERE name = ? AND dropped = 0", (name,)),
                None,
            )
            if exists is not None:
                raise errors.BranchExistsError(f"branch {name!r} already exists")
            parent_row = next(
                self.backend.execute("SELECT dropped FROM loom_branches WHERE bid = ?", (parent,)),
                None,
            )
            if parent_row is None or parent_row[0]:
                raise errors.BranchNotFoundError(
                    f"the branch to fork from ({self.branch_by_id(parent).name!r}) was dropped"
                )
            row = next(
                self.backend.execute(
                    "INSERT INTO loom_branches (name, parent, fork, start, created)"
                    " VALUES (?, ?, ?, (SELECT max(seq) FROM loom_commits), ?) RETURNING bid",
                    (name, parent, fork, now_text()),
                )
            )
            self.end_catalog_write(commit=True)
        except BaseException:
            self.end_catalog_write(commit=False)
            raise
        return self.branch_by_id(int(row[0]))

    def allocate_vid(self, physical: str) -> int:
        """A new version id of a physical table (inside the write transaction).

        For an engine with ordered versions (SQLite: one writer at a time):
        ids follow the table's maximum, so they grow with the commit order.
        """
        vid = self.next_vids.get(physical)
        if vid is None:
            vid = int(next(self.backend.execute(f'SELECT COALESCE(max(_vid), 0) + 1 FROM "{physical}"'))[0])
        self.next_vids[physical] = vid + 1
        return vid

    def drop_branch(self, name: str) -> None:
        info = self.branch_by_name(name)
        if info.bid == 1:
            raise errors.ProgrammingError("branch 'main' cannot be dropped")
        self.begin_catalog_write()
        try:
            self.backend.execute("UPDATE loom_branches SET dropped = 1 WHERE bid = ?", (info.bid,))
            self.end_catalog_write(commit=True)
            self._heads.pop(info.bid, None)
        except BaseException:
            self.end_catalog_write(commit=False)
            raise
        self._branches.pop(info.bid, None)

    def begin_catalog_write(self) -> None:
        """Catalog writes join an open transaction, or make their own."""
        self._catalog_own_txn = self.txn is None
        if self._catalog_own_txn:
            self.backend.begin_write()
        else:
            self.backend.lock_catalog()

    def end_catalog_write(self, commit: bool) -> None:
        if self._catalog_own_txn:
            if commit:
                self.backend.commit()
            else:
                self.backend.rollback()

    # -- commits -------------------------------------------------------------------------

    def commit_info(self, seq: int) -> tuple[int, int]:
        """``(seq, bid)`` of an existing commit; CommitNotFoundError otherwise."""
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise errors.ProgrammingError(f"a commit id is an int, not {type(seq).__name__}")
        row = next(self.backend.execute("SELECT seq, bid FROM loom_commits WHERE seq = ?", (seq,)), None)
        if row is None:
            raise errors.CommitNotFoundError(f"commit {seq} does not exist")
        return int(row[0]), int(row[1])

    def commit_at(self, lineage: Lineage, when: dt.datetime) -> int:
        """The newest commit of ``lineage`` at or before ``when``."""
        from .types import format_timestamp

        row = next(
            self.backend.execute(
                f"SELECT max(c.seq) FROM loom_commits AS c WHERE {commits_sql(lineage)} AND c.time <= ?",
                (format_timestamp(when),),
            )
        )
        if row[0] is None:
            raise errors.CommitNotFoundError(
                f"no commit at or before {when.isoformat()} on this branch's history"
            )
        return int(row[0])

    def log(self, lineage: Lineage, limit: int | None) -> list[tuple[Any, ...]]:
        sql = (
            "SELECT c.seq, b.name, c.message, c.author, c.time, c.parent, c.merge_parent"
            f" FROM loom_commits AS c JOIN loom_branches AS b ON b.bid = c.bid WHERE {commits_sql(lineage)}"
            " ORDER BY c.seq DESC"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (int(limit),)
        return [
            (seq, name, message, author, parse_timestamp(time), parent, merge)
            for seq, name, message, author, time, parent, merge in self.backend.execute(sql, params)
        ]

    # -- write transactions ----------------------------------------------------------------

    def begin(
        self,
        bid: int,
        fork: int | None,
        message: str | None,
        author: str | None,
        explicit: bool,
        lookups: Sequence[KeyProbe] = (),
    ) -> Txn:
        """Open the write transaction. ``lookups``: key lookups to run in the same
        round trip, after the lock (engines with ``eager_commit`` only); their
        answers land in ``txn.known_keys`` unless the schema changed meanwhile."""
        now = now_text()
        txn = Txn(bid, fork, message, author, now, explicit)
        self.backend.set_statement_time(now)
        if self.backend.eager_commit:
            # One round trip: take the branch lock, then write the commit row
            # (a transaction that changes nothing rolls it back) and read the
            # schema epoch, which may have changed before we got the lock.
            commit, *found = self.backend.begin_write(
                bid, probes=[self._commit_insert(txn, with_epoch=True), *((p.sql, p.params) for p in lookups)]
            )
            if commit is None:
                self.backend.rollback()
                raise errors.BranchNotFoundError(f"branch {self.branch_by_id(bid).name!r} was dropped")
            txn.seq = int(commit[0])
            self.txn = txn
            if not self.refresh(epoch_text=commit[1]):  # else the lookups used a stale schema
                txn.known_keys = {
                    p.key: None if row is None else (int(row[0]), int(row[1]))
                    for p, row in zip(lookups, found, strict=True)
                }
        else:
            self.backend.begin_write(bid)
            self.txn = txn
            # The schema may have changed between our last look and taking the lock.
            self.refresh()
        return txn

    def _commit_insert(self, txn: Txn, with_epoch: bool = False) -> tuple[str, tuple[Any, ...]]:
        """The INSERT of ``txn``'s commit row, returning its id (and, with
        ``with_epoch``, the schema epoch); it finds the branch head (or fork
        point) itself and inserts nothing when the branch was dropped."""
        epoch = f", ({EPOCH_SQL})" if with_epoch else ""
        return (
            "INSERT INTO loom_commits (bid, parent, message, author, time)"
            f" SELECT ?1, COALESCE({_HEAD_SQL[txn.bid == 1]}, ?2), ?3, ?4, ?5"
            " WHERE EXISTS (SELECT 1 FROM loom_branches WHERE bid = ?1 AND dropped = 0)"
            f" RETURNING seq{epoch}",
            (txn.bid, txn.fork, txn.message, txn.author, txn.now),
        )

    def ensure_commit(self, txn: Txn) -> int:
        """Record that ``txn`` changes something; returns its commit id (allocated
        now unless the engine allocated it at BEGIN)."""
        if txn.seq is None:
            parent = self._heads.get(txn.bid)
            if parent is not None:
                row = next(
                    self.backend.execute(
                        "INSERT INTO loom_commits (bid, parent, message, author, time) VALUES (?, ?, ?, ?, ?)"
                        " RETURNING seq",
                        (txn.bid, parent, txn.message, txn.author, txn.now),
                    )
                )
            else:
                # No cached head: another connection may have committed on, or
                # dropped, this branch since we last looked.
                row = next(self.backend.execute(*self._commit_insert(txn)), None)
                if row is None:
                    raise errors.BranchNotFoundError(
                        f"branch {self.branch_by_id(txn.bid).name!r} was dropped"
                    )
            txn.seq = int(row[0])
        txn.changed = True
        return txn.seq

    def savepoint(self) -> None:
        """Mark the start of one statement inside an explicit transaction."""
        txn = self.txn
        assert txn is not None
        self._saved = (txn.seq, txn.changed, txn.ddl)
        # Sent with the statement's first query (no round trip of its own).
        self.backend.defer("SAVEPOINT loom_statement")

    def release_savepoint(self) -> None:
        """End the current statement; writes the engine deferred reach the
        server now at the latest, so their errors belong to this statement."""
        if self.backend.has_deferred:
            self.backend.execute("RELEASE loom_statement")
        else:
            self.backend.defer("RELEASE loom_statement")

    def rollback_to_savepoint(self) -> None:
        """Undo the current statement; the transaction stays open."""
        txn = self.txn
        assert txn is not None
        self.backend.execute("ROLLBACK TO loom_statement")
        self.backend.execute("RELEASE loom_statement")
        seq, changed, ddl = self._saved
        txn.seq = seq  # None again when the undone statement wrote the commit row
        txn.changed = changed
        if txn.ddl and not ddl:
            self.invalidate()
        txn.ddl = ddl
        # Version ids handed out by the undone statement are free again.
        self.next_vids.clear()

    def fail(self, reason: str) -> None:
        """Roll the open transaction back now, because one of its statements failed;
        it stays open (and failed) until :meth:`finish`."""
        txn = self.txn
        assert txn is not None
        if txn.failed is None:
            txn.failed = reason
            self._roll_back(txn)

    def finish(self, commit: bool) -> None:
        """End the write transaction: commit when it changed something, else roll back."""
        txn, self.txn = self.txn, None
        if txn is None:
            return
        if txn.failed is not None:
            return  # rolled back already, by fail()
        if commit and txn.changed:
            try:
                self.backend.commit()
            except BaseException:
                self.backend.rollback()
                self.next_vids.clear()
                self._heads.clear()
                self.invalidate()
                raise
            self._heads[txn.bid] = txn.seq
        else:
            self._roll_back(txn)

    def _roll_back(self, txn: Txn) -> None:
        self.backend.rollback()
        if txn.seq is not None:
            self.next_vids.clear()
            self._heads.clear()
        if txn.ddl:
            self.invalidate()

    # -- schemas ---------------------------------------------------------------------------

    def _load_schema_rows(self) -> list[tuple[int, int, str, str | None]]:
        if self._schema_rows is None:
            self._schema_rows = [
                (int(b), int(s), n, d)
                for b, s, n, d in self.backend.execute(
                    "SELECT bid, seq, name, definition FROM loom_schema ORDER BY id"
                )
            ]
            self._fingerprint = None
        return self._schema_rows

    def schema_fingerprint(self) -> bytes:
        """A digest of the whole schema history (with the engine's name): two
        stores with the same fingerprint compile every statement alike, so
        compiled queries can be shared between them (see Database._compile)."""
        rows = self._load_schema_rows()
        if self._fingerprint is None:
            text = json.dumps([self.backend.name, rows], separators=(",", ":"))
            self._fingerprint = hashlib.blake2b(text.encode(), digest_size=16).digest()
        return self._fingerprint

    def schemas(self, lineage: Lineage) -> dict[str, TableSchema]:
        """The tables visible through ``lineage`` (newest schema entry per name)."""
        found = self._schemas.get(lineage)
        if found is not None:
            return found
        best: dict[str, tuple[int, str | None]] = {}
        for bid, seq, name, definition in self._load_schema_rows():
            if lineage.contains(bid, seq):
                previous = best.get(name)
                if previous is None or seq >= previous[0]:
                    best[name] = (seq, definition)
        found = {name: TableSchema.from_json(d) for name, (_, d) in best.items() if d is not None}
        self._schemas[lineage] = found
        return found

    def write_schema(self, txn: Txn, name: str, schema: TableSchema | None) -> None:
        seq = self.ensure_commit(txn)
        self.backend.execute(
            "INSERT INTO loom_schema (bid, seq, name, definition) VALUES (?, ?, ?, ?)",
            (txn.bid, seq, name, None if schema is None else schema.to_json()),
        )
        self.bump_epoch()

    def new_table_id(self) -> int:
        self.backend.lock_catalog()
        row = next(self.backend.execute("SELECT COALESCE(max(tid), 0) + 1 FROM loom_tables"))
        return int(row[0])

    def physical_columns(self, tid: int) -> dict[str, str]:
        row = next(self.backend.execute("SELECT columns FROM loom_tables WHERE tid = ?", (tid,)), None)
        return {} if row is None else json.loads(row[0])

    def record_physical(self, tid: int, physical: str, columns: dict[str, str]) -> None:
        self.backend.execute(
            "INSERT INTO loom_tables (tid, physical, columns) VALUES (?, ?, ?)"
            " ON CONFLICT (tid) DO UPDATE SET columns = excluded.columns",
            (tid, physical, json.dumps(columns)),
        )

    def next_serial(self, tid: int, phys: str) -> int:
        """The next value of a SERIAL column's counter.

        On an engine with native sequences (PostgreSQL) the counter is a
        sequence, so writers on different branches never wait for each other
        on it; elsewhere it is a row of ``loom_serial``.
        """
        if self.backend.native_serials:
            return self.backend.serial_next(f"loom_t{tid}", phys)
        row = next(
            self.backend.execute(
                "INSERT INTO loom_serial (tid, phys, value) VALUES (?, ?, 1)"
                " ON CONFLICT (tid, phys) DO UPDATE SET value = loom_serial.value + 1 RETURNING value",
                (tid, phys),
            )
        )
        return int(row[0])

    def bump_serial(self, tid: int, phys: str, value: int) -> None:
        """Keep a SERIAL counter ahead of an explicitly inserted value."""
        if self.backend.native_serials:
            self.backend.serial_bump(f"loom_t{tid}", phys, value)
            return
        self.backend.execute(
            "INSERT INTO loom_serial (tid, phys, value) VALUES (?, ?, ?)"
            " ON CONFLICT (tid, phys) DO UPDATE SET value = CASE WHEN excluded.value > loom_serial.value"
            " THEN excluded.value ELSE loom_serial.value END",
            (tid, phys, value),
        )

    def serial_value(self, tid: int, phys: str) -> int:
        """The last value a SERIAL counter handed out (0: none yet)."""
        if self.backend.native_serials:
            return self.backend.serial_value(f"loom_t{tid}", phys)
        row = next(
            self.backend.execute("SELECT value FROM loom_serial WHERE tid = ? AND phys = ?", (tid, phys)),
            None,
        )
        return 0 if row is None else int(row[0])

    def set_serial(self, tid: int, phys: str, value: int) -> None:
        """Make a SERIAL counter hand out ``value + 1`` next (a copy restores counters)."""
        if self.backend.native_serials:
            self.backend.serial_set(f"loom_t{tid}", phys, value)
            return
        self.backend.execute(
            "INSERT INTO loom_serial (tid, phys, value) VALUES (?, ?, ?)"
            " ON CONFLICT (tid, phys) DO UPDATE SET value = excluded.value",
            (tid, phys, value),
        )

    # -- views -----------------------------------------------------------------------------

    def view_sql(
        self,
        schema: TableSchema,
        lineage: Lineage,
        alias: str,
        hidden: bool,
        vid_param: int | None = None,
        rid_param: int | None = None,
    ) -> str:
        """The SQL of ``schema``'s rows visible through ``lineage``, columns under their user names."""
        cols = []
        for column in schema.columns:
            expr = f'_p."{column.phys}"'
            if column.added_seq is not None and column.fill is not None:
                expr = (
                    f"CASE WHEN _p._seq < {column.added_seq} THEN {_sql_literal(column.fill)} ELSE {expr} END"
                )
            cols.append(f'{expr} AS "{column.name}"')
        if hidden:
            cols += [
                "_p._vid AS _loom_vid",
                "_p._rid AS _loom_rid",
                "_p._bid AS _loom_bid",
                "_p._seq AS _loom_seq",
            ]
        where = visibility_sql(lineage, schema.physical, "_p", self.backend.plus_hints)
        if vid_param is not None:
            where += f" AND _p._vid IN {self.backend.id_list_sql(vid_param)}"
        if rid_param is not None:
            # A row's first version is found by its rowid (= _rid), later ones
            # through the partial (_rid, ...) index, whose condition is repeated.
            ids = self.backend.id_list_sql(rid_param)
            where += f" AND (_p._vid IN {ids} OR (_p._rid IN {ids} AND (_p._bid > 1 OR _p._vid <> _p._rid)))"
        return f'(SELECT {", ".join(cols)} FROM "{schema.physical}" AS _p WHERE {where})'

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.txn is not None:
                self.finish(commit=False)
            self.backend.close()


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    return "'" + str(value).replace("'", "''") + "'"


__all__ = ["INF_SEQ", "BranchInfo", "Compiled", "Store", "Txn"]
