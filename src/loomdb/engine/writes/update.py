"""UPDATE, DELETE and TRUNCATE: new versions (or tombstones) of the rows a WHERE selects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from ... import errors
from ...catalog import TableSchema
from ...number_input import NumberText
from ...sql.tree import numeric_literal_text
from ...types import ColumnType, to_storage
from ..session import numeric_values
from .common import WriteResult, assigned, check_row, column_of, ident, is_default, target_schema
from .keys import KeyChecker
from .versions import VersionWriter

if TYPE_CHECKING:
    from ..session import Session

# ----------------------------------------------------------------------------- UPDATE / DELETE


def select_targets(
    session: Session,
    schema: TableSchema,
    table: exp.Table,
    alias: str,
    assignments: Sequence[tuple[exp.Expression, exp.Expression]],
    condition: exp.Expression | None,
    params: list[Any],
    key: Any,
    *,
    from_: exp.From | None = None,
    joins: Sequence[exp.Expression] | None = None,
    vid_filter: int | None = None,
) -> list[tuple[Any, ...]]:
    """Rows to change: (vid, rid, bid, seq, *new values, *old values) per visible match."""
    projections = [
        exp.alias_(assigned(value.copy(), column_of(schema, ident(target)).type), f"_loom_set_{i}")
        for i, (target, value) in enumerate(assignments)
    ]
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
            hints[int(value.this.name)] = column_of(schema, ident(target)).type
    vid_param = None
    if vid_filter is not None:
        vid_param = len(params) + 1
        params = [*params, vid_filter]
    if condition is not None:
        select.set("where", exp.Where(this=condition))
    compiled = session.compile(select, key=key, hidden_alias=alias, hints=hints, vid_param=vid_param)
    rows = session.run_compiled(compiled, params)
    numeric = [
        i for i, t in enumerate(compiled.types[: len(assignments)]) if t is not None and t.kind == "numeric"
    ]
    if numeric:  # the new values follow the version, row, branch and sequence columns
        rows = [tuple(numeric_values(compiled, list(r), [4 + i for i in numeric], offset=4)) for r in rows]
    seen: set[int] = set()
    out = []
    for row in rows:
        if row[0] not in seen:  # UPDATE ... FROM may match one row more than once
            seen.add(row[0])
            out.append(row)
    return out


def _number_literal(node: exp.Expression) -> NumberText | None:
    """The text of a (signed) number literal, else None."""
    text = numeric_literal_text(node)
    return None if text is None else NumberText(text)


def apply_updates(
    session: Session,
    schema: TableSchema,
    assignments: Sequence[tuple[exp.Expression, exp.Expression]],
    matched: list[tuple[Any, ...]],
    checker: KeyChecker,
    writer: VersionWriter,
) -> list[int]:
    """Write the new version of each matched row with the assignments applied,
    checking NOT NULL and keys; returns the new version ids."""
    targets = [column_of(schema, ident(t)) for t, _ in assignments]
    # A number literal is stored from its text: numeric in PostgreSQL (2.5 into an
    # integer column rounds half away from zero), where the engine gives a float.
    literals = [_number_literal(value) for _, value in assignments]
    nset = len(assignments)
    written = []
    for found in matched:
        vid, rid, bid, seq = found[:4]
        new_values = found[4 : 4 + nset]
        old = dict(zip(schema.column_names, found[4 + nset :], strict=True))
        row = dict(old)
        for column, value, literal in zip(targets, new_values, literals, strict=True):
            if literal is not None:
                value = literal
            row[column.name] = to_storage(value, column.type, column.name)
        check_row(schema, row)
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


def run_update(session: Session, stmt: exp.Update, params: list[Any], key: str) -> WriteResult:
    """UPDATE [FROM] ... [RETURNING]: a new version of each row the WHERE selects."""
    txn = session.require_txn()
    table = stmt.this
    schema = target_schema(session, table)
    alias = table.alias_or_name
    assignments: list[tuple[exp.Column, exp.Expression]] = []
    for eq in stmt.expressions:
        if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column):
            raise errors.NotSupportedError(f"SET {eq.sql(dialect='postgres')} is not supported")
        column = column_of(schema, ident(eq.this))
        if column.identity == "always" and not is_default(eq.expression):
            raise errors.ProgrammingError(
                f'column "{column.name}" can only be updated to DEFAULT'
                f' (column "{column.name}" is an identity column defined as GENERATED ALWAYS)',
                sqlstate="428C9",
            )
        assignments.append((eq.this, eq.expression))
    where = stmt.args.get("where")
    matched = select_targets(
        session,
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
            returning_rows(session, schema, table, stmt.args["returning"], [], params, key, result)
        return result
    writer = VersionWriter(session, schema, txn)
    written = apply_updates(session, schema, assignments, matched, KeyChecker(session, schema), writer)
    if stmt.args.get("returning") is not None:
        returning_rows(session, schema, table, stmt.args["returning"], written, params, key, result)
    return result


def run_delete(session: Session, stmt: exp.Delete, params: list[Any], key: str) -> WriteResult:
    """DELETE [USING] ... [RETURNING]: a tombstone for each row the WHERE selects
    (RETURNING reads the rows before they go)."""
    txn = session.require_txn()
    table = stmt.this
    schema = target_schema(session, table)
    alias = table.alias_or_name
    where = stmt.args.get("where")
    using = stmt.args.get("using") or []
    joins = [exp.Join(this=t.copy()) for t in using]
    matched = select_targets(
        session,
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
        returning_rows(
            session, schema, table, stmt.args["returning"], [m[0] for m in matched], params, key, result
        )
    if matched:
        writer = VersionWriter(session, schema, txn)
        for found in matched:
            writer.supersede(tuple(found[:4]), None)
    return result


def returning_rows(
    session: Session,
    schema: TableSchema,
    table: exp.Table,
    returning: exp.Returning,
    vids: list[int],
    params: list[Any],
    key: Any,
    result: WriteResult,
) -> None:
    """Evaluate RETURNING over the versions ``vids`` into ``result``, in their order."""
    alias = table.alias_or_name
    select = exp.Select(expressions=[e.copy() for e in returning.expressions])
    select.set("from_", exp.From(this=table.copy()))
    compiled = session.compile(select, key=(key, "returning"), vid_alias=alias)
    # The version ids travel as one JSON array in the last parameter slot.
    own = list(params[: compiled.nparams - 1])
    own += [None] * (compiled.nparams - 1 - len(own))
    rows = session.run_compiled(compiled, [*own, json.dumps(vids)])
    order = {vid: i for i, vid in enumerate(vids)}
    rows.sort(key=lambda r: order.get(r[-1], 0))
    result.returning = compiled
    result.returning_rows = [tuple(r[:-1]) for r in rows]


def run_truncate(session: Session, stmt: exp.TruncateTable, key: str) -> WriteResult:
    """TRUNCATE: delete every row of each table named; the count is their sum."""
    total = 0
    for table in stmt.expressions:
        delete = exp.Delete(this=table.copy())
        total += run_delete(session, delete, [], f"{key}:{table.name}").rowcount
    return WriteResult(total)
