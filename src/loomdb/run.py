"""The agent-loop Run API: one agent run as rows of a table, on one branch.

A :class:`Run` is a thin layer over :class:`~loomdb.Database`'s public
methods. Each plan-act-observe step is one row of the brief's ``iterations``
table (created on first use, with ``PRIMARY KEY (run_id, step)``), written by
one INSERT that is one commit; the run resumes from its newest step, forks
into a branch whose history ends at a step, searches its own steps by
embedding, and merges its branch into another. See docs/run.md.

>>> run = db.run("run-42")  # doctest: +SKIP
>>> run.persist(1, action="read issue", observation="...", state={"plan": []}, tokens_used=812)  # doctest: +SKIP
True
>>> run.resume().next_step  # doctest: +SKIP
2
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import errors
from .database import register_run_factory

if TYPE_CHECKING:
    from .database import Database
    from .results import Conflict, MergeResult

DEFAULT_DIM = 1536
FIRST_STEP = 1  # the step ``resume()`` proposes for a run with no steps yet

# The brief's columns that Run writes; any other column of the table is the user's.
MANAGED = ("run_id", "step", "action", "observation", "embedding", "state_snapshot", "tokens_used")

SCHEMA = """CREATE TABLE IF NOT EXISTS {table} (
    run_id TEXT NOT NULL,
    step INT NOT NULL,
    action TEXT,
    observation TEXT,
    embedding VECTOR({dim}),
    state_snapshot JSONB,
    tokens_used INT,
    created_at TIMESTAMP DEFAULT NOW(),
    PRIMARY KEY (run_id, step)
)"""

METRICS = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>"}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VECTOR_TYPE = re.compile(r"^VECTOR\((\d+)\)$", re.IGNORECASE)
_NOT_IN_BRANCH_NAME = re.compile(r"[^A-Za-z0-9_.\-/@+=:]+")
_DISTANCE = "_distance"  # result alias in similar(); unlikely to clash with a user column


class StepConflictError(errors.IntegrityError):
    """``persist`` met a step that is already stored with different content.

    Nothing was written: a run's history is never rewritten silently. Fork
    the run to take another path from an earlier step.
    """

    def __init__(self, run_id: str, step: int, branch: str, columns: tuple[str, ...]) -> None:
        self.run_id, self.step, self.branch, self.columns = run_id, step, branch, columns
        super().__init__(
            f"step {step} of run {run_id!r} is already stored on branch {branch!r} with different"
            f" {', '.join(columns)}; nothing was written (a retry must persist the same content;"
            " fork the run to take another path)"
        )


class StepNotFoundError(errors.ProgrammingError):
    """The run has no such step on the handle's branch."""


@dataclass(frozen=True, eq=False)
class Step:
    """One stored step of a run. ``state`` is ``state_snapshot``; ``extra`` holds the
    user's own columns; ``distance`` is set by ``similar()`` only."""

    run_id: str
    step: int
    action: str | None
    observation: str | None
    state: Any
    embedding: np.ndarray | None
    tokens_used: int | None
    created_at: dt.datetime | None
    extra: dict[str, Any] = field(default_factory=dict)
    distance: float | None = None


class Resume(NamedTuple):
    """Where a run picks up: the newest step's state and the step number to run next."""

    state: Any
    next_step: int
    last: Step | None


@dataclass(frozen=True)
class _Table:
    """What Run needs to know about the steps table on one handle."""

    name: str
    dim: int
    columns: tuple[str, ...]


# Table facts per handle (the schema is per branch): db.run() on a known handle costs nothing.
_TABLES: weakref.WeakKeyDictionary[Database, dict[str, _Table]] = weakref.WeakKeyDictionary()


class Run:
    """One agent run (``run_id``) on the branch of ``db``; see ``Database.run``."""

    def __init__(self, db: Database, run_id: str, *, table: str = "iterations", dim: int | None = None):
        if not isinstance(run_id, str) or not run_id:
            raise errors.ProgrammingError(f"run_id must be a non-empty str, not {run_id!r}")
        if not isinstance(table, str) or not _IDENTIFIER.match(table):
            raise errors.ProgrammingError(f"table must be a plain SQL identifier, not {table!r}")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise errors.ProgrammingError(f"dim must be a positive int, not {dim!r}")
        self._db = db
        self._run_id = run_id
        self._table = _table(db, table, dim)
        self._sql: dict[Any, str] = {}

    # -- identity ------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def db(self) -> Database:
        """The handle this run reads and writes through."""
        return self._db

    @property
    def branch(self) -> str:
        """The branch this run's steps are written to."""
        return self._db.branch_name

    @property
    def table(self) -> str:
        return self._table.name

    @property
    def dim(self) -> int:
        """The dimension of the table's embedding column."""
        return self._table.dim

    def __repr__(self) -> str:
        return f"<loomdb.Run {self._run_id!r} branch={self.branch!r} table={self.table!r}>"

    # -- writing -------------------------------------------------------------------------

    def persist(
        self,
        step: int,
        *,
        action: str | None = None,
        observation: str | None = None,
        state: Any = None,
        embedding: Any = None,
        tokens_used: int | None = None,
        **columns: Any,
    ) -> bool:
        """Store ``step`` of this run: one INSERT, one durable commit (or part of an
        open ``transaction()``). Extra keyword arguments fill the user's own columns.

        Idempotent on (run_id, step): persisting a step that is already stored with
        the same content writes nothing and returns False (a retry after an
        in-doubt commit is safe); otherwise returns True. The same step with other
        content raises StepConflictError and writes nothing. An unknown column
        raises ProgrammingError; a value that does not fit its column (say an
        embedding of the wrong dimension) raises DataError.
        """
        _check_step(step)
        names = tuple(columns)
        if any(name not in self._table.columns or name in MANAGED for name in names):
            self._check_columns(names)
        values = [self._run_id, step, action, observation, embedding, state, tokens_used, *columns.values()]
        cursor = self._db.execute(self._insert_sql(names), values)
        if cursor.rowcount:
            return True
        stored = self.get(step)
        if stored is None:  # the clash was on another UNIQUE key of the user's: loomdb said why
            raise errors.IntegrityError(f"step {step} of run {self._run_id!r} was not stored")
        given = dict(
            zip(MANAGED[2:], (action, observation, embedding, state, tokens_used), strict=True), **columns
        )
        differ = tuple(name for name, value in given.items() if not _same(_stored(stored, name), value))
        if differ:
            raise StepConflictError(self._run_id, step, self.branch, differ)
        return False

    # -- reading -------------------------------------------------------------------------

    def get(self, step: int) -> Step | None:
        """Step ``step`` of this run, or None when it is not stored."""
        _check_step(step)
        row = self._db.execute(self._select_sql("get"), [self._run_id, step]).fetchone()
        return None if row is None else _step(row)

    def last(self) -> Step | None:
        """The newest (highest-numbered) step of this run, or None for a run with no steps."""
        row = self._db.execute(self._select_sql("last"), [self._run_id]).fetchone()
        return None if row is None else _step(row)

    def resume(self) -> Resume:
        """The newest step's state and the next step number (``FIRST_STEP``, 1, and a
        None state for a run with no steps): ``restore(r.state); go on at r.next_step``."""
        last = self.last()
        if last is None:
            return Resume(None, FIRST_STEP, None)
        return Resume(last.state, last.step + 1, last)

    def steps(self, *, after: int | None = None, limit: int | None = None) -> list[Step]:
        """This run's steps in step order: those numbered above ``after`` (default: all),
        at most ``limit`` of them."""
        if after is not None:
            _check_step(after, "after")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise errors.ProgrammingError(f"limit must be a non-negative int, not {limit!r}")
        sql = self._select_sql("steps" if after is None else "steps-after")
        if limit is not None:
            sql += f" LIMIT {limit}"
        params = [self._run_id] if after is None else [self._run_id, after]
        return [_step(row) for row in self._db.execute(sql, params)]

    def similar(
        self, embedding: Any, k: int = 5, *, metric: str = "cosine", all_runs: bool = False
    ) -> list[Step]:
        """The ``k`` stored steps nearest to ``embedding``, nearest first, each with its
        ``distance`` (pgvector's: cosine distance, L2 distance, or negative inner
        product). Only this run's steps on this branch unless ``all_runs``; steps
        without an embedding are never returned. Exact top-k."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise errors.ProgrammingError(f"k must be a positive int, not {k!r}")
        op = METRICS.get(metric)
        if op is None:
            raise errors.ProgrammingError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
        # Checked here too: on PostgreSQL an empty selection would not look at the query vector.
        try:
            shape = np.shape(embedding)
        except (TypeError, ValueError):
            shape = None
        if shape != (self.dim,):
            raise errors.DataError(
                f"the query embedding must be a vector of {self.dim} numbers (table {self.table!r} stores"
                f" VECTOR({self.dim})), not {'a value of shape ' + str(shape) if shape else repr(embedding)[:60]}"
            )
        where = "" if all_runs else " WHERE run_id = %s"
        sql = (
            f"SELECT *, embedding {op} %s AS {_DISTANCE} FROM {self.table}{where}"
            f" ORDER BY embedding {op} %s LIMIT {k}"
        )
        params = [embedding, embedding] if all_runs else [embedding, self._run_id, embedding]
        rows = self._db.execute(sql, params).fetchall()
        # Rows without an embedding sort last (no distance): they only fill a short result.
        return [_step(row) for row in rows if row[_DISTANCE] is not None]

    # -- branches ------------------------------------------------------------------------

    def fork(self, at_step: int, name: str | None = None) -> Run:
        """A Run on a new branch whose history ends at step ``at_step``: the branch
        starts at the commit that made that step visible on this run's branch, so
        it holds the store as it was then (every table, every run). Default name:
        ``"{run_id}/fork-{at_step}"`` (then ``-2``, ``-3``, ... when taken); an
        explicit ``name`` that is taken raises BranchExistsError. StepNotFoundError
        when the step is not stored.

        If the commit that brought ``at_step`` also brought later steps of this run
        (a merge, or several steps written in one transaction), the fork deletes
        those later steps in one commit, so the fork's run always ends at ``at_step``.
        """
        if self.get(at_step) is None:
            raise StepNotFoundError(f"run {self._run_id!r} has no step {at_step} on branch {self.branch!r}")
        commit = self._commit_of(at_step)
        handle = self._new_branch(name, at_step, commit)
        _TABLES[handle] = {self.table: self._table}  # the same table: no need to look again
        if handle.execute(self._select_sql("later"), [self._run_id, at_step]).fetchone() is not None:
            with handle.transaction(message=f"fork run {self._run_id} at step {at_step}: drop later steps"):
                handle.execute(
                    f"DELETE FROM {self.table} WHERE run_id = %s AND step > %s", [self._run_id, at_step]
                )
        return Run(handle, self._run_id, table=self.table)

    def merge(
        self,
        into: str = "main",
        *,
        on_conflict: str | Callable[[Conflict], dict[str, Any] | None] = "fail",
        message: str | None = None,
        author: str | None = None,
    ) -> MergeResult:
        """Merge this run's branch into branch ``into`` with ``Database.merge`` (three-way,
        the whole branch: every table). Steps both sides stored under one number
        with different content conflict: MergeConflict (nothing changed) unless
        ``on_conflict`` is "ours", "theirs" or a callable."""
        return self._db.merge(self.branch, into=into, on_conflict=on_conflict, message=message, author=author)

    # -- internals -------------------------------------------------------------------------

    def _check_columns(self, names: tuple[str, ...]) -> None:
        for name in names:
            if name in MANAGED:
                hint = "state" if name == "state_snapshot" else name
                raise errors.ProgrammingError(
                    f"column {name!r} is filled by Run itself; pass it as persist's {hint!r} argument"
                    if name not in ("run_id", "step")
                    else f"column {name!r} is filled by Run itself"
                )
        if any(name not in self._table.columns for name in names):
            # The table may have gained columns since this handle first looked.
            _TABLES.get(self._db, {}).pop(self.table, None)
            self._table = _table(self._db, self.table, self._table.dim)
        unknown = [name for name in names if name not in self._table.columns]
        if unknown:
            own = [c for c in self._table.columns if c not in MANAGED]
            raise errors.ProgrammingError(
                f"table {self.table!r} has no column {unknown[0]!r}"
                f" (its own columns besides the Run API's: {', '.join(own) or 'none'})"
            )

    def _insert_sql(self, extra: tuple[str, ...]) -> str:
        sql = self._sql.get(extra)
        if sql is None:
            names = (*MANAGED, *extra)
            sql = (
                f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
                " ON CONFLICT (run_id, step) DO NOTHING"
            )
            self._sql[extra] = sql
        return sql

    def _select_sql(self, kind: str) -> str:
        base = f"SELECT * FROM {self.table} WHERE run_id = %s"
        return {
            "get": base + " AND step = %s",
            "last": base + " ORDER BY step DESC LIMIT 1",
            "steps": base + " ORDER BY step",
            "steps-after": base + " AND step > %s ORDER BY step",
            "later": f"SELECT 1 FROM {self.table} WHERE run_id = %s AND step > %s LIMIT 1",
        }[kind]

    def _present_at(self, commit: int, step: int) -> bool:
        try:
            row = self._db.as_of(commit).execute(self._select_sql("get"), [self._run_id, step]).fetchone()
        except errors.ProgrammingError:  # the table did not exist yet at that commit
            return False
        return row is not None

    def _commit_of(self, step: int) -> int:
        """The oldest commit of this branch's history at which ``step`` is visible
        (the step is visible at the head). A binary search over the log, which is
        read in growing windows: forks are usually at recent steps."""
        window = 64
        while True:
            commits = [c.id for c in self._db.log(limit=window)]
            if len(commits) < window or not self._present_at(commits[-1], step):
                break
            window *= 8
        lo, hi = 0, len(commits)  # visible at commits[lo]; not at commits[hi] (or hi is past the log)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._present_at(commits[mid], step):
                lo = mid
            else:
                hi = mid
        return commits[lo]

    def _new_branch(self, name: str | None, step: int, commit: int) -> Database:
        if name is not None:
            return self._db.branch(name, from_=commit)
        stem = _NOT_IN_BRANCH_NAME.sub("-", self._run_id).strip("/") or "run"
        stem = re.sub("/+", "/", stem).lstrip(".-/") or "run"
        base, n = f"{stem}/fork-{step}", 1
        while True:
            try:
                return self._db.branch(base if n == 1 else f"{base}-{n}", from_=commit)
            except errors.BranchExistsError:
                n += 1


def _check_step(step: Any, what: str = "step") -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise errors.ProgrammingError(f"{what} must be a non-negative int, not {step!r}")


def _table(db: Database, name: str, dim: int | None) -> _Table:
    """The steps table on ``db``'s branch, created when missing; checks its columns and
    that (run_id, step) is unique in it (adding a UNIQUE index when not)."""
    known = _TABLES.setdefault(db, {}).get(name)
    if known is None:
        known = _inspect(db, name, dim)
        _TABLES[db][name] = known
    if dim is not None and dim != known.dim:
        raise errors.DataError(
            f"table {name!r} stores embeddings as VECTOR({known.dim}), not of dimension {dim}"
        )
    return known


def _inspect(db: Database, name: str, dim: int | None) -> _Table:
    try:
        cursor = db.execute(f"SELECT * FROM {name} LIMIT 0")
        created = False
    except errors.ProgrammingError:  # no such table on this branch
        db.execute(SCHEMA.format(table=name, dim=dim or DEFAULT_DIM))
        cursor = db.execute(f"SELECT * FROM {name} LIMIT 0")
        created = True
    types = {d[0]: str(d[1]) for d in cursor.description or ()}
    missing = [c for c in MANAGED if c not in types]
    if missing:
        raise errors.ProgrammingError(
            f"table {name!r} lacks the Run API's column(s) {', '.join(missing)} (see docs/run.md for the schema)"
        )
    match = _VECTOR_TYPE.match(types["embedding"].replace(" ", ""))
    if match is None:
        raise errors.ProgrammingError(
            f"column 'embedding' of table {name!r} is {types['embedding']}, not VECTOR(n)"
        )
    if not created and not db.read_only and not _has_step_key(db, name):
        db.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {name}_run_id_step_key ON {name} (run_id, step)")
    return _Table(name, int(match.group(1)), tuple(types))


def _has_step_key(db: Database, name: str) -> bool:
    """Whether a PRIMARY KEY or UNIQUE key makes (run_id, step) unique in table
    ``name``: an INSERT of no rows names it as its ON CONFLICT target, which
    loomdb (like PostgreSQL) refuses when no key matches; nothing is written."""
    try:
        db.execute(
            f"INSERT INTO {name} (run_id, step) SELECT run_id, step FROM {name} WHERE 1 = 0"
            " ON CONFLICT (run_id, step) DO NOTHING"
        )
    except errors.ProgrammingError:
        return False
    return True


def _step(row: Any) -> Step:
    values = dict(row)
    distance = values.pop(_DISTANCE, None)
    extra = {k: v for k, v in values.items() if k not in MANAGED and k != "created_at"}
    return Step(
        values["run_id"],
        values["step"],
        values["action"],
        values["observation"],
        values["state_snapshot"],
        values["embedding"],
        values["tokens_used"],
        _utc(values.get("created_at")),
        extra,
        None if distance is None else float(distance),
    )


def _utc(value: Any) -> Any:
    """``created_at`` as an aware UTC datetime: a TIMESTAMP column's value is naive
    (as in PostgreSQL) and holds the UTC wall time of NOW()."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _stored(step: Step, column: str) -> Any:
    if column == "state_snapshot":
        return step.state
    if column in ("action", "observation", "embedding", "tokens_used"):
        return getattr(step, column)
    return step.extra.get(column, step.created_at if column == "created_at" else None)


def _same(stored: Any, given: Any) -> bool:
    """Whether ``given`` (what a caller passed) stores as ``stored`` (what loomdb returns)."""
    if stored is None or given is None:
        return stored is None and given is None
    if isinstance(stored, np.ndarray):
        try:
            other = np.asarray(given, dtype=np.float32)
        except (TypeError, ValueError):
            return False
        return bool(other.shape == stored.shape and np.array_equal(other, stored))
    if isinstance(stored, (dict, list)) or (isinstance(given, str) and not isinstance(stored, str)):
        try:
            return bool(_json_value(given) == stored)
        except (TypeError, ValueError):
            return False
    if isinstance(stored, dt.datetime) and isinstance(given, dt.datetime):
        # A TIMESTAMP comes back naive (its UTC wall time), a TIMESTAMPTZ aware: compare as UTC instants.
        stored, given = (v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v for v in (stored, given))
    if isinstance(stored, uuid.UUID) and isinstance(given, str):
        return str(stored) == given.lower()
    if isinstance(stored, Decimal) and isinstance(given, (str, float)):
        given = Decimal(str(given))
    return bool(stored == given)


def _json_value(value: Any) -> Any:
    """``value`` as it comes back from a JSON column (a str is JSON text, as in PostgreSQL)."""
    if isinstance(value, str):
        return json.loads(value)
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


register_run_factory(Run)

__all__ = ["DEFAULT_DIM", "FIRST_STEP", "Resume", "Run", "Step", "StepConflictError", "StepNotFoundError"]
