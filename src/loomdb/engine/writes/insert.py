"""INSERT (multi-row, INSERT ... SELECT, DEFAULT, ON CONFLICT DO NOTHING / DO UPDATE, RETURNING)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from ... import errors
from ...catalog import TableSchema
from ...types import ColumnType, to_storage
from ..plans import InsertPlan
from ..session import numeric_values
from ..transaction import KeyProbe, Txn
from .common import (
    Defaults,
    WriteResult,
    assigned,
    check_row,
    column_of,
    ident,
    identity_always,
    is_default,
    simple_value,
    stamp_cast_type,
    target_schema,
    unwrap,
)
from .keys import KeyChecker
from .update import apply_updates, returning_rows, select_targets
from .versions import VersionWriter

if TYPE_CHECKING:
    from ..session import Session

# ----------------------------------------------------------------------------- INSERT


def insert_plan(session: Session, stmt: exp.Insert, key: str) -> InsertPlan:
    """What the INSERT does (target columns, VALUES sources or query, unlisted columns),
    worked out once per statement and branch; ProgrammingError for unknown or repeated
    columns and rows longer (or, with listed columns, shorter) than the columns."""
    cache_key = (key, session.lineage)
    plan = session.store.plans.inserts.get(cache_key)
    if plan is not None:
        return plan
    target = stmt.this
    if isinstance(target, exp.Schema):
        table = target.this
        names = [ident(c) for c in target.expressions]
    else:
        table, names = target, None
    schema = target_schema(session, table)
    explicit = names is not None
    if names is None:
        names = schema.column_names
    columns = [column_of(schema, name) for name in names]
    if len(set(names)) != len(names):
        raise errors.ProgrammingError(
            f"a column is named more than once in INSERT INTO {schema.name}", sqlstate="42701"
        )
    source = stmt.expression
    rows: list[list[tuple[Any, ...]]] | None = None
    query: exp.Expression | None = None
    if stmt.args.get("default"):
        columns, rows = [], [[]]
    elif isinstance(source, exp.Values):
        rows = []
        for tup in source.expressions:
            items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
            if len(items) > len(names):
                raise errors.ProgrammingError(
                    "INSERT has more expressions than target columns", sqlstate="42601"
                )
            if len(items) < len(names) and explicit:
                raise errors.ProgrammingError(
                    "INSERT has more target columns than expressions", sqlstate="42601"
                )
            sources: list[tuple[Any, ...]] = []
            for item, column in zip(items, columns, strict=False):
                inner = unwrap(item, column.type)
                if is_default(item):
                    sources.append(("d",))
                elif isinstance(inner, exp.Parameter):
                    sources.append(("p", int(inner.this.name) - 1))
                else:
                    ok, value = simple_value(item, ())
                    sources.append(("v", value) if ok else ("x", item))
            sources += [("d",)] * (len(names) - len(items))
            rows.append(sources)
    elif isinstance(source, exp.Query) and isinstance(source, exp.Expression):
        # sqlglot's Query is a mixin; every concrete query (SELECT, UNION, ...) is also
        # the Expression that compiling takes.
        query = source
        plain = not (source.args.get("distinct") or source.args.get("order"))  # projections not referred to
        if isinstance(source, exp.Select) and plain and len(source.expressions) == len(columns):
            query = source.copy()
            query.set(
                "expressions",
                [_assigned_projection(p, c.type) for p, c in zip(query.expressions, columns, strict=True)],
            )
    else:
        raise errors.NotSupportedError(f"INSERT source {type(source).__name__} is not supported")
    listed = {c.name for c in columns}
    plan = InsertPlan(
        schema, table, columns, rows, query, [c for c in schema.columns if c.name not in listed]
    )
    session.store.plans.inserts[cache_key] = plan
    return plan


def _assigned_projection(projection: exp.Expression, ctype: ColumnType) -> exp.Expr:
    """A projection of INSERT ... SELECT as stored into a column of type ``ctype`` (see :func:`.common.assigned`)."""
    if isinstance(projection, exp.Alias):
        return exp.alias_(assigned(projection.this, ctype), projection.alias)
    return assigned(projection, ctype)


def raw_rows(session: Session, plan: InsertPlan, params: list[Any], key: str) -> list[list[Any]]:
    """Each row's values for the target columns (Python or storage values; DEFAULT marks defaults)."""
    if plan.query is not None:
        compiled = session.compile(plan.query, key=(key, "source"))
        if len(compiled.names) != len(plan.columns):
            raise errors.ProgrammingError(
                f"INSERT has {len(plan.columns)} target columns but the query returns {len(compiled.names)}",
                sqlstate="42601",
            )
        rows = session.run_compiled(compiled, params)
        if not any(t is not None and t.kind == "numeric" for t in compiled.types):
            return [list(r) for r in rows]
        return [numeric_values(compiled, list(r)) for r in rows]
    if plan.rows is None:
        raise errors.InternalError(
            f"the plan of an INSERT INTO {plan.schema.name} has neither a query nor rows"
        )
    out = []
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
                values.append(DEFAULT)
            else:
                values.append(None)
                pending.append(i)
        if pending:
            hints = {}
            for i in pending:
                item = sources[i][1]
                for p in item.find_all(exp.Parameter):
                    if p.parent is item or (isinstance(p.parent, exp.Cast) and p.parent.parent is item):
                        hints[int(p.this.name)] = stamp_cast_type(p.parent) or plan.columns[i].type
            computed = session.evaluate(
                [assigned(sources[i][1], plan.columns[i].type) for i in pending],
                params,
                key=(key, position),
                hints=hints,
            )
            for i, value in zip(pending, computed, strict=True):
                values[i] = value
        out.append(values)
    return out


DEFAULT = object()


def run_insert(session: Session, stmt: exp.Insert, params: list[Any], key: str) -> WriteResult:
    """INSERT with one parameter set."""
    txn = session.require_txn()
    plan = insert_plan(session, stmt, key)
    rows = insert_rows(session, plan, params, key, Defaults(session, plan.schema, txn))
    checker = KeyChecker(session, plan.schema) if plan.schema.keys else None
    return insert_rows_of(session, stmt, plan, rows, params, key, txn, checker, None)


def run_insert_many(session: Session, stmt: exp.Insert, batches: list[list[Any]], key: str) -> WriteResult:
    """``run_insert`` once per parameter set (executemany), with the keys of every
    row looked up in one query (per key) rather than one per row.

    The result is that of running the sets one after another: a row meets
    the rows of earlier sets as it would. (An INSERT ... SELECT runs set by
    set: its query may read what an earlier set wrote.)
    """
    txn = session.require_txn()
    plan = insert_plan(session, stmt, key)
    if plan.query is not None or len(batches) < 2:
        results = [run_insert(session, stmt, params, key) for params in batches]
        return _summed(results)
    defaults = Defaults(session, plan.schema, txn)
    per_set = [insert_rows(session, plan, params, key, defaults) for params in batches]
    checker = KeyChecker(session, plan.schema) if plan.schema.keys else None
    if checker is not None:
        checker.prefetch([row for rows in per_set for row in rows])
    writer: list[VersionWriter] = []  # one for the whole statement, made at its first write
    results = [
        insert_rows_of(session, stmt, plan, rows, params, key, txn, checker, writer)
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


def insert_rows(
    session: Session, plan: InsertPlan, params: list[Any], key: str, defaults: Defaults
) -> list[dict[str, Any]]:
    """The rows one run of the INSERT writes, in storage form, defaults filled in."""
    schema = plan.schema
    rows: list[dict[str, Any]] = []
    for values in raw_rows(session, plan, params, key):
        row: dict[str, Any] = {}
        for column, value in zip(plan.columns, values, strict=True):
            if value is DEFAULT:
                row[column.name] = defaults.value(column)
            else:
                if column.type.kind == "serial" and column.identity == "always":
                    raise identity_always(column)
                stored = to_storage(value, column.type, column.name)
                row[column.name] = stored
                # An identity's sequence, as PostgreSQL's, ignores explicit values.
                if column.type.kind == "serial" and stored is not None and column.identity is None:
                    session.store.counters.bump(schema.tid, column.phys, int(stored))
        for column in plan.unlisted:
            row[column.name] = defaults.value(column)
        rows.append(row)
    return rows


def insert_rows_of(
    session: Session,
    stmt: exp.Insert,
    plan: InsertPlan,
    rows: list[dict[str, Any]],
    params: list[Any],
    key: str,
    txn: Txn,
    checker: KeyChecker | None,
    shared_writer: list[VersionWriter] | None,
) -> WriteResult:
    """Write ``rows`` (one run of the INSERT), meeting keys through ``checker``;
    ``shared_writer`` keeps one version writer across the runs of an executemany."""
    schema = plan.schema
    conflict = stmt.args.get("conflict")
    # As PostgreSQL: a target no key matches is an error even when nothing clashes.
    target = conflict_target(session, schema, conflict) if conflict is not None else None
    returning = stmt.args.get("returning") is not None
    writer: VersionWriter | None = shared_writer[0] if shared_writer else None
    written: list[int] = []
    blind = 0  # rows appended without their version id (no key to track, no RETURNING)
    for row in rows:
        check_row(schema, row)
        if checker is not None and (clash := checker.conflict(row)) is not None:
            if conflict is None:
                raise checker.violation(clash[0], row)
            if target is not None and tuple(sorted(clash[0])) != target:
                raise checker.violation(clash[0], row)  # a key ON CONFLICT does not name
            if not conflict.args.get("expressions"):
                continue  # ON CONFLICT DO NOTHING
            if writer is None:
                writer = new_writer(session, schema, txn, shared_writer)
            vid = _conflict_update(
                session, schema, stmt, conflict, row, clash[2], params, key, checker, writer
            )
            if vid is not None:
                written.append(vid)
            continue
        if writer is None:
            writer = new_writer(session, schema, txn, shared_writer)
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
        returning_rows(session, schema, plan.table, stmt.args["returning"], written, params, key, result)
    return result


def new_writer(
    session: Session, schema: TableSchema, txn: Txn, shared: list[VersionWriter] | None
) -> VersionWriter:
    """A version writer for the statement, kept in ``shared`` (when given) for its later runs."""
    writer = VersionWriter(session, schema, txn)
    if shared is not None:
        shared.append(writer)
    return writer


def conflict_target(
    session: Session, schema: TableSchema, conflict: exp.OnConflict
) -> tuple[str, ...] | None:
    """The key (sorted column names) an ON CONFLICT (columns) clause names, None
    when it names none; ProgrammingError when no PRIMARY KEY or UNIQUE key matches."""
    # Cached per parsed statement and schema (both kept alive by the caches).
    cache_key = (id(conflict), id(schema))
    found = session.store.plans.conflict_targets.get(cache_key)
    if found is not None and found[0] is conflict and found[1] is schema:
        return found[2]
    target = _match_conflict_target(schema, conflict)
    session.store.plans.conflict_targets[cache_key] = (conflict, schema, target)
    return target


def _match_conflict_target(schema: TableSchema, conflict: exp.OnConflict) -> tuple[str, ...] | None:
    """The sorted columns of the key an ON CONFLICT (...) names (None: it names
    none); ProgrammingError when no PRIMARY KEY or UNIQUE key has exactly those columns."""
    targets = conflict.args.get("conflict_keys")
    if not targets:
        return None
    wanted = tuple(sorted(ident(t.this if isinstance(t, exp.Ordered) else t) for t in targets))
    if wanted not in {tuple(sorted(k)) for k in schema.keys}:
        raise errors.ProgrammingError(
            f"there is no unique or exclusion constraint matching the ON CONFLICT specification ({', '.join(wanted)})",
            sqlstate="42P10",
        )
    return wanted


def _conflict_update(
    session: Session,
    schema: TableSchema,
    stmt: exp.Insert,
    conflict: exp.OnConflict,
    row: dict[str, Any],
    vid: int,
    params: list[Any],
    key: str,
    checker: KeyChecker,
    writer: VersionWriter,
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
            name = ident(node)
            column_of(schema, name)
            if name not in excluded_params:
                excluded_params[name] = base + len(excluded_params) + 1
            return exp.Parameter(this=exp.Literal.number(excluded_params[name]))
        return node

    assignments = [(eq.this, eq.expression.copy().transform(replace_excluded)) for eq in sets]
    condition = where.this.copy().transform(replace_excluded) if where is not None else None
    extra = [row[name] for name in sorted(excluded_params, key=excluded_params.__getitem__)]
    matched = select_targets(
        session,
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
    return apply_updates(session, schema, assignments, matched, checker, writer)[0]


def key_probes(session: Session, stmt: exp.Insert, params: list[Any], key: str) -> list[KeyProbe]:
    """The key lookups of a one-row ``INSERT ... VALUES`` whose key values are
    parameters or literals, for BEGIN to carry (``Store.begin``). Empty when a
    key takes a default or an expression, and whenever working them out fails:
    the statement then looks its keys up, and fails, on its usual path."""
    try:
        plan = insert_plan(session, stmt, key)
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
            sql = session.lookup_key_sql(plan.schema, cols)
            probes.append(KeyProbe((plan.schema.tid, cols, tuple(values)), sql, values))
        return probes
    except Exception:  # an optimisation only: the usual path reports what is wrong
        return []
