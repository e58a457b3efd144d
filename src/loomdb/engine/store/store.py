"""One open store: the connection, the catalog (branches, commits, schemas), caches.

Every session derived from one ``connect`` shares one Store. The Store owns
the write transaction (:meth:`Store.write_transaction`, the one primitive
every write path goes through), so that one commit is written per write
statement (or per ``transaction()`` block), and all of loomdb's catalog SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ... import errors
from ...backend.protocol import (
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
from ...catalog import TableSchema
from ...layout import CATALOG_DDL, EPOCH_SQL, FORMAT_VERSION, MAIN_BID
from ...time_values import format_timestamp, now_text, parse_timestamp
from ...versioning.lineage import Lineage, build_lineage
from .. import views
from ..plans import PlanCache
from ..transaction import KeyProbe, Txn, WriteTransactions
from .serials import SerialCounters
from .upgrade import upgrade_format

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


class Store:
    """Catalog access and caches over one backend connection."""

    def __init__(self, backend: Backend, create: bool = True):
        self.backend = backend
        # The engine's optional abilities, found once (None: the engine lacks it).
        self.allocator: AllocatedVersions | None = version_allocator(backend)
        self.pipelined: PipelinedWrites | None = pipelined(backend)
        self.probed: ProbedReads | None = probed_reads(backend)
        self.serials: NativeSerials | None = native_serials(backend)
        self.counters = SerialCounters(backend, self.serials)
        self.lock = threading.RLock()
        self.transactions = WriteTransactions(self)
        self.closed = False
        self.epoch = -1
        self._schema_rows: list[tuple[int, int, str, str | None]] | None = None
        self._fingerprint: bytes | None = None
        self._schemas: dict[Lineage, dict[str, TableSchema]] = {}
        self._lineages: dict[tuple[int, int | None], Lineage] = {}
        self._branches: dict[int, BranchInfo] = {}
        self.plans = PlanCache()
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
            if int(fmt) < FORMAT_VERSION:
                upgrade_format(backend)
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
            for statement in CATALOG_DDL:
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
        if epoch != self.epoch or force:
            self.epoch = epoch
            self.invalidate()
            return True
        return False

    def invalidate(self) -> None:
        self._schema_rows = None
        self._schemas.clear()
        self.plans.clear()

    def bump_epoch(self) -> None:
        """Record a schema change (inside the open write transaction)."""
        self.backend.lock_catalog()
        self.backend.execute(
            "UPDATE loom_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'epoch'"
        )
        self.epoch = int(self._meta("epoch") or 0)
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
        """Write branch ``name`` forking from ``parent`` at commit ``fork`` (one catalog row)."""
        self.validate_branch_name(name)
        with self.transactions.catalog():
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
        """Mark branch ``name`` dropped (not main); its versions stay for its descendants."""
        info = self.branch_by_name(name)
        if info.bid == MAIN_BID:
            raise errors.ProgrammingError("branch 'main' cannot be dropped")
        with self.transactions.catalog():
            self.backend.execute("UPDATE loom_branches SET dropped = 1 WHERE bid = ?", (info.bid,))
        self._heads.pop(info.bid, None)
        self._branches.pop(info.bid, None)

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

    def commit_parent(self, seq: int) -> int | None:
        """The commit before ``seq`` on its branch (None: ``seq`` created the store)."""
        row = next(self.backend.execute("SELECT parent FROM loom_commits WHERE seq = ?", (seq,)))
        return None if row[0] is None else int(row[0])

    def changed_schema(self, seq: int) -> bool:
        """Whether commit ``seq`` changed a schema."""
        return (
            next(self.backend.execute("SELECT 1 FROM loom_schema WHERE seq = ? LIMIT 1", (seq,)), None)
            is not None
        )

    def last_merge_between(self, a: int, b: int) -> tuple[int, int, int] | None:
        """``(merge commit, branch merged into, merged branch's head)`` of the newest
        merge between branches ``a`` and ``b`` in either direction (None: none)."""
        row = next(
            self.backend.execute(
                "SELECT seq, bid, merge_parent FROM loom_commits"
                " WHERE (bid = ? AND merge_bid = ?) OR (bid = ? AND merge_bid = ?) ORDER BY seq DESC LIMIT 1",
                (b, a, a, b),
            ),
            None,
        )
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def drop_commit_sql(self, seq: str) -> str:
        """The DELETE of the commit row whose id is the SQL expression ``seq``."""
        return f"DELETE FROM loom_commits WHERE seq = {seq}"

    def record_merge(self, txn: Txn, source_head: int, source_bid: int) -> None:
        """Mark ``txn``'s commit as the merge of branch ``source_bid`` at ``source_head``."""
        self.backend.execute(
            "UPDATE loom_commits SET merge_parent = ?, merge_bid = ? WHERE seq = ?",
            (source_head, source_bid, txn.seq),
        )

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

    @property
    def txn(self) -> Txn | None:
        """The write transaction open on this connection (None: none is)."""
        return self.transactions.current

    def write_transaction(
        self,
        bid: int,
        fork: int | None,
        message: str | None = None,
        author: str | None = None,
        *,
        explicit: bool,
        savepoints: bool = True,
        lookups: Sequence[KeyProbe] = (),
    ) -> AbstractContextManager[Txn]:
        """The write transaction of branch ``bid`` as a context manager (see
        :meth:`WriteTransactions.write`): committed when the block ends, rolled
        back when it raises anything at all."""
        return self.transactions.write(
            bid, fork, message, author, explicit=explicit, savepoints=savepoints, lookups=lookups
        )

    def ensure_commit(self, txn: Txn) -> int:
        """Record that ``txn`` changes something; returns its commit id."""
        return self.transactions.ensure_commit(txn)

    def commit_row_sql(self, txn: Txn, with_epoch: bool = False) -> tuple[str, tuple[Any, ...]]:
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

    def insert_commit_row(self, txn: Txn) -> int | None:
        """Write ``txn``'s commit row and return its id (None: the branch was dropped).

        With the branch head cached (nobody else committed since) this is a
        plain INSERT; without, the INSERT finds the head itself."""
        parent = self._heads.get(txn.bid)
        if parent is None:
            row = next(self.backend.execute(*self.commit_row_sql(txn)), None)
        else:
            row = next(
                self.backend.execute(
                    "INSERT INTO loom_commits (bid, parent, message, author, time) VALUES (?, ?, ?, ?, ?)"
                    " RETURNING seq",
                    (txn.bid, parent, txn.message, txn.author, txn.now),
                )
            )
        return None if row is None else int(row[0])

    def committed(self, txn: Txn) -> None:
        """``txn`` committed: its commit is its branch's head now."""
        if txn.seq is not None:
            self._heads[txn.bid] = txn.seq

    def forget_writes(self, schema_changed: bool) -> None:
        """Drop what a rolled-back (or interrupted) transaction may have made
        stale: the next version ids, the branch heads and, after DDL, the schemas."""
        self.next_vids.clear()
        self._heads.clear()
        if schema_changed:
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
        """The SQL of ``schema``'s rows visible through ``lineage`` (see :func:`views.view_sql`)."""
        return views.view_sql(self.backend, schema, lineage, hidden, vid_param, rid_param)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # Closing the connection rolls back whatever it had open.
            self.transactions.current = None
            self.backend.close()


def commits_sql(lineage: Lineage, alias: str = "c") -> str:
    """A predicate over ``loom_commits AS alias`` keeping the commits of ``lineage``.

    >>> commits_sql(Lineage(((3, None), (1, 10))))
    '(c.bid = 3 OR (c.bid = 1 AND c.seq <= 10))'
    """
    parts = []
    for bid, limit in lineage.levels:
        if limit is None:
            parts.append(f"{alias}.bid = {bid}")
        else:
            parts.append(f"({alias}.bid = {bid} AND {alias}.seq <= {limit})")
    return "(" + " OR ".join(parts) + ")"
