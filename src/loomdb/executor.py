"""Writes: INSERT, UPDATE, DELETE and DDL as appends of row and schema versions.

Nothing here rewrites another branch's rows. An INSERT appends a version
with a new row identity; an UPDATE appends a version with the same identity
(superseding, on the same branch only, the previous version by setting its
``_end``); a DELETE appends a tombstone. Versions written earlier in the same
transaction on the same branch are changed in place, so a transaction that
touches one row many times leaves one version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from . import errors
from .catalog import Column, Index, TableSchema
from .sql.compile import Compiled, table_key
from .store import KeyProbe
from .types import ColumnType, to_storage
from .versioning.lineage import INF_SEQ

if TYPE_CHECKING:
    from .database import Database
    from .store import Txn

_NOW_FUNCTIONS = {
    "now",
    "current_timestamp",
    "transaction_timestamp",
    "localtimestamp",
    "statement_timestamp",
}


@dataclass
class WriteResult:
    rowcount: int
    returning: Compiled | None = None
    returning_rows: list[tuple[Any, ...]] | None = None


# ----------------------------------------------------------------------------- helpers


def _target(db: Database, table: exp.Table) -> TableSchema:
    if not isinstance(table, exp.Table):
        raise errors.NotSupportedError(f"cannot write to {table.sql(dialect='postgres')!r}")
    schema = db._schemas().get(table_key(table))
    if schema is None:
        raise errors.ProgrammingError(f'relation "{table_key(table)}" does not exist')
    return schema


def _column(schema: TableSchema, name: str) -> Column:
    column = schema.column(name)
    if column is None:
        raise errors.ProgrammingError(f'column "{name}" of relation "{schema.name}" does not exist')
    return column


def _ident(node: exp.Expression) -> str:
    ident = node.this if isinstance(node, exp.Column) else node
    if isinstance(ident, exp.Identifier):
        return ident.this if ident.quoted else ident.this.lower()
    return str(node.name).lower()


# Casts the column's own conversion already performs, so ``%s::jsonb`` into a
# JSONB column binds the parameter directly.
_PASSTHROUGH_CASTS = {
    exp.DataType.Type.JSON,
    exp.DataType.Type.JSONB,
    exp.DataType.Type.VECTOR,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.UUID,
}


def _unwrap(node: exp.Expression) -> exp.Expression:
    if (
        isinstance(node, exp.Cast)
        and node.to.this in _PASSTHROUGH_CASTS
        and isinstance(node.this, (exp.Parameter, exp.Literal, exp.Null))
    ):
        return node.this
    return node


def _simple_value(node: exp.Expression, params: Sequence[Any]) -> tuple[bool, Any]:
    """Evaluate a VALUES item in Python when it is a parameter or a literal."""
    node = _unwrap(node)
    if isinstance(node, exp.Parameter):
        return True, params[int(node.this.name) - 1]
    if isinstance(node, exp.Literal):
        return True, node.this
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Boolean):
        return True, bool(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return True, "-" + node.this.this
    return False, None


def _is_default(node: exp.Expression) -> bool:
    return isinstance(node, exp.Var) and node.name.upper() == "DEFAULT"


class _Defaults:
    """Produces each column's DEFAULT (storage form) for one statement."""

    def __init__(self, db: Database, schema: TableSchema, txn: Txn):
        self.db, self.schema, self.txn = db, schema, txn

    def value(self, column: Column) -> Any:
        if column.type.kind == "serial":
            return self.db._store.next_serial(self.schema.tid, column.phys)
        if column.default is None:
            return None
        kind, payload = _default_kind(self.db, column)
        if kind == "now":
            if column.type.kind == "timestamp":
                return self.txn.now  # already in storage form
            return to_storage(self.txn.now, column.type, column.name)
        if kind == "uuid":
            return to_storage(str(uuid.uuid4()), column.type, column.name)
        if kind == "const":
            return payload
        return to_storage(self.db._evaluate([payload], [])[0], column.type, column.name)


def _default_kind(db: Database, column: Column) -> tuple[str, Any]:
    """Classify a DEFAULT once: now(), a random uuid, a constant, or an expression."""
    cache_key = ("default", column.default, column.type)
    found = db._store.compiled.get(cache_key)
    if found is None:
        tree = db._parse_fragment(column.default or "NULL")
        if isinstance(tree, exp.CurrentTimestamp) or _func_name(tree) in _NOW_FUNCTIONS:
            found = ("now", None)
        elif isinstance(tree, exp.Uuid) or _func_name(tree) in (
            "gen_random_uuid",
            "uuid_generate_v4",
        ):
            found = ("uuid", None)
        else:
            ok, value = _simple_value(tree, ())
            found = ("const", to_storage(value, column.type, column.name)) if ok else ("expr", tree)
        db._store.compiled[cache_key] = found
    return found


def _func_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return ""


def _check_row(schema: TableSchema, row: dict[str, Any]) -> None:
    for column in schema.columns:
        if row.get(column.name) is None and (column.not_null or column.name in schema.primary_key):
            raise errors.IntegrityError(
                f'null value in column "{column.name}" of relation "{schema.name}" violates not-null constraint'
            )


class _KeyChecker:
    """Checks PRIMARY KEY / UNIQUE on the handle's branch view, including rows of this statement."""

    def __init__(self, db: Database, schema: TableSchema):
        self.db, self.schema = db, schema
        self.seen: list[dict[tuple[Any, ...], tuple[int, int] | None]] = [{} for _ in schema.keys]
        txn = db._store.txn
        if txn is not None and txn.known_keys:
            # Looked up with BEGIN (see key_probes), for the first statement on
            # this table: used once, so a later statement looks up what this
            # one changed.
            mine = [k for k in txn.known_keys if k[0] == schema.tid]
            for index, key in enumerate(schema.keys):
                for k in mine:
                    if k[1] == key:
                        self.seen[index][k[2]] = txn.known_keys[k]
            for k in mine:
                del txn.known_keys[k]

    def conflict(
        self, row: dict[str, Any], own_rid: int | None = None
    ) -> tuple[tuple[str, ...], int, int] | None:
        """``(key, row identity, version id)`` of the visible row that already has an equal key."""
        for index, key in enumerate(self.schema.keys):
            values = tuple(row.get(c) for c in key)
            if any(v is None for v in values):
                continue
            if values in self.seen[index]:
                found = self.seen[index][values]
            else:
                found = self.db._lookup_key(self.schema, key, values)
            if found is not None and found[0] != own_rid:
                return key, found[0], found[1]
        return None

    def prefetch(self, rows: list[dict[str, Any]]) -> None:
        """Look up the keys of ``rows`` now, in one query per key (in chunks),
        so that :meth:`conflict` finds them without a query per row."""
        for index, key in enumerate(self.schema.keys):
            wanted = {
                values
                for row in rows
                if (values := tuple(row.get(c) for c in key)) not in self.seen[index]
                and all(v is not None for v in values)
            }
            if len(wanted) < 2:
                continue
            found = self.db._lookup_keys(self.schema, key, sorted(wanted, key=repr))
            if found is None:
                continue  # each row looks its key up when it comes
            for values in wanted:
                self.seen[index][values] = found.get(values)

    def unknown(self, row: dict[str, Any]) -> None:
        """Forget what is known of ``row``'s keys: the next row with one of them
        looks it up (and finds ``row``, written blind)."""
        for index, key in enumerate(self.schema.keys):
            self.seen[index].pop(tuple(row.get(c) for c in key), None)

    def remember(self, row: dict[str, Any], rid: int, vid: int) -> None:
        for index, key in enumerate(self.schema.keys):
            values = tuple(row.get(c) for c in key)
            if all(v is not None for v in values):
                self.seen[index][values] = (rid, vid)

    def forget(self, row: dict[str, Any]) -> None:
        """The row no longer holds its key (it was updated away or deleted)."""
        for index, key in enumerate(self.schema.keys):
            values = tuple(row.get(c) for c in key)
            if all(v is not None for v in values):
                self.seen[index][values] = None

    def violation(self, key: tuple[str, ...], row: dict[str, Any]) -> errors.IntegrityError:
        values = ", ".join(repr(row.get(c)) for c in key)
        kind = "primary key" if key == self.schema.primary_key else "unique constraint"
        return errors.IntegrityError(
            f'duplicate key value violates {kind} of "{self.schema.name}": ({", ".join(key)})=({values})'
            f" already exists on branch {self.db.branch_name!r}"
        )


class _VersionWriter:
    """Appends versions of one table's rows on the handle's branch."""

    def __init__(self, db: Database, schema: TableSchema, txn: Txn):
        self.db, self.schema, self.txn = db, schema, txn
        self.backend = db._store.backend
        self.seq = db._store.ensure_commit(txn)
        self.bid = txn.bid
        self.store = db._store
        self.physical = schema.physical
        cache_key = ("writer-sql", schema.physical, tuple(c.phys for c in schema.columns))
        sql = self.store.compiled.get(cache_key)
        if sql is None:
            sql = _writer_sql(schema, self.backend)
            self.store.compiled[cache_key] = sql
        self._insert_sql, self._inplace_sql, self._end_sql, self._delete_sql, self._allocating_sql = sql

    def _values(self, row: dict[str, Any] | None) -> list[Any]:
        if row is None:
            return [None] * len(self.schema.columns)
        return [row.get(c.name) for c in self.schema.columns]

    def _append(self, rid: int | None, row: dict[str, Any] | None, need_vid: bool = True) -> int | None:
        """Append a version of row ``rid`` (None: a new row) on this branch; returns
        its _vid (None when not ``need_vid`` and the engine deferred the INSERT)."""
        deleted = 1 if row is None else 0
        if self._allocating_sql is not None:
            # The engine hands out the id inside the INSERT.
            params = [rid, self.bid, self.seq, INF_SEQ, deleted, *self._values(row)]
            if not need_vid:
                # Sent with the next statement (the COMMIT, say): no round trip of its own.
                self.backend.defer(self._allocating_sql, params)
                return None
            return int(next(self.backend.execute(self._allocating_sql, params))[0])
        vid = self.store.allocate_vid(self.physical)
        self.backend.execute(
            self._insert_sql,
            [vid, vid if rid is None else rid, self.bid, self.seq, INF_SEQ, deleted, *self._values(row)],
        )
        return vid

    def insert(self, row: dict[str, Any], rid: int | None = None) -> int:
        """Append a version; a new row identity when ``rid`` is None. Returns its _vid."""
        vid = self._append(rid, row)
        assert vid is not None
        return vid

    def insert_blind(self, row: dict[str, Any]) -> None:
        """Append a new row whose version id nobody needs (the engine may defer it)."""
        self._append(None, row, need_vid=False)

    def supersede(self, old: tuple[int, int, int, int], row: dict[str, Any] | None) -> int | None:
        """Write ``row`` (None: a tombstone) as the new version of the row whose current
        version is ``old`` = (vid, rid, bid, seq). Returns the new version's _vid."""
        vid, rid, bid, seq = old
        if bid == self.bid and seq == self.seq:
            # Written earlier in this transaction: change that version in place.
            if row is None and vid == rid:
                self.backend.execute(self._delete_sql, [vid])
                return None
            self.backend.execute(self._inplace_sql, [1 if row is None else 0, *self._values(row), vid])
            return vid
        new_vid = self._append(rid, row)
        assert new_vid is not None
        if bid == self.bid:
            self.backend.execute(self._end_sql, [self.seq, vid])
        return new_vid


def _writer_sql(schema: TableSchema, backend: Any) -> tuple[str, str, str, str, str | None]:
    table = schema.physical
    phys = ", ".join(f'"{c.phys}"' for c in schema.columns)
    marks = ", ".join("?" for _ in schema.columns)
    sep = ", " if schema.columns else ""
    sets = ", ".join(f'"{c.phys}" = ?' for c in schema.columns)
    return (
        f'INSERT INTO "{table}" (_vid, _rid, _bid, _seq, _end, _del{sep}{phys}) VALUES (?, ?, ?, ?, ?, ?{sep}{marks})',
        f'UPDATE "{table}" SET _del = ?{sep}{sets} WHERE _vid = ?',
        f'UPDATE "{table}" SET _end = ? WHERE _vid = ?',
        f'DELETE FROM "{table}" WHERE _vid = ?',
        backend.allocating_insert_sql(table, [(c.phys, c.type) for c in schema.columns]),
    )


# ----------------------------------------------------------------------------- INSERT


@dataclass
class _InsertPlan:
    """What one INSERT statement does, worked out once per statement text and branch.

    ``rows`` holds, per VALUES row, one source per target column: ``("p", i)``
    parameter $i, ``("v", text)`` a literal, ``("d",)`` the column default,
    ``("x", expr)`` an expression SQLite must compute.
    """

    schema: TableSchema
    table: exp.Table
    columns: list[Column]
    rows: list[list[tuple[Any, ...]]] | None
    query: exp.Query | None
    unlisted: list[Column]


def _insert_plan(db: Database, stmt: exp.Insert, key: str) -> _InsertPlan:
    cache_key = ("insert-plan", key, db._lineage)
    plan = db._store.compiled.get(cache_key)
    if plan is not None:
        return plan
    target = stmt.this
    if isinstance(target, exp.Schema):
        table = target.this
        names = [_ident(c) for c in target.expressions]
    else:
        table, names = target, None
    schema = _target(db, table)
    explicit = names is not None
    if names is None:
        names = schema.column_names
    for name in names:
        _column(schema, name)
    if len(set(names)) != len(names):
        raise errors.ProgrammingError(f"a column is named more than once in INSERT INTO {schema.name}")
    columns = [schema.column(n) for n in names]
    source = stmt.expression
    rows: list[list[tuple[Any, ...]]] | None = None
    query = None
    if stmt.args.get("default"):
        columns, rows = [], [[]]
    elif isinstance(source, exp.Values):
        rows = []
        for tup in source.expressions:
            items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
            if len(items) > len(names):
                raise errors.ProgrammingError("INSERT has more expressions than target columns")
            if len(items) < len(names) and explicit:
                raise errors.ProgrammingError("INSERT has more target columns than expressions")
            sources: list[tuple[Any, ...]] = []
            for item in items:
                inner = _unwrap(item)
                if _is_default(item):
                    sources.append(("d",))
                elif isinstance(inner, exp.Parameter):
                    sources.append(("p", int(inner.this.name) - 1))
                else:
                    ok, value = _simple_value(item, ())
                    sources.append(("v", value) if ok else ("x", item))
            sources += [("d",)] * (len(names) - len(items))
            rows.append(sources)
    elif isinstance(source, exp.Query):
        query = source
    else:
        raise errors.NotSupportedError(f"INSERT source {type(source).__name__} is not supported")
    listed = {c.name for c in columns}
    plan = _InsertPlan(
        schema, table, columns, rows, query, [c for c in schema.columns if c.name not in listed]
    )
    db._store.compiled[cache_key] = plan
    return plan


def _raw_rows(db: Database, plan: _InsertPlan, params: list[Any], key: str) -> list[list[Any]]:
    """Each row's values for the target columns (Python or storage values; _DEFAULT marks defaults)."""
    if plan.query is not None:
        compiled = db._compile(plan.query, key=(key, "source"))
        if len(compiled.names) != len(plan.columns):
            raise errors.ProgrammingError(
                f"INSERT has {len(plan.columns)} target columns but the query returns {len(compiled.names)}"
            )
        return [list(r) for r in db._run_compiled(compiled, params)]
    out = []
    assert plan.rows is not None
    for position, sources in enumerate(plan.rows):
        values: list[Any] = []
        pending: list[int] = []
        for i, source in enumerate(sources):
            tag = source[0]
            if tag == "p":
                values.append(params[source[1]])
            elif tag == "v":
                values.append(source[1])
            elif tag == "d":
                values.append(_DEFAULT)
            else:
                values.append(None)
                pending.append(i)
        if pending:
            hints = {}
            for i in pending:
                item = sources[i][1]
                for p in item.find_all(exp.Parameter):
                    if p.parent is item or (isinstance(p.parent, exp.Cast) and p.parent.parent is item):
                        hints[int(p.this.name)] = plan.columns[i].type
            computed = db._evaluate(
                [sources[i][1] for i in pending], params, key=(key, position), hints=hints
            )
            for i, value in zip(pending, computed, strict=True):
                values[i] = value
        out.append(values)
    return out


_DEFAULT = object()


def key_probes(db: Database, stmt: exp.Insert, params: list[Any], key: str) -> list[KeyProbe]:
    """The key lookups of a one-row ``INSERT ... VALUES`` whose key values are
    parameters or literals, for BEGIN to carry (``Store.begin``). Empty when a
    key takes a default or an expression, and whenever working them out fails:
    the statement then looks its keys up, and fails, on its usual path."""
    try:
        plan = _insert_plan(db, stmt, key)
        if plan.query is not None or plan.rows is None or len(plan.rows) != 1:
            return []
        sources = plan.rows[0]
        position = {c.name: i for i, c in enumerate(plan.columns)}
        probes = []
        for cols in plan.schema.keys:
            values = []
            for name in cols:
                i = position.get(name)
                if i is None or sources[i][0] not in ("p", "v"):
                    return []
                value = params[sources[i][1]] if sources[i][0] == "p" else sources[i][1]
                values.append(to_storage(value, plan.columns[i].type, name))
            if any(v is None for v in values):  # a NULL clashes with nothing
                continue
            sql = db._lookup_key_sql(plan.schema, cols)
            probes.append(KeyProbe((plan.schema.tid, cols, tuple(values)), sql, values))
        return probes
    except Exception:  # an optimisation only: the usual path reports what is wrong
        return []


def run_insert(db: Database, stmt: exp.Insert, params: list[Any], key: str) -> WriteResult:
    txn = db._require_txn()
    plan = _insert_plan(db, stmt, key)
    rows = _insert_rows(db, plan, params, key, _Defaults(db, plan.schema, txn))
    checker = _KeyChecker(db, plan.schema) if plan.schema.keys else None
    return _insert(db, stmt, plan, rows, params, key, txn, checker, None)


def run_insert_many(db: Database, stmt: exp.Insert, batches: list[list[Any]], key: str) -> WriteResult:
    """``run_insert`` once per parameter set (executemany), with the keys of every
    row looked up in one query (per key) rather than one per row.

    The result is that of running the sets one after another: a row meets
    the rows of earlier sets as it would. (An INSERT ... SELECT runs set by
    set: its query may read what an earlier set wrote.)
    """
    txn = db._require_txn()
    plan = _insert_plan(db, stmt, key)
    if plan.query is not None or len(batches) < 2:
        results = [run_insert(db, stmt, params, key) for params in batches]
        return _summed(results)
    defaults = _Defaults(db, plan.schema, txn)
    per_set = [_insert_rows(db, plan, params, key, defaults) for params in batches]
    checker = _KeyChecker(db, plan.schema) if plan.schema.keys else None
    if checker is not None:
        checker.prefetch([row for rows in per_set for row in rows])
    writer: list[_VersionWriter] = []  # one for the whole statement, made at its first write
    results = [
        _insert(db, stmt, plan, rows, params, key, txn, checker, writer)
        for rows, params in zip(per_set, batches, strict=True)
    ]
    return _summed(results)


def _summed(results: list[WriteResult]) -> WriteResult:
    """The result of a statement run once per parameter set: the last set's RETURNING,
    every set's rows counted."""
    if not results:
        return WriteResult(0)
    last = results[-1]
    return WriteResult(sum(r.rowcount for r in results), last.returning, last.returning_rows)


def _insert_rows(
    db: Database, plan: _InsertPlan, params: list[Any], key: str, defaults: _Defaults
) -> list[dict[str, Any]]:
    """The rows one run of the INSERT writes, in storage form, defaults filled in."""
    schema = plan.schema
    rows: list[dict[str, Any]] = []
    for values in _raw_rows(db, plan, params, key):
        row: dict[str, Any] = {}
        for column, value in zip(plan.columns, values, strict=True):
            if value is _DEFAULT:
                row[column.name] = defaults.value(column)
            else:
                stored = to_storage(value, column.type, column.name)
                row[column.name] = stored
                if column.type.kind == "serial" and stored is not None:
                    db._store.bump_serial(schema.tid, column.phys, int(stored))
        for column in plan.unlisted:
            row[column.name] = defaults.value(column)
        rows.append(row)
    return rows


def _insert(
    db: Database,
    stmt: exp.Insert,
    plan: _InsertPlan,
    rows: list[dict[str, Any]],
    params: list[Any],
    key: str,
    txn: Txn,
    checker: _KeyChecker | None,
    shared_writer: list[_VersionWriter] | None,
) -> WriteResult:
    """Write ``rows`` (one run of the INSERT), meeting keys through ``checker``;
    ``shared_writer`` keeps one version writer across the runs of an executemany."""
    schema = plan.schema
    conflict = stmt.args.get("conflict")
    # As PostgreSQL: a target no key matches is an error even when nothing clashes.
    target = _conflict_target(db, schema, conflict) if conflict is not None else None
    returning = stmt.args.get("returning") is not None
    writer: _VersionWriter | None = shared_writer[0] if shared_writer else None
    written: list[int] = []
    blind = 0  # rows appended without their version id (no key to track, no RETURNING)
    for row in rows:
        _check_row(schema, row)
        clash = checker.conflict(row) if checker is not None else None
        if clash is not None:
            assert checker is not None
            if conflict is None:
                raise checker.violation(clash[0], row)
            if target is not None and tuple(sorted(clash[0])) != target:
                raise checker.violation(clash[0], row)  # a key ON CONFLICT does not name
            if not conflict.args.get("expressions"):
                continue  # ON CONFLICT DO NOTHING
            if writer is None:
                writer = _new_writer(db, schema, txn, shared_writer)
            vid = _conflict_update(db, schema, stmt, conflict, row, clash[2], params, key, checker, writer)
            if vid is not None:
                written.append(vid)
            continue
        if writer is None:
            writer = _new_writer(db, schema, txn, shared_writer)
        if not returning:
            # Nobody needs the version id: the engine may send the INSERT with
            # the next statement. A later row of this statement with the same
            # key finds it through the branch view (deferred writes go first).
            writer.insert_blind(row)
            if checker is not None:
                checker.unknown(row)
            blind += 1
            continue
        vid = writer.insert(row)
        if checker is not None:
            checker.remember(row, vid, vid)
        written.append(vid)

    result = WriteResult(len(written) + blind)
    if stmt.args.get("returning") is not None:
        _returning(db, schema, plan.table, stmt.args["returning"], written, params, key, result)
    return result


def _new_writer(
    db: Database, schema: TableSchema, txn: Txn, shared: list[_VersionWriter] | None
) -> _VersionWriter:
    writer = _VersionWriter(db, schema, txn)
    if shared is not None:
        shared.append(writer)
    return writer


def _conflict_target(db: Database, schema: TableSchema, conflict: exp.OnConflict) -> tuple[str, ...] | None:
    """The key (sorted column names) an ON CONFLICT (columns) clause names, None
    when it names none; ProgrammingError when no PRIMARY KEY or UNIQUE key matches."""
    # Cached per parsed statement and schema (both kept alive by the caches).
    cache_key = ("conflict target", id(conflict), id(schema))
    found = db._store.compiled.get(cache_key)
    if found is not None and found[0] is conflict and found[1] is schema:
        return found[2]
    target = _match_conflict_target(schema, conflict)
    db._store.compiled[cache_key] = (conflict, schema, target)
    return target


def _match_conflict_target(schema: TableSchema, conflict: exp.OnConflict) -> tuple[str, ...] | None:
    targets = conflict.args.get("conflict_keys")
    if not targets:
        return None
    wanted = tuple(sorted(_ident(t.this if isinstance(t, exp.Ordered) else t) for t in targets))
    if wanted not in {tuple(sorted(k)) for k in schema.keys}:
        raise errors.ProgrammingError(
            f"there is no unique or exclusion constraint matching the ON CONFLICT specification ({', '.join(wanted)})"
        )
    return wanted


def _conflict_update(
    db: Database,
    schema: TableSchema,
    stmt: exp.Insert,
    conflict: exp.OnConflict,
    row: dict[str, Any],
    vid: int,
    params: list[Any],
    key: str,
    checker: _KeyChecker,
    writer: _VersionWriter,
) -> int | None:
    """ON CONFLICT DO UPDATE: update the existing row, EXCLUDED being the proposed one."""
    table = stmt.this.this if isinstance(stmt.this, exp.Schema) else stmt.this
    alias = table.alias_or_name
    sets = conflict.args.get("expressions") or []
    where = conflict.args.get("where")
    base = len(params)
    excluded_params: dict[str, int] = {}

    def replace_excluded(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table.lower() == "excluded":
            name = _ident(node)
            _column(schema, name)
            if name not in excluded_params:
                excluded_params[name] = base + len(excluded_params) + 1
            return exp.Parameter(this=exp.Literal.number(excluded_params[name]))
        return node

    assignments = [(eq.this, eq.expression.copy().transform(replace_excluded)) for eq in sets]
    condition = where.this.copy().transform(replace_excluded) if where is not None else None
    extra = [row[name] for name in sorted(excluded_params, key=excluded_params.get)]
    matched = _select_targets(
        db,
        schema,
        table.copy(),
        alias,
        assignments,
        condition,
        params + extra,
        (key, "conflict"),
        vid_filter=vid,
    )
    if not matched:
        return None
    return _apply_updates(db, schema, assignments, matched, checker, writer)[0]


# ----------------------------------------------------------------------------- UPDATE / DELETE


def _select_targets(
    db: Database,
    schema: TableSchema,
    table: exp.Table,
    alias: str,
    assignments: list[tuple[exp.Expression, exp.Expression]],
    condition: exp.Expression | None,
    params: list[Any],
    key: Any,
    *,
    from_: exp.From | None = None,
    joins: list[exp.Expression] | None = None,
    vid_filter: int | None = None,
) -> list[tuple[Any, ...]]:
    """Rows to change: (vid, rid, bid, seq, *new values, *old values) per visible match."""
    projections = [exp.alias_(value.copy(), f"_loom_set_{i}") for i, (_, value) in enumerate(assignments)]
    projections += [exp.column(c.name, table=alias, quoted=True) for c in schema.columns]
    select = exp.Select(expressions=projections or [exp.Literal.number(1)])
    select.set("from_", exp.From(this=table))
    extra_tables: list[exp.Expression] = []
    if from_ is not None:
        extra_tables.append(exp.Join(this=from_.this.copy()))
    for join in joins or []:
        extra_tables.append(join.copy())
    if extra_tables:
        select.set("joins", extra_tables)
    hints: dict[int, ColumnType] = {}
    for target, value in assignments:
        if isinstance(value, exp.Parameter):
            hints[int(value.this.name)] = _column(schema, _ident(target)).type
    vid_param = None
    if vid_filter is not None:
        vid_param = len(params) + 1
        params = [*params, vid_filter]
    if condition is not None:
        select.set("where", exp.Where(this=condition))
    compiled = db._compile(select, key=key, hidden_alias=alias, hints=hints, vid_param=vid_param)
    rows = db._run_compiled(compiled, params)
    seen: set[int] = set()
    out = []
    for row in rows:
        if row[0] not in seen:  # UPDATE ... FROM may match one row more than once
            seen.add(row[0])
            out.append(row)
    return out


def _apply_updates(
    db: Database,
    schema: TableSchema,
    assignments: list[tuple[exp.Expression, exp.Expression]],
    matched: list[tuple[Any, ...]],
    checker: _KeyChecker,
    writer: _VersionWriter,
) -> list[int]:
    targets = [_column(schema, _ident(t)) for t, _ in assignments]
    nset = len(assignments)
    written = []
    for found in matched:
        vid, rid, bid, seq = found[:4]
        new_values = found[4 : 4 + nset]
        old = dict(zip(schema.column_names, found[4 + nset :], strict=True))
        row = dict(old)
        for column, value in zip(targets, new_values, strict=True):
            row[column.name] = to_storage(value, column.type, column.name)
        _check_row(schema, row)
        if any(row.get(c) != old.get(c) for key in schema.keys for c in key):
            checker.forget(old)
            clash = checker.conflict(row, own_rid=rid)
            if clash is not None:
                raise checker.violation(clash[0], row)
        new_vid = writer.supersede((vid, rid, bid, seq), row)
        if new_vid is not None:
            checker.remember(row, rid, new_vid)
            written.append(new_vid)
    return written


def run_update(db: Database, stmt: exp.Update, params: list[Any], key: str) -> WriteResult:
    txn = db._require_txn()
    table = stmt.this
    schema = _target(db, table)
    alias = table.alias_or_name
    assignments = []
    for eq in stmt.expressions:
        if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column):
            raise errors.NotSupportedError(f"SET {eq.sql(dialect='postgres')} is not supported")
        _column(schema, _ident(eq.this))
        assignments.append((eq.this, eq.expression))
    where = stmt.args.get("where")
    matched = _select_targets(
        db,
        schema,
        table.copy(),
        alias,
        assignments,
        where.this.copy() if where is not None else None,
        params,
        key,
        from_=stmt.args.get("from_") or stmt.args.get("from"),
        joins=stmt.args.get("joins"),
    )
    result = WriteResult(len(matched))
    if not matched:
        if stmt.args.get("returning") is not None:
            _returning(db, schema, table, stmt.args["returning"], [], params, key, result)
        return result
    writer = _VersionWriter(db, schema, txn)
    written = _apply_updates(db, schema, assignments, matched, _KeyChecker(db, schema), writer)
    if stmt.args.get("returning") is not None:
        _returning(db, schema, table, stmt.args["returning"], written, params, key, result)
    return result


def run_delete(db: Database, stmt: exp.Delete, params: list[Any], key: str) -> WriteResult:
    txn = db._require_txn()
    table = stmt.this
    schema = _target(db, table)
    alias = table.alias_or_name
    where = stmt.args.get("where")
    using = stmt.args.get("using") or []
    joins = [exp.Join(this=t.copy()) for t in using]
    matched = _select_targets(
        db,
        schema,
        table.copy(),
        alias,
        [],
        where.this.copy() if where is not None else None,
        params,
        key,
        joins=joins,
    )
    result = WriteResult(len(matched))
    if stmt.args.get("returning") is not None:
        _returning(db, schema, table, stmt.args["returning"], [m[0] for m in matched], params, key, result)
    if matched:
        writer = _VersionWriter(db, schema, txn)
        for found in matched:
            writer.supersede(tuple(found[:4]), None)
    return result


def _returning(
    db: Database,
    schema: TableSchema,
    table: exp.Table,
    returning: exp.Returning,
    vids: list[int],
    params: list[Any],
    key: Any,
    result: WriteResult,
) -> None:
    alias = table.alias_or_name
    select = exp.Select(expressions=[e.copy() for e in returning.expressions])
    select.set("from_", exp.From(this=table.copy()))
    compiled = db._compile(select, key=(key, "returning"), vid_alias=alias)
    # The version ids travel as one JSON array in the last parameter slot.
    own = list(params[: compiled.nparams - 1])
    own += [None] * (compiled.nparams - 1 - len(own))
    rows = db._run_compiled(compiled, [*own, json.dumps(vids)])
    order = {vid: i for i, vid in enumerate(vids)}
    rows.sort(key=lambda r: order.get(r[-1], 0))
    result.returning = compiled
    result.returning_rows = [tuple(r[:-1]) for r in rows]


def run_truncate(db: Database, stmt: exp.TruncateTable, key: str) -> WriteResult:
    total = 0
    for table in stmt.expressions:
        delete = exp.Delete(this=table.copy())
        total += run_delete(db, delete, [], f"{key}:{table.name}").rowcount
    return WriteResult(total)


# ----------------------------------------------------------------------------- DDL


def _type_sql(kind: exp.DataType) -> str:
    text = kind.sql(dialect="postgres")
    return text


def _column_from_def(coldef: exp.ColumnDef, phys: str) -> tuple[Column, bool, bool]:
    """A Column from its definition, and whether it is a PRIMARY KEY / UNIQUE by itself."""
    name = _ident(coldef.this)
    kind = coldef.args.get("kind")
    if kind is None:
        raise errors.ProgrammingError(f'column "{name}" needs a type')
    ctype = ColumnType.parse(_type_sql(kind))
    not_null = primary = unique = False
    default: str | None = None
    for constraint in coldef.args.get("constraints") or []:
        k = constraint.args.get("kind")
        if isinstance(k, exp.NotNullColumnConstraint):
            not_null = not k.args.get("allow_null")
        elif isinstance(k, exp.PrimaryKeyColumnConstraint):
            primary = not_null = True
        elif isinstance(k, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(k, exp.DefaultColumnConstraint):
            default = k.this.sql(dialect="postgres")
        elif isinstance(k, exp.GeneratedAsIdentityColumnConstraint):
            ctype = ColumnType("serial", ctype.sql)
        else:
            raise errors.NotSupportedError(
                f'column constraint {constraint.sql(dialect="postgres")!r} on "{name}" is not supported'
            )
    return Column(name, ctype, phys, not_null, default), primary, unique


def _phys_name(name: str, taken: dict[str, str]) -> str:
    base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) or "col"
    if base.startswith("_"):
        base = "c" + base
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}__{n}"
        n += 1
    return candidate


def run_create_table(db: Database, stmt: exp.Create) -> WriteResult:
    txn = db._require_txn()
    store = db._store
    schema_node = stmt.this
    if not isinstance(schema_node, exp.Schema):
        raise errors.NotSupportedError(
            "CREATE TABLE ... AS SELECT is not supported; create the table, then INSERT ... SELECT"
        )
    props = stmt.args.get("properties")
    if props is not None:
        raise errors.NotSupportedError(f"table options {props.sql(dialect='postgres')!r} are not supported")
    table = schema_node.this
    name = table_key(table)
    if table.args.get("db") is not None and table.args["db"].name.lower() not in ("public", "main"):
        raise errors.NotSupportedError(
            f"schema-qualified table {table.sql()!r}: loomdb has one schema per store"
        )
    if name in db._schemas():
        if stmt.args.get("exists"):
            return WriteResult(0)
        raise errors.ProgrammingError(f'relation "{name}" already exists on branch {db.branch_name!r}')
    if name.startswith(("loom_", "sqlite_")):
        raise errors.ProgrammingError(
            f'table names starting with "loom_" or "sqlite_" are reserved: {name!r}'
        )
    columns: list[Column] = []
    taken: dict[str, str] = {}
    primary: tuple[str, ...] = ()
    uniques: list[tuple[str, ...]] = []
    for node in schema_node.expressions:
        if isinstance(node, exp.ColumnDef):
            phys = _phys_name(_ident(node.this), taken)
            column, is_pk, is_unique = _column_from_def(node, phys)
            if column.name in {c.name for c in columns}:
                raise errors.ProgrammingError(f'column "{column.name}" specified more than once')
            taken[phys] = column.type.affinity
            columns.append(column)
            if is_pk:
                if primary:
                    raise errors.ProgrammingError(f'multiple primary keys for table "{name}" are not allowed')
                primary = (column.name,)
            if is_unique:
                uniques.append((column.name,))
        elif isinstance(node, exp.PrimaryKey):
            if primary:
                raise errors.ProgrammingError(f'multiple primary keys for table "{name}" are not allowed')
            primary = tuple(_ident(c.this if isinstance(c, exp.Ordered) else c) for c in node.expressions)
        elif isinstance(node, exp.Constraint):
            for part in node.expressions:
                if isinstance(part, exp.PrimaryKey):
                    primary = tuple(
                        _ident(c.this if isinstance(c, exp.Ordered) else c) for c in part.expressions
                    )
                elif isinstance(part, exp.UniqueColumnConstraint):
                    uniques.append(_unique_columns(part))
                else:
                    raise errors.NotSupportedError(
                        f"table constraint {node.sql(dialect='postgres')!r} is not supported"
                    )
        elif isinstance(node, exp.UniqueColumnConstraint):
            uniques.append(_unique_columns(node))
        else:
            raise errors.NotSupportedError(f"table element {node.sql(dialect='postgres')!r} is not supported")
    if not columns:
        raise errors.ProgrammingError(f'table "{name}" needs at least one column')
    known = {c.name for c in columns}
    for key in ((primary,) if primary else ()) + tuple(uniques):
        for col in key:
            if col not in known:
                raise errors.ProgrammingError(f'column "{col}" named in key does not exist')
    columns = [Column(c.name, c.type, c.phys, c.not_null or c.name in primary, c.default) for c in columns]
    tid = store.new_table_id()
    physical = f"loom_t{tid}"
    store.ensure_commit(txn)
    store.backend.create_physical_table(physical, [(c.phys, c.type) for c in columns])
    store.record_physical(tid, physical, {c.phys: c.type.affinity for c in columns})
    indexes = []
    for position, key in enumerate(((primary,) if primary else ()) + tuple(uniques)):
        phys_index = f"{physical}__key{position}"
        store.backend.create_physical_index(
            physical, phys_index, [next(c.phys for c in columns if c.name == k) for k in key]
        )
        indexes.append(Index(f"{name}_key{position}", key, True, phys_index))
    schema = TableSchema(
        name, tid, physical, tuple(columns), primary, tuple(dict.fromkeys(uniques)), tuple(indexes)
    )
    store.write_schema(txn, name, schema)
    return WriteResult(0)


def _unique_columns(node: exp.UniqueColumnConstraint) -> tuple[str, ...]:
    target = node.this
    if isinstance(target, exp.Schema):
        return tuple(_ident(c) for c in target.expressions)
    raise errors.NotSupportedError(f"constraint {node.sql(dialect='postgres')!r} is not supported")


def run_drop(db: Database, stmt: exp.Drop) -> WriteResult:
    txn = db._require_txn()
    kind = str(stmt.args.get("kind") or "").upper()
    if kind == "TABLE":
        schemas = db._schemas()
        names = [table_key(t) for t in stmt.args.get("tables") or [stmt.this]]
        for name in names:
            if name not in schemas and not stmt.args.get("exists"):
                raise errors.ProgrammingError(f'table "{name}" does not exist')
        for name in names:
            if name in schemas:
                db._store.write_schema(txn, name, None)
        return WriteResult(0)
    if kind == "INDEX":
        names = [_ident(t.this) for t in stmt.args.get("tables") or [stmt.this]]
        for index_name in names:
            owner = next(
                (s for s in db._schemas().values() if any(i.name == index_name for i in s.indexes)),
                None,
            )
            if owner is None:
                if stmt.args.get("exists"):
                    continue
                raise errors.ProgrammingError(f'index "{index_name}" does not exist')
            index = next(i for i in owner.indexes if i.name == index_name)
            uniques = tuple(u for u in owner.uniques if not (index.unique and u == index.columns))
            indexes = tuple(i for i in owner.indexes if i.name != index_name)
            db._store.write_schema(txn, owner.name, owner.evolve(indexes=indexes, uniques=uniques))
        return WriteResult(0)
    raise errors.NotSupportedError(f"DROP {kind} is not supported")


# pgvector's approximate indexes. The embedded engine searches exactly from
# memory and records them without building anything; PostgreSQL builds them.
_VECTOR_INDEX_METHODS = ("hnsw", "ivfflat")
_VECTOR_OPCLASSES = {"vector_l2_ops", "vector_cosine_ops", "vector_ip_ops"}


def run_create_index(db: Database, stmt: exp.Create) -> WriteResult:
    txn = db._require_txn()
    index = stmt.this
    table = index.args.get("table")
    schema = _target(db, table)
    params = index.args.get("params")
    using = params.args.get("using") if params is not None else None
    method = using.name.lower() if using is not None else None
    if method not in (None, "btree", *_VECTOR_INDEX_METHODS):
        raise errors.NotSupportedError(f"index method {using.name!r} is not supported")
    if params.args.get("with_storage") and method not in _VECTOR_INDEX_METHODS:
        raise errors.NotSupportedError("index storage parameters (WITH ...) are not supported")
    cols: list[str] = []
    opclass = None
    for item in params.args.get("columns") or []:
        node = item.this if isinstance(item, exp.Ordered) else item
        if isinstance(node, exp.Opclass) and method in _VECTOR_INDEX_METHODS:
            opclass = node.expression.name.lower()
            node = node.this
        if not isinstance(node, exp.Column):
            raise errors.NotSupportedError(
                f"index on expression {node.sql(dialect='postgres')!r} is not supported"
            )
        cols.append(_column(schema, _ident(node)).name)
    if method in _VECTOR_INDEX_METHODS:
        if len(cols) != 1 or schema.column(cols[0]).type.kind != "vector":
            raise errors.ProgrammingError(f"a {method} index is built on one VECTOR column")
        if opclass not in _VECTOR_OPCLASSES:
            raise errors.NotSupportedError(
                f"a {method} index needs an operator class: one of {', '.join(sorted(_VECTOR_OPCLASSES))}"
            )
        if stmt.args.get("unique"):
            raise errors.ProgrammingError(f"a {method} index cannot be UNIQUE")
    name = _ident(index.this) if index.this is not None else f"{schema.name}_{'_'.join(cols)}_idx"
    if any(i.name == name for s in db._schemas().values() for i in s.indexes):
        if stmt.args.get("exists"):
            return WriteResult(0)
        raise errors.ProgrammingError(f'relation "{name}" already exists')
    unique = bool(stmt.args.get("unique"))
    if unique:
        dup = db._first_duplicate(schema, tuple(cols))
        if dup is not None:
            raise errors.IntegrityError(
                f'could not create unique index "{name}": key ({", ".join(cols)})=({", ".join(map(repr, dup))}) is duplicated'
            )
    phys_index = f"{schema.physical}__{_phys_name(name, {})}"
    vector_method = method if method in _VECTOR_INDEX_METHODS else None
    db._store.ensure_commit(txn)
    db._store.backend.create_physical_index(
        schema.physical, phys_index, [schema.column(c).phys for c in cols], method, opclass
    )
    new = schema.evolve(
        indexes=schema.indexes + (Index(name, tuple(cols), unique, phys_index, vector_method, opclass),),
        uniques=schema.uniques + ((tuple(cols),) if unique else ()),
    )
    db._store.write_schema(txn, schema.name, new)
    return WriteResult(0)


def run_alter(db: Database, stmt: exp.Alter) -> WriteResult:
    txn = db._require_txn()
    store = db._store
    table = stmt.this
    schemas = db._schemas()
    name = table_key(table)
    schema = schemas.get(name)
    if schema is None:
        if stmt.args.get("exists"):
            return WriteResult(0)
        raise errors.ProgrammingError(f'relation "{name}" does not exist')
    for action in stmt.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            col_name = _ident(action.this)
            if schema.column(col_name) is not None:
                if action.args.get("exists"):
                    continue
                raise errors.ProgrammingError(f'column "{col_name}" of relation "{name}" already exists')
            physical = store.physical_columns(schema.tid)
            phys = _phys_name(col_name, physical)
            column, is_pk, is_unique = _column_from_def(action, phys)
            if is_pk:
                raise errors.NotSupportedError("ALTER TABLE ADD COLUMN ... PRIMARY KEY is not supported")
            seq = store.ensure_commit(txn)
            fill = None
            if column.default is not None:
                fill = _Defaults(db, schema, txn).value(column)
            if column.not_null and fill is None and db._count_rows(schema) > 0:
                raise errors.IntegrityError(f'column "{col_name}" of relation "{name}" contains null values')
            store.backend.add_physical_column(schema.physical, phys, column.type)
            physical[phys] = column.type.affinity
            store.record_physical(schema.tid, schema.physical, physical)
            column = Column(column.name, column.type, phys, column.not_null, column.default, seq, fill)
            schema = schema.with_columns(schema.columns + (column,))
            if is_unique:
                schema = schema.evolve(uniques=schema.uniques + ((col_name,),))
        elif isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == "COLUMN":
            for target in action.args.get("tables") or []:
                col_name = _ident(target)
                if schema.column(col_name) is None:
                    if action.args.get("exists"):
                        continue
                    raise errors.ProgrammingError(f'column "{col_name}" of relation "{name}" does not exist')
                if any(col_name in key for key in schema.keys):
                    raise errors.NotSupportedError(f'cannot drop column "{col_name}": it is part of a key')
                schema = schema.with_columns(tuple(c for c in schema.columns if c.name != col_name)).evolve(
                    indexes=tuple(i for i in schema.indexes if col_name not in i.columns)
                )
        elif isinstance(action, exp.RenameColumn):
            old, new = _ident(action.this), _ident(action.args["to"])
            _column(schema, old)
            if schema.column(new) is not None:
                raise errors.ProgrammingError(f'column "{new}" of relation "{name}" already exists')
            cols = tuple(
                Column(new, c.type, c.phys, c.not_null, c.default, c.added_seq, c.fill)
                if c.name == old
                else c
                for c in schema.columns
            )

            def rename(key: tuple[str, ...], old: str = old, new: str = new) -> tuple[str, ...]:
                return tuple(new if k == old else k for k in key)

            schema = schema.with_columns(cols).evolve(
                primary_key=rename(schema.primary_key),
                uniques=tuple(rename(u) for u in schema.uniques),
                indexes=tuple(replace(i, columns=rename(i.columns)) for i in schema.indexes),
            )
        elif isinstance(action, exp.AlterRename):
            new_name = table_key(action.this)
            if new_name in schemas:
                raise errors.ProgrammingError(f'relation "{new_name}" already exists')
            store.write_schema(txn, name, None)
            schema = schema.evolve(name=new_name)
            name = new_name
        else:
            raise errors.NotSupportedError(
                f"ALTER TABLE action {action.sql(dialect='postgres')!r} is not supported"
            )
    store.write_schema(txn, name, schema)
    return WriteResult(0)
