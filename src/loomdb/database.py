"""The one public surface: a handle on a store, bound to a branch (and maybe a snapshot).

Handles are cheap. ``branch()``, ``checkout()`` and ``as_of()`` return new
handles that share the connection of the handle they came from. Closing the
handle ``connect`` returned closes that connection (and so every handle on
it); closing a derived handle closes only that handle. Use separate
``connect`` calls for independent connections, e.g. one per process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sqlglot import exp

from . import batch_insert, errors, executor, history, vectors
from .catalog import TableSchema
from .cursor import Cursor, Row, decoders, row_class
from .results import Branch, Change, Commit, Conflict, DiffStat, MergeResult
from .run import Run
from .sql.compile import Compiled, compile_query
from .sql.dialect import parse
from .sql.params import bind, normalize
from .store import EPOCH_SQL, KeyProbe, Store, Txn
from .types import ColumnType, adapt_param, parse_timestamp
from .versioning.lineage import Lineage

_READ_STATEMENTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
# Placeholder of the schema-epoch column a query carries on engines without a
# cheap change check (see Database._compile_probed).
_EPOCH_PROBE = "LOOM_EPOCH_PROBE"

# Compiled queries shared by every connection of the process, keyed by the
# store's schema fingerprint and the per-store cache key (see _compile).
_SHARED_COMPILED: dict[Any, Compiled] = {}
_SHARED_COMPILED_MAX = 4096


class Database:
    """A handle on a loomdb store, bound to one branch (see ``loomdb.connect``)."""

    def __init__(
        self, store: Store, bid: int, name: str, snapshot: int | None = None, *, owner: bool = False
    ):
        self._store = store
        self._owner = owner
        self._closed = False
        self._bid = bid
        self._name = name
        self._snapshot = snapshot
        self._lineage: Lineage = store.lineage(bid, snapshot)

    # -- identity ------------------------------------------------------------------------

    @property
    def branch_name(self) -> str:
        """The name of the branch this handle reads and writes."""
        return self._name

    @property
    def read_only(self) -> bool:
        """True for a snapshot handle from ``as_of``."""
        return self._snapshot is not None

    @property
    def head(self) -> int:
        """The newest commit this handle sees (its snapshot for ``as_of`` handles)."""
        with self._store.lock:
            self._check_open()
            return self._store.head(self._lineage)

    def __repr__(self) -> str:
        at = f" as of commit {self._snapshot}" if self._snapshot is not None else ""
        return f"<loomdb.Database {self._store.backend.describe()!r} branch={self._name!r}{at}>"

    # -- statements ------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Cursor:
        """Run one PostgreSQL-flavoured statement and return its cursor.

        A write that changes at least one row, or the schema, is one commit
        (unless a ``transaction()`` block is open). Raises ProgrammingError
        for malformed SQL or parameters, NotSupportedError for constructs
        outside loomdb's SQL, DataError/IntegrityError for values that do
        not fit; the store is unchanged by a failed statement.
        """
        if not isinstance(sql, str):
            raise errors.ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
        with self._store.lock:
            self._check_open()
            self._check_not_failed()
            text, plan = normalize(sql, params is not None)
            tree = parse(text)
            values = bind(plan, params)
            if isinstance(tree, _READ_STATEMENTS):
                if not self._store.backend.cheap_change_check:
                    return self._select_probed(text, tree, values)
                if self._store.txn is None:
                    # Inside a write transaction nobody else can commit on SQLite.
                    self._store.refresh()
                return self._select(text, tree, values)
            # A write refreshes its caches after taking the write lock.
            return self._write(text, tree, [values])

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Cursor:
        """Run one statement once per parameter set, all in one commit."""
        with self._store.lock:
            self._check_open()
            # No refresh here: _write refreshes after taking the write lock, and
            # inside an open transaction the lock keeps this branch's schema still.
            batches = list(seq_of_params)
            has_params = bool(batches)
            text, plan = normalize(sql, has_params)
            tree = parse(text)
            if isinstance(tree, _READ_STATEMENTS):
                raise errors.ProgrammingError("executemany() runs writes; use execute() for queries")
            return self._write(text, tree, [bind(plan, p) for p in batches])

    def execute_batch(
        self, statements: Sequence[tuple[str, Iterable[Sequence[Any] | Mapping[str, Any]]]]
    ) -> list[Cursor]:
        """Run write statements in order, each once per parameter set, as one commit;
        return one cursor per statement.

        ``statements``: ``(sql, seq_of_params)`` pairs, as ``executemany`` takes
        them. The result is that of ``executemany`` for each inside
        ``transaction(savepoints=False)``: a failing statement rolls the whole
        batch back and raises its error. Inside an open ``transaction()`` the
        batch joins it (and its rules). Outside one, on PostgreSQL, the key
        lookups of every INSERT travel with BEGIN, and the writes with COMMIT:
        two round trips for the whole batch where statement by statement costs
        one or more each. A batch of ``INSERT ... ON CONFLICT DO NOTHING``
        into tables with one key, or of INSERTs into tables without keys, of
        rows the client builds alone, is one round trip (see ``batch_insert``).
        """
        with self._store.lock:
            self._check_open()
            self._check_not_failed()
            parsed: list[tuple[str, exp.Expression, list[list[Any]]]] = []
            for sql, seq_of_params in statements:
                if not isinstance(sql, str):
                    raise errors.ProgrammingError(f"SQL must be a str, not {type(sql).__name__}")
                batches = list(seq_of_params)
                text, plan = normalize(sql, bool(batches))
                tree = parse(text)
                if isinstance(tree, _READ_STATEMENTS):
                    raise errors.ProgrammingError("execute_batch() runs writes; use execute() for queries")
                parsed.append((text, tree, [bind(plan, p) for p in batches]))
            store = self._store
            if store.txn is not None:
                return [self._write(text, tree, values) for text, tree, values in parsed]
            self._check_writable()
            done = batch_insert.run(self, parsed)
            if done is not None:
                return done
            probes = self._batch_probes(parsed) if store.backend.eager_commit else []
            txn = store.begin(self._bid, self._fork(), None, None, explicit=True, lookups=probes)
            txn.savepoints = False
            try:
                cursors = [self._write(text, tree, values) for text, tree, values in parsed]
            except BaseException:
                store.finish(commit=False)
                raise
            store.finish(commit=True)
            return cursors

    def _batch_probes(self, parsed: list[tuple[str, exp.Expression, list[list[Any]]]]) -> list[KeyProbe]:
        """The key lookups of a batch's INSERTs, one per row, for BEGIN to carry
        (at most ``_BATCH_PROBES``: later rows look their keys up as usual)."""
        probes: dict[Any, KeyProbe] = {}
        for text, tree, batches in parsed:
            if type(tree) is not exp.Insert:
                continue
            for values in batches:
                for probe in executor.key_probes(self, tree, values, text):
                    probes.setdefault(probe.key, probe)
                if len(probes) >= _BATCH_PROBES:
                    return list(probes.values())
        return list(probes.values())

    def explain(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> str:
        """The SQL loomdb runs for a query on this branch, and the engine's plan for it."""
        with self._store.lock:
            self._check_open()
            self._store.refresh()
            text, plan = normalize(sql, params is not None)
            tree = parse(text)
            values = bind(plan, params)
            if not isinstance(tree, _READ_STATEMENTS):
                raise errors.NotSupportedError("explain() takes a query (SELECT, VALUES or a set operation)")
            compiled = self._compile(tree, key=text)
            bound = self._adapt(compiled, values)
            plan_lines = self._store.backend.query_plan(compiled.sql, bound)
            return "SQL:\n  " + compiled.sql + "\nPLAN:\n" + "\n".join("  " + line for line in plan_lines)

    def commit(self) -> None:
        """PEP 249 ``commit``: a no-op, since every write outside ``transaction()`` commits itself."""

    def rollback(self) -> None:
        """PEP 249 ``rollback``: nothing is pending outside ``transaction()``, so a no-op."""

    @contextlib.contextmanager
    def transaction(
        self, message: str | None = None, author: str | None = None, *, savepoints: bool = True
    ) -> Iterator[Database]:
        """Make every statement in the block one commit; roll back if the block raises.

        The block holds the store's write lock throughout (other writers wait).
        ``savepoints``: with True (the default) a statement that fails inside
        the block is undone alone and the block may go on. With False, as in
        PostgreSQL itself, a failing statement fails the whole transaction: it
        is rolled back at once, and every later statement of the block, and the
        block's end, raise TransactionFailedError. Statements then cost no
        savepoint, and on PostgreSQL a write whose result nobody needs travels
        with the next statement instead of taking a round trip of its own.
        Nested blocks join the outer one (and its ``savepoints``).
        """
        store = self._store
        with store.lock:
            self._check_open()
            self._check_writable()
            if store.txn is not None:
                self._check_txn_branch(store.txn)
                yield self
                return
            txn = store.begin(self._bid, self._fork(), message, author, explicit=True)
            txn.savepoints = savepoints
            try:
                yield self
            except BaseException:
                store.finish(commit=False)
                raise
            if txn.failed is not None:
                store.finish(commit=False)
                raise _failed(txn)
            store.finish(commit=True)

    # -- branches and history -------------------------------------------------------------

    def branch(self, name: str, from_: str | int | dt.datetime | None = None) -> Database:
        """Create branch ``name`` in O(1) and return a handle bound to it.

        ``from_``: None (this handle's head or snapshot), a branch name, a
        commit id, or a datetime (the newest commit of this handle's
        lineage at or before it). ``self`` stays on its branch.
        """
        with self._store.lock:
            self._check_open()
            store = self._store
            if from_ is None:
                parent, fork = self._bid, store.head(self._lineage)
            elif isinstance(from_, str):
                source = store.branch_by_name(from_)
                parent, fork = source.bid, store.head(store.lineage(source.bid, None))
            elif isinstance(from_, dt.datetime):
                parent, fork = self._bid, store.commit_at(self._lineage, from_)
            elif isinstance(from_, int) and not isinstance(from_, bool):
                fork, parent = store.commit_info(from_)
            else:
                raise errors.ProgrammingError(
                    f"from_ must be a branch name, a commit id or a datetime, not {type(from_).__name__}"
                )
            info = store.create_branch(name, parent, fork)
            return Database(store, info.bid, info.name)

    def checkout(self, name: str) -> Database:
        """A handle on the existing branch ``name`` (BranchNotFoundError otherwise)."""
        with self._store.lock:
            self._check_open()
            info = self._store.branch_by_name(name)
            return Database(self._store, info.bid, info.name)

    def as_of(self, when: int | dt.datetime) -> Database:
        """A read-only handle on this branch's history at a commit id or a time."""
        with self._store.lock:
            self._check_open()
            store = self._store
            if isinstance(when, dt.datetime):
                seq = store.commit_at(self._lineage, when)
            elif isinstance(when, int) and not isinstance(when, bool):
                seq, bid = store.commit_info(when)
                if not self._lineage.contains(bid, seq):
                    raise errors.CommitNotFoundError(
                        f"commit {when} is not part of branch {self._name!r}'s history"
                    )
            else:
                raise errors.ProgrammingError(
                    f"as_of takes a commit id or a datetime, not {type(when).__name__}"
                )
            return Database(store, self._bid, self._name, snapshot=seq)

    def branches(self) -> list[Branch]:
        """Every live branch, oldest first."""
        with self._store.lock:
            self._check_open()
            store = self._store
            out = []
            infos = store.list_branches()
            names = {i.bid: i.name for i in infos}
            for info in infos:
                parent = None
                if info.parent is not None:
                    parent = names.get(info.parent) or store.branch_by_id(info.parent).name
                head = store.head(store.lineage(info.bid, None))
                out.append(Branch(info.name, parent, info.fork, head, parse_timestamp(info.created)))
            return out

    def drop_branch(self, name: str) -> None:
        """Remove branch ``name`` (not ``main``). Branches forked from it keep working."""
        with self._store.lock:
            self._check_open()
            if self._store.txn is not None:
                raise errors.ProgrammingError("cannot drop a branch inside a transaction")
            self._store.drop_branch(name)

    def log(self, branch: str | None = None, limit: int | None = None) -> list[Commit]:
        """Commits of ``branch`` (default: this handle's), newest first, through its lineage."""
        with self._store.lock:
            self._check_open()
            store = self._store
            if branch is None:
                lineage = self._lineage
            else:
                lineage = store.lineage(store.branch_by_name(branch).bid, None)
            if limit is not None and (not isinstance(limit, int) or limit < 0):
                raise errors.ProgrammingError(f"limit must be a non-negative int, not {limit!r}")
            return [
                Commit(
                    seq,
                    name,
                    message,
                    author,
                    time,
                    tuple(p for p in (parent, merge) if p is not None),
                )
                for seq, name, message, author, time, parent, merge in store.log(lineage, limit)
            ]

    # -- merge, diff, revert, reset --------------------------------------------------------

    def merge(
        self,
        source: str,
        into: str | None = None,
        on_conflict: str | Callable[[Conflict], dict[str, Any] | None] = "fail",
        message: str | None = None,
        author: str | None = None,
    ) -> MergeResult:
        """Merge branch ``source`` into ``into`` (default: this handle's branch), three-way.

        Raises MergeConflict (changing nothing) when rows clash and
        ``on_conflict`` is "fail"; see docs/api.md for the rules.
        """
        with self._store.lock:
            self._check_open()
            self._store.refresh()
            target = self if into is None else self.checkout(into)
            return history.merge(self, target, source, on_conflict, message, author)

    def diff(
        self, a: str | int | dt.datetime, b: str | int | dt.datetime, table: str | None = None
    ) -> Iterator[Change]:
        """The rows that differ between snapshots ``a`` and ``b`` (branch, commit id or datetime)."""
        with self._store.lock:
            self._check_open()
            self._store.refresh()
            return iter(list(history.diff(self, a, b, table)))

    def diff_stat(self, a: str | int | dt.datetime, b: str | int | dt.datetime) -> dict[str, DiffStat]:
        """Per table, how many rows ``b`` added, removed and modified compared with ``a``."""
        with self._store.lock:
            self._check_open()
            self._store.refresh()
            return history.diff_stat(self, a, b)

    def revert(self, commit: int, message: str | None = None, author: str | None = None) -> int | None:
        """Undo one commit with a new commit on this branch; returns its id (None: nothing to undo)."""
        with self._store.lock:
            self._check_open()
            self._store.refresh()
            return history.revert(self, commit, message, author)

    def reset(
        self,
        to: str | int | dt.datetime,
        branch: str | None = None,
        message: str | None = None,
        author: str | None = None,
    ) -> int | None:
        """Make ``branch`` (default: this handle's) equal to snapshot ``to``, as a new commit."""
        with self._store.lock:
            self._check_open()
            self._store.refresh()
            target = self if branch is None else self.checkout(branch)
            return history.reset(target, to, message, author)

    # -- agent runs ---------------------------------------------------------------------------

    def run(self, run_id: str, *, table: str = "iterations", dim: int | None = None) -> Run:
        """The agent run ``run_id`` on this handle's branch (see docs/run.md).

        ``table`` holds the steps (the brief's ``iterations`` schema with
        PRIMARY KEY (run_id, step), created on first use with VECTOR(``dim``),
        default 1536); an existing table is used as it is, its dimension
        checked against ``dim`` when given (DataError).
        """
        return Run(self, run_id, table=table, dim=dim)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close this handle. Closing the handle ``connect`` returned also closes the
        connection, and with it every handle derived from it; closing a derived
        handle (from branch, checkout or as_of) leaves the others open."""
        with self._store.lock:
            self._closed = True
            if self._owner:
                self._store.close()

    @property
    def closed(self) -> bool:
        return self._closed or self._store.closed

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals used by the executor -------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or self._store.closed:
            raise errors.InterfaceError("this loomdb handle is closed")

    def _check_not_failed(self) -> None:
        txn = self._store.txn
        if txn is not None and txn.failed is not None:
            raise _failed(txn)

    def _check_writable(self) -> None:
        if self._snapshot is not None:
            raise errors.ReadOnlyError(
                f"this handle is a read-only snapshot of {self._name!r} at commit {self._snapshot};"
                " use branch() to write from there"
            )

    def _check_txn_branch(self, txn: Txn) -> None:
        if txn.bid != self._bid:
            other = self._store.branch_by_id(txn.bid).name
            raise errors.ProgrammingError(
                f"a transaction on branch {other!r} is open on this connection; finish it before writing"
                f" to {self._name!r} (or use a separate connect())"
            )

    def _fork(self) -> int | None:
        return self._store.branch_by_id(self._bid).fork

    def _require_txn(self) -> Txn:
        txn = self._store.txn
        if txn is None:
            raise errors.InternalError("write outside a transaction")
        return txn

    def _schemas(self) -> dict[str, TableSchema]:
        return self._store.schemas(self._lineage)

    def _compile(
        self,
        tree: exp.Expression,
        *,
        key: Any,
        hidden_alias: str | None = None,
        hints: Mapping[int, ColumnType] | None = None,
        vid_param: int | None = None,
        vid_alias: str | None = None,
    ) -> Compiled:
        cache_key = (key, self._lineage, hidden_alias, vid_param, vid_alias)
        compiled = self._store.compiled.get(cache_key)
        if compiled is not None:
            return compiled
        # Another connection of this process with the same schema history may
        # have compiled it already (qualifying and typing with sqlglot costs
        # milliseconds, a fresh connection's first statements most of all).
        store, lineage = self._store, self._lineage
        shared_key = (store.schema_fingerprint(), cache_key)
        compiled = _SHARED_COMPILED.get(shared_key)
        if compiled is None:
            compiled = compile_query(
                tree,
                self._schemas(),
                lambda schema, alias, hidden, vids: store.view_sql(schema, lineage, alias, hidden, vids),
                dialect=store.backend.dialect,
                hidden_alias=hidden_alias,
                extra_param_types=hints,
                vid_param_probe=vid_param,
                vid_alias=vid_alias,
            )
            if len(_SHARED_COMPILED) >= _SHARED_COMPILED_MAX:
                _SHARED_COMPILED.clear()
            _SHARED_COMPILED[shared_key] = compiled
        store.compiled[cache_key] = compiled
        return compiled

    def _adapt(self, compiled: Compiled, values: Sequence[Any]) -> list[Any]:
        if len(values) < compiled.nparams:
            raise errors.ProgrammingError(
                f"the statement needs {compiled.nparams} parameter(s) but {len(values)} were given"
            )
        types = compiled.param_types
        return [adapt_param(v, types.get(i + 1)) for i, v in enumerate(values[: compiled.nparams])]

    def _run_compiled(self, compiled: Compiled, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        backend = self._store.backend
        bound = self._adapt(compiled, values)
        try:
            return list(backend.execute(compiled.sql, bound))
        except errors.Error:
            raise
        except Exception as exc:  # errors raised while stepping the statement
            raise backend.translate(exc) from None

    def _select(self, key: str, tree: exp.Expression, values: list[Any]) -> Cursor:
        if self._store.txn is None and self._store.backend.ordered_versions:
            plan = self._vector_plan(key, tree)
            if plan is not None:
                return self._vector_select(plan, values)
        compiled = self._compile(tree, key=key)
        if self._store.txn is None:
            self._store.backend.set_statement_time(None)
        rows = self._run_compiled(compiled, values)
        return self._cursor(compiled, rows)

    def _select_probed(self, key: str, tree: exp.Expression, values: list[Any]) -> Cursor:
        """A query on an engine without a cheap change check: the schema epoch
        travels with the query (as an extra last column of a plain SELECT, or
        as a second statement in the same round trip), and after a schema
        change (rare) the query is compiled and run again. Physical tables and
        columns are never dropped, so SQL compiled against the old schema
        still runs."""
        store = self._store
        try:
            compiled, carries_epoch = self._compile_probed(tree, key)
        except errors.ProgrammingError:
            store.refresh()  # the table or column may be new: look again
            return self._select(key, tree, values)
        bound = self._adapt(compiled, values)
        if carries_epoch:
            rows = self._run_compiled(compiled, values)
            epoch = rows[0][-1] if rows else store.read_epoch()
            rows = [row[:-1] for row in rows]
        else:
            first, rows = store.backend.execute_probed(EPOCH_SQL, compiled.sql, bound)
            epoch = None if first is None else first[0]
        if store.refresh(epoch_text=epoch):
            return self._select(key, tree, values)
        return self._cursor(compiled, rows)

    def _compile_probed(self, tree: exp.Expression, key: str) -> tuple[Compiled, bool]:
        """``tree`` compiled with the schema epoch as an extra last result column
        where that cannot change its meaning (a plain SELECT: positional ORDER BY
        and GROUP BY refer to earlier columns, and the value is one constant);
        the Compiled it returns describes the columns without it."""
        cache_key = ("probed", key, self._lineage)
        found = self._store.compiled.get(cache_key)
        if found is not None:
            return found
        if not isinstance(tree, exp.Select):
            found = (self._compile(tree, key=key), False)
        else:
            probe = tree.copy()
            probe.select(exp.Anonymous(this=_EPOCH_PROBE), copy=False)
            compiled = self._compile(probe, key=("probed-sql", key))
            marker = f"{_EPOCH_PROBE}()"
            if compiled.sql.count(marker) != 1:
                found = (self._compile(tree, key=key), False)
            else:
                found = (
                    dataclasses.replace(
                        compiled,
                        sql=compiled.sql.replace(marker, f"({EPOCH_SQL})"),
                        names=compiled.names[:-1],
                        types=compiled.types[:-1],
                    ),
                    True,
                )
        self._store.compiled[cache_key] = found
        return found

    def _vector_plan(self, key: str, tree: exp.Expression) -> vectors.VectorPlan | None:
        """A plan to answer ``ORDER BY vec <op> $n LIMIT k`` from the vector cache, if it applies."""
        cache_key = ("vector-plan", key, self._lineage)
        if cache_key in self._store.compiled:
            return self._store.compiled[cache_key]
        plan = None
        found = vectors.match_top_k(tree, self._schemas())
        if found is not None:
            schema, alias, column, op, param, limit, offset = found
            filter_sql = None
            where = tree.args.get("where")
            if where is not None:
                probe = exp.Select(expressions=[exp.Literal.number(1)])
                probe.set("from_", tree.args["from_"].copy())
                probe.set("where", where.copy())
                filter_sql = self._compile(probe, key=(key, "vector-filter"), hidden_alias=alias)
            fetch = tree.copy()
            for arg in ("where", "order", "limit", "offset"):
                fetch.set(arg, None)
            fetch_sql = self._compile(fetch, key=(key, "vector-fetch"), vid_alias=alias)
            plan = vectors.VectorPlan(
                schema.physical, column.phys, column.type.dim, op, param, limit, offset, filter_sql, fetch_sql
            )
        self._store.compiled[cache_key] = plan
        return plan

    def _vector_select(self, plan: vectors.VectorPlan, values: list[Any]) -> Cursor:
        store = self._store
        cache = store.vector_caches.get((plan.physical, plan.phys))
        if cache is None:
            cache = vectors.VectorCache(plan.physical, plan.phys, plan.dim)
            store.vector_caches[(plan.physical, plan.phys)] = cache
        if plan.query_param > len(values):
            raise errors.ProgrammingError(f"no value for parameter ${plan.query_param}")
        query = vectors.query_vector(values[plan.query_param - 1], plan.dim)
        store.backend.set_statement_time(None)
        # One read transaction: the cache refresh, the filter and the fetch
        # must see the same committed state, or a concurrent writer could
        # remove a chosen row between them.
        store.backend.begin_read()
        try:
            return self._vector_top(plan, cache, query, values)
        finally:
            store.backend.rollback()

    def _vector_top(
        self, plan: vectors.VectorPlan, cache: vectors.VectorCache, query: np.ndarray, values: list[Any]
    ) -> Cursor:
        store = self._store
        cache.refresh(store.backend)
        if plan.filter_sql is not None:
            vids = np.fromiter((r[0] for r in self._run_compiled(plan.filter_sql, values)), dtype=np.int64)
            candidates = cache.indexes_of(vids)
        else:
            candidates = cache.visible(self._lineage)
        top = cache.top(query, plan.op, plan.limit + plan.offset, candidates)[plan.offset :]
        fetch = plan.fetch_sql
        own = list(values[: fetch.nparams - 1])
        own += [None] * (fetch.nparams - 1 - len(own))
        rows = self._run_compiled(fetch, [*own, json.dumps(top.tolist())])
        rank = {int(vid): i for i, vid in enumerate(top)}
        rows.sort(key=lambda r: rank[r[-1]])
        return self._cursor(fetch, [r[:-1] for r in rows])

    def vector_cache_bytes(self) -> int:
        """Memory held by the in-memory vector copies of this connection."""
        return sum(c.nbytes for c in self._store.vector_caches.values())

    def _cursor(self, compiled: Compiled, rows: list[tuple[Any, ...]], rowcount: int = -1) -> Cursor:
        shape = self._store.compiled.get(("shape", id(compiled)))
        if shape is None or shape[0] is not compiled:
            shape = (compiled, row_class(compiled.names), decoders(compiled.types))
            self._store.compiled[("shape", id(compiled))] = shape
        return Cursor(
            iter(rows),
            compiled.names,
            compiled.types,
            rowcount=rowcount,
            row_type=shape[1],
            decode=shape[2],
        )

    def _write(self, key: str, tree: exp.Expression, batches: list[list[Any]]) -> Cursor:
        self._check_writable()
        store = self._store
        runner = _WRITERS.get(type(tree))
        if runner is None:
            raise _unsupported(tree)
        txn = store.txn
        own = txn is None
        if own and type(tree) is exp.Insert and store.backend.eager_commit:
            # On PostgreSQL an INSERT ... ON CONFLICT DO NOTHING (or into a table
            # without keys) of rows the client builds alone is one round trip.
            # (On SQLite one such statement gains nothing: measured slower.)
            done = batch_insert.run(self, [(key, tree, batches)])
            if done is not None:
                return done[0]
        if txn is None:
            # On an engine where BEGIN is a round trip, the key lookups of a
            # one-row INSERT ride with it (they run after the branch lock).
            probes = (
                executor.key_probes(self, tree, batches[0], key)
                if store.backend.eager_commit and len(batches) == 1 and type(tree) is exp.Insert
                else []
            )
            store.begin(self._bid, self._fork(), None, None, explicit=False, lookups=probes)
        else:
            self._check_txn_branch(txn)
            self._check_not_failed()
            if txn.known_keys and type(tree) is not exp.Insert:
                # Keys looked up with BEGIN are good until their table changes;
                # only an INSERT into it (which takes them) is tracked.
                txn.known_keys.clear()
            if txn.savepoints:
                # Inside transaction(), a failed statement must leave no trace even
                # when the caller catches the error and carries on.
                store.savepoint()
        try:
            total = 0
            result = None
            if len(batches) > 1 and type(tree) is exp.Insert:
                result = executor.run_insert_many(self, tree, batches, key)
                total = result.rowcount
            else:
                for values in batches:
                    result = runner(self, tree, values, key)
                    total += result.rowcount
            if txn is not None and txn.savepoints:
                # Writes the engine deferred reach the server here at the latest:
                # their errors belong to this statement.
                store.release_savepoint()
        except BaseException as exc:
            if txn is None:
                store.finish(commit=False)
            elif txn.savepoints:
                store.rollback_to_savepoint()
            else:
                store.fail(f"{type(exc).__name__}: {exc}")
            raise
        if own:
            store.finish(commit=True)
        if result is not None and result.returning is not None:
            return self._cursor(result.returning, result.returning_rows or [], rowcount=total)
        return Cursor(None, rowcount=total, row_type=Row)

    def _parse_fragment(self, sql: str) -> exp.Expression:
        return parse("SELECT " + sql).expressions[0]

    def _evaluate(
        self,
        expressions: list[exp.Expression],
        params: Sequence[Any],
        key: Any = None,
        hints: Mapping[int, ColumnType] | None = None,
    ) -> list[Any]:
        """Compute expressions (which may hold subqueries) on this branch; storage values."""
        select = exp.Select(expressions=[e.copy() for e in expressions])
        compiled = self._compile(
            select, key=("evaluate", key if key is not None else select.sql()), hints=hints
        )
        rows = self._run_compiled(compiled, params)
        return list(rows[0])

    def _lookup_key(
        self, schema: TableSchema, key: tuple[str, ...], values: tuple[Any, ...]
    ) -> tuple[int, int] | None:
        """``(row identity, version id)`` of the visible row whose ``key`` equals ``values``."""
        row = next(self._store.backend.execute(self._lookup_key_sql(schema, key), list(values)), None)
        return None if row is None else (int(row[0]), int(row[1]))

    def _lookup_key_sql(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        """The query ``_lookup_key`` runs (parameters: the key's values)."""
        cache_key = ("key", schema.tid, schema.physical, key, self._lineage, id(schema))
        sql = self._store.compiled.get(cache_key)
        if sql is None:
            view = self._store.view_sql(schema, self._lineage, "t", True)
            cond = " AND ".join(f't."{c}" = ?' for c in key)
            sql = f"SELECT t._loom_rid, t._loom_vid FROM {view} AS t WHERE {cond} LIMIT 1"
            self._store.compiled[cache_key] = sql
        return sql

    def _lookup_keys(
        self, schema: TableSchema, key: tuple[str, ...], wanted: Sequence[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], tuple[int, int]] | None:
        """``(row identity, version id)`` of the visible rows whose ``key`` is one of
        ``wanted``; None when a row found does not read back equal to what was asked
        (a type whose stored form differs), so absence cannot be told."""
        found: dict[tuple[Any, ...], tuple[int, int]] = {}
        per_query = max(1, _KEYS_PER_QUERY // len(key))
        for start in range(0, len(wanted), per_query):
            part = wanted[start : start + per_query]
            cache_key = ("keys", schema.tid, schema.physical, key, self._lineage, id(schema), len(part))
            sql = self._store.compiled.get(cache_key)
            if sql is None:  # the view's SQL is built only here, not on every executemany
                view = self._store.view_sql(schema, self._lineage, "t", True)
                names = ", ".join(f't."{c}"' for c in key)
                one = "(" + " AND ".join(f't."{c}" = ?' for c in key) + ")"
                where = " OR ".join([one] * len(part))
                sql = f"SELECT {names}, t._loom_rid, t._loom_vid FROM {view} AS t WHERE {where}"
                self._store.compiled[cache_key] = sql
            asked = set(part)
            for row in self._store.backend.execute(sql, [v for values in part for v in values]):
                values = tuple(row[: len(key)])
                if values not in asked:
                    return None
                found[values] = (int(row[-2]), int(row[-1]))
        return found

    def _first_duplicate(self, schema: TableSchema, cols: tuple[str, ...]) -> tuple[Any, ...] | None:
        view = self._store.view_sql(schema, self._lineage, "t", False)
        names = ", ".join(f't."{c}"' for c in cols)
        not_null = " AND ".join(f't."{c}" IS NOT NULL' for c in cols)
        sql = f"SELECT {names} FROM {view} AS t WHERE {not_null} GROUP BY {names} HAVING count(*) > 1 LIMIT 1"
        return next(self._store.backend.execute(sql), None)

    def _count_rows(self, schema: TableSchema) -> int:
        view = self._store.view_sql(schema, self._lineage, "t", False)
        return int(next(self._store.backend.execute(f"SELECT count(*) FROM {view} AS t"))[0])


def _run_create(db: Database, tree: exp.Create, values: list[Any], key: str) -> executor.WriteResult:
    kind = str(tree.args.get("kind") or "").upper()
    if kind == "TABLE":
        return executor.run_create_table(db, tree)
    if kind == "INDEX":
        return executor.run_create_index(db, tree)
    raise errors.NotSupportedError(f"CREATE {kind} is not supported by loomdb")


_KEYS_PER_QUERY = 200  # key values looked up by one query of an executemany
_BATCH_PROBES = 64  # key lookups an execute_batch sends with BEGIN

_WRITERS = {
    exp.Insert: executor.run_insert,
    exp.Update: executor.run_update,
    exp.Delete: executor.run_delete,
    exp.Create: _run_create,
    exp.Drop: lambda db, tree, values, key: executor.run_drop(db, tree),
    exp.Alter: lambda db, tree, values, key: executor.run_alter(db, tree),
    exp.TruncateTable: lambda db, tree, values, key: executor.run_truncate(db, tree, key),
}


# PostgreSQL statements sqlglot does not parse; loomdb names them instead of
# calling them syntax errors.
_POSTGRES_STATEMENTS = {
    "LISTEN",
    "NOTIFY",
    "UNLISTEN",
    "VACUUM",
    "ANALYZE",
    "COPY",
    "GRANT",
    "REVOKE",
    "LOCK",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "DO",
    "CALL",
    "CLUSTER",
    "REINDEX",
    "DISCARD",
    "CHECKPOINT",
    "COMMENT",
    "REFRESH",
    "IMPORT",
    "LOAD",
    "MOVE",
    "FETCH",
    "CLOSE",
    "DECLARE",
    "RESET",
    "SHOW",
    "SECURITY",
    "SAVEPOINT",
    "RELEASE",
}


def _failed(txn: Txn) -> errors.TransactionFailedError:
    return errors.TransactionFailedError(
        f"the transaction was rolled back when a statement of it failed ({txn.failed});"
        " leave the transaction() block and start again"
    )


def _unsupported(tree: exp.Expression) -> errors.Error:
    if isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
        return errors.NotSupportedError(
            "transaction statements (BEGIN/COMMIT/ROLLBACK) are not run as SQL; use `with db.transaction():`"
        )
    if isinstance(tree, exp.Command):
        return errors.NotSupportedError(f"{str(tree.this).upper()} statements are not supported by loomdb")
    if isinstance(tree, (exp.Alias, exp.Column)):
        word = tree.sql(dialect="postgres").split()[0].strip('"')
        if word.upper() in _POSTGRES_STATEMENTS:
            return errors.NotSupportedError(f"{word.upper()} statements are not supported by loomdb")
        return errors.ProgrammingError(f"syntax error at or near {word!r}")
    name = type(tree).__name__.upper()
    return errors.NotSupportedError(f"{name} statements are not supported by loomdb")
