"""What every write shares: the result of a write, the target table, simple values and defaults."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from ... import errors
from ...catalog import Column, TableSchema
from ...number_input import NumberText, int_bits
from ...sql.compile import Compiled, table_key
from ...time_values import parse_input
from ...types import ColumnType, to_storage
from ..transaction import Txn

if TYPE_CHECKING:
    from ..session import Session

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


def target_schema(session: Session, table: exp.Table) -> TableSchema:
    """The schema of the table a write names, on this branch; ProgrammingError when
    there is none, NotSupportedError when the target is not a plain table."""
    if not isinstance(table, exp.Table):
        raise errors.NotSupportedError(f"cannot write to {table.sql(dialect='postgres')!r}")
    schema = session.schemas().get(table_key(table))
    if schema is None:
        raise errors.ProgrammingError(f'relation "{table_key(table)}" does not exist', sqlstate="42P01")
    return schema


def column_of(schema: TableSchema, name: str) -> Column:
    """The column ``name`` of ``schema`` that a statement names; ProgrammingError when there is none."""
    column = schema.column(name)
    if column is None:
        raise errors.ProgrammingError(
            f'column "{name}" of relation "{schema.name}" does not exist', sqlstate="42703"
        )
    return column


def catalog_column(schema: TableSchema, name: str) -> Column:
    """The column ``name`` that ``schema`` itself names (in a key or an index). Unlike
    :func:`column_of`, which checks a name a statement gives, a missing one here is a
    broken catalog: InternalError."""
    column = schema.column(name)
    if column is None:
        raise errors.InternalError(
            f'relation "{schema.name}" names column "{name}" in a key or index but has no such column'
        )
    return column


def ident(node: exp.Expression) -> str:
    """The name a column or identifier node stands for: as written when quoted, else lower-cased."""
    ident = node.this if isinstance(node, exp.Column) else node
    if isinstance(ident, exp.Identifier):
        return ident.this if ident.quoted else ident.this.lower()
    return str(node.name).lower()


# Casts the column's own conversion already performs, so ``%s::jsonb`` into a
# JSONB column binds the parameter directly. Not the timestamp casts: text cast
# to timestamptz keeps its offset, to timestamp drops it, whatever the column.
_PASSTHROUGH_CASTS = {
    exp.DataType.Type.JSON,
    exp.DataType.Type.JSONB,
    exp.DataType.Type.VECTOR,
    exp.DataType.Type.UUID,
}
_STAMP_CASTS = {exp.DataType.Type.TIMESTAMP: False, exp.DataType.Type.TIMESTAMPTZ: True}


def unwrap(node: exp.Expression, ctype: ColumnType | None = None) -> exp.Expression:
    """``node`` without a cast the column's own conversion performs anyway (of a parameter,
    literal or NULL); a cast to timestamp or timestamptz only into a column of that type
    (``ctype``)."""
    if not isinstance(node, exp.Cast) or not isinstance(node.this, (exp.Parameter, exp.Literal, exp.Null)):
        return node
    if node.to.this in _PASSTHROUGH_CASTS:
        return node.this
    zoned = _STAMP_CASTS.get(node.to.this)
    if zoned is not None and ctype is not None and ctype.kind == "timestamp" and ctype.with_tz == zoned:
        return node.this
    return node


_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Pow)
_INT_TYPES = {16: "SMALLINT", 32: "INT", 64: "BIGINT"}


def assigned(value: exp.Expression, ctype: ColumnType) -> exp.Expression:
    """``value`` as computed for a column of type ``ctype``: arithmetic stored into
    an integer column cast to it, so that it rounds by its PostgreSQL type
    (numeric half away from zero, double precision half to even) where the
    engine would hand back a bare float."""
    if ctype.kind not in ("int", "serial"):
        return value
    literal = isinstance(value, exp.Literal) and value.is_number and not value.is_int
    if not literal and not any(isinstance(n, _ARITHMETIC) for n in value.walk()):
        return value
    return exp.Cast(this=value, to=exp.DataType.build(_INT_TYPES[int_bits(ctype.sql)]))


def stamp_cast_type(node: exp.Expr) -> ColumnType | None:
    """The timestamp type a cast to timestamp or timestamptz gives (a parameter under
    it is read as that type, not as the column's); None for any other node."""
    if isinstance(node, exp.Cast) and node.to.this in _STAMP_CASTS:
        return ColumnType.parse("TIMESTAMPTZ" if _STAMP_CASTS[node.to.this] else "TIMESTAMP")
    return None


def simple_value(node: exp.Expression, params: Sequence[Any]) -> tuple[bool, Any]:
    """Evaluate a VALUES item in Python when it is a parameter or a literal (or a
    literal cast to a timestamp type, read as that type reads it)."""
    if (
        isinstance(node, exp.Cast)
        and node.to.this in _STAMP_CASTS
        and isinstance(node.this, exp.Literal)
        and node.this.is_string
        and node.this.this.strip().lower() not in ("now", "today", "yesterday", "tomorrow")
    ):
        return True, parse_input(node.this.this, _STAMP_CASTS[node.to.this])
    node = unwrap(node)
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Parameter):
        return True, params[int(node.this.name) - 1]
    if isinstance(node, exp.Literal):
        # A number literal is numeric in PostgreSQL (2.5 into an integer column rounds), '2.5' is text.
        return True, node.this if node.is_string else NumberText(node.this)
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Boolean):
        return True, bool(node.this)
    if isinstance(node, exp.Neg) and node.find(exp.Parameter) is None:
        ok, value = simple_value(node.this, ())
        if ok and isinstance(value, NumberText):
            return True, NumberText(value[1:] if value.startswith("-") else "-" + value)
    return False, None


def identity_always(column: Column) -> errors.Error:
    """PostgreSQL's error (428C9) for a value given to a GENERATED ALWAYS identity column."""
    return errors.ProgrammingError(
        f'cannot insert a non-DEFAULT value into column "{column.name}"'
        f' (column "{column.name}" is an identity column defined as GENERATED ALWAYS)',
        sqlstate="428C9",
    )


def is_default(node: exp.Expression) -> bool:
    """Whether a VALUES item is the DEFAULT keyword."""
    return isinstance(node, exp.Var) and node.name.upper() == "DEFAULT"


class Defaults:
    """Produces each column's DEFAULT (storage form) for one statement."""

    def __init__(self, session: Session, schema: TableSchema, txn: Txn):
        self.session, self.schema, self.txn = session, schema, txn

    def value(self, column: Column) -> Any:
        """``column``'s DEFAULT for a new row, in storage form: the next serial, now(), a
        fresh uuid, the constant or the evaluated expression; None when it has none."""
        if column.type.kind == "serial":
            return self.session.store.counters.next(self.schema.tid, column.phys)
        if column.default is None:
            return None
        kind, payload = default_kind(self.session, column)
        if kind == "now":
            if column.type.kind == "timestamp":
                return self.txn.now  # already in storage form
            return to_storage(self.txn.now, column.type, column.name)
        if kind == "uuid":
            return to_storage(str(uuid.uuid4()), column.type, column.name)
        if kind == "const":
            return payload
        return to_storage(self.session.evaluate([payload], [])[0], column.type, column.name)


def default_kind(session: Session, column: Column) -> tuple[str, Any]:
    """Classify a DEFAULT once: now(), a random uuid, a constant, or an expression."""
    cache_key = (column.default, column.type)
    found = session.store.plans.defaults.get(cache_key)
    if found is None:
        tree = session.parse_fragment(column.default or "NULL")
        if isinstance(tree, exp.CurrentTimestamp) or func_name(tree) in _NOW_FUNCTIONS:
            found = ("now", None)
        elif isinstance(tree, exp.Uuid) or func_name(tree) in (
            "gen_random_uuid",
            "uuid_generate_v4",
        ):
            found = ("uuid", None)
        else:
            ok, value = simple_value(tree, ())
            found = ("const", to_storage(value, column.type, column.name)) if ok else ("expr", tree)
        session.store.plans.defaults[cache_key] = found
    return found


def func_name(node: exp.Expression) -> str:
    """The lower-cased name of the function ``node`` calls ("": it calls none)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return ""


def check_row(schema: TableSchema, row: dict[str, Any]) -> None:
    """IntegrityError when ``row`` holds NULL in a NOT NULL or PRIMARY KEY column."""
    for column in schema.columns:
        if row.get(column.name) is None and (column.not_null or column.name in schema.primary_key):
            raise errors.IntegrityError(
                f'null value in column "{column.name}" of relation "{schema.name}" violates not-null constraint',
                sqlstate="23502",
            )
