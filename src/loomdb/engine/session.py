"""A session: one open store seen from one branch (and maybe a snapshot).

The write, DDL, history, batch and vector paths take a Session: it knows
which versions its branch sees (the lineage), compiles statements against the
schema that branch sees, runs them, and looks keys up through the branch
view. It holds no connection of its own: every Session of one ``connect``
shares one :class:`~loomdb.engine.store.Store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from .. import errors
from ..catalog import TableSchema
from ..cursor import Cursor, decoders, row_class
from ..sql.compile import Compiled, compile_query
from ..sql.dialect import parse
from ..types import ColumnType, adapt_param
from ..versioning.lineage import Lineage
from .plans import ResultShape
from .store import Store
from .transaction import Txn, failed_error

# Compiled queries shared by every connection of the process, keyed by the
# store's schema fingerprint and the per-store cache key (see Session.compile).
_SHARED_COMPILED: dict[Any, Compiled] = {}
_SHARED_COMPILED_MAX = 4096

_KEYS_PER_QUERY = 200  # key values looked up by one query of an executemany


class Session:
    """One store seen from branch ``bid`` (at commit ``snapshot``, or its live head)."""

    def __init__(self, store: Store, bid: int, name: str, snapshot: int | None = None):
        self.store = store
        self.bid = bid
        self.name = name
        self.snapshot = snapshot
        self.lineage: Lineage = store.lineage(bid, snapshot)

    def at(self, bid: int, name: str, snapshot: int | None = None) -> Session:
        """Another session on the same store."""
        return Session(self.store, bid, name, snapshot)

    # -- state checks ------------------------------------------------------------------------

    def check_writable(self) -> None:
        """ReadOnlyError on a snapshot session."""
        if self.snapshot is not None:
            raise errors.ReadOnlyError(
                f"this handle is a read-only snapshot of {self.name!r} at commit {self.snapshot};"
                " use branch() to write from there"
            )

    def check_not_failed(self) -> None:
        """TransactionFailedError when the open transaction was rolled back by a failed statement."""
        txn = self.store.txn
        if txn is not None and txn.failed is not None:
            raise failed_error(txn)

    def check_txn_branch(self, txn: Txn) -> None:
        """ProgrammingError when the open transaction writes another branch than this session's."""
        if txn.bid != self.bid:
            other = self.store.branch_by_id(txn.bid).name
            raise errors.ProgrammingError(
                f"a transaction on branch {other!r} is open on this connection; finish it before writing"
                f" to {self.name!r} (or use a separate connect())"
            )

    def require_txn(self) -> Txn:
        """The open write transaction (InternalError when there is none)."""
        txn = self.store.txn
        if txn is None:
            raise errors.InternalError("write outside a transaction")
        return txn

    def fork(self) -> int | None:
        """The commit this session's branch forked from (None for main)."""
        return self.store.branch_by_id(self.bid).fork

    def head(self) -> int:
        """The newest commit this session sees."""
        return self.store.head(self.lineage)

    def schemas(self) -> dict[str, TableSchema]:
        """The tables this session sees, by name."""
        return self.store.schemas(self.lineage)

    # -- compiling and running -------------------------------------------------------------

    def compile(
        self,
        tree: exp.Expression,
        *,
        key: Any,
        hidden_alias: str | None = None,
        hints: Mapping[int, ColumnType] | None = None,
        vid_param: int | None = None,
        vid_alias: str | None = None,
    ) -> Compiled:
        """``tree`` compiled against this session's schema and branch view (cached under ``key``)."""
        cache_key = (key, self.lineage, hidden_alias, vid_param, vid_alias)
        queries = self.store.plans.queries
        compiled = queries.get(cache_key)
        if compiled is not None:
            return compiled
        # Another connection of this process with the same schema history may
        # have compiled it already (qualifying and typing with sqlglot costs
        # milliseconds, a fresh connection's first statements most of all).
        store, lineage = self.store, self.lineage
        shared_key = (store.schema_fingerprint(), cache_key)
        compiled = _SHARED_COMPILED.get(shared_key)
        if compiled is None:
            compiled = compile_query(
                tree,
                self.schemas(),
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
        queries[cache_key] = compiled
        return compiled

    def adapt(self, compiled: Compiled, values: Sequence[Any]) -> list[Any]:
        """``values`` in the storage form ``compiled``'s parameters take (ProgrammingError when too few)."""
        if len(values) < compiled.nparams:
            raise errors.ProgrammingError(
                f"the statement needs {compiled.nparams} parameter(s) but {len(values)} were given"
            )
        types = compiled.param_types
        return [adapt_param(v, types.get(i + 1)) for i, v in enumerate(values[: compiled.nparams])]

    def run_compiled(self, compiled: Compiled, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of ``compiled`` run with ``values``, in storage form."""
        backend = self.store.backend
        bound = self.adapt(compiled, values)
        try:
            return list(backend.execute(compiled.sql, bound))
        except errors.Error:
            raise
        except Exception as exc:  # errors raised while stepping the statement
            raise backend.translate(exc) from None

    def cursor(self, compiled: Compiled, rows: list[tuple[Any, ...]], rowcount: int = -1) -> Cursor:
        """A cursor over ``rows`` of ``compiled``, decoding values to Python's types."""
        shapes = self.store.plans.shapes
        shape = shapes.get(id(compiled))
        if shape is None or shape.compiled is not compiled:
            shape = ResultShape(compiled, row_class(compiled.names), decoders(compiled.types))
            shapes[id(compiled)] = shape
        return Cursor(
            iter(rows),
            compiled.names,
            compiled.types,
            rowcount=rowcount,
            row_type=shape.row_type,
            decode=shape.decode,
        )

    def parse_fragment(self, sql: str) -> exp.Expression:
        """One SQL expression (a DEFAULT, say) parsed on its own."""
        return parse("SELECT " + sql).expressions[0]

    def evaluate(
        self,
        expressions: list[exp.Expression],
        params: Sequence[Any],
        key: Any = None,
        hints: Mapping[int, ColumnType] | None = None,
    ) -> list[Any]:
        """Compute expressions (which may hold subqueries) on this branch; storage values."""
        select = exp.Select(expressions=[e.copy() for e in expressions])
        compiled = self.compile(
            select, key=("evaluate", key if key is not None else select.sql()), hints=hints
        )
        rows = self.run_compiled(compiled, params)
        return numeric_values(compiled, list(rows[0]))

    # -- key lookups -----------------------------------------------------------------------

    def lookup_key(
        self, schema: TableSchema, key: tuple[str, ...], values: tuple[Any, ...]
    ) -> tuple[int, int] | None:
        """``(row identity, version id)`` of the visible row whose ``key`` equals ``values``."""
        row = next(self.store.backend.execute(self.lookup_key_sql(schema, key), list(values)), None)
        return None if row is None else (int(row[0]), int(row[1]))

    def lookup_key_sql(self, schema: TableSchema, key: tuple[str, ...]) -> str:
        """The query ``lookup_key`` runs (parameters: the key's values)."""
        cache_key = ("key", schema.tid, schema.physical, key, self.lineage, id(schema))
        lookups = self.store.plans.key_lookups
        sql = lookups.get(cache_key)
        if sql is None:
            view = self.store.view_sql(schema, self.lineage, "t", True)
            cond = " AND ".join(f't."{c}" = ?' for c in key)
            sql = f"SELECT t._loom_rid, t._loom_vid FROM {view} AS t WHERE {cond} LIMIT 1"
            lookups[cache_key] = sql
        return sql

    def lookup_keys(
        self, schema: TableSchema, key: tuple[str, ...], wanted: Sequence[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], tuple[int, int]] | None:
        """``(row identity, version id)`` of the visible rows whose ``key`` is one of
        ``wanted``; None when a row found does not read back equal to what was asked
        (a type whose stored form differs), so absence cannot be told."""
        found: dict[tuple[Any, ...], tuple[int, int]] = {}
        per_query = max(1, _KEYS_PER_QUERY // len(key))
        lookups = self.store.plans.key_lookups
        for start in range(0, len(wanted), per_query):
            part = wanted[start : start + per_query]
            cache_key = ("keys", schema.tid, schema.physical, key, self.lineage, id(schema), len(part))
            sql = lookups.get(cache_key)
            if sql is None:  # the view's SQL is built only here, not on every executemany
                view = self.store.view_sql(schema, self.lineage, "t", True)
                names = ", ".join(f't."{c}"' for c in key)
                one = "(" + " AND ".join(f't."{c}" = ?' for c in key) + ")"
                where = " OR ".join([one] * len(part))
                sql = f"SELECT {names}, t._loom_rid, t._loom_vid FROM {view} AS t WHERE {where}"
                lookups[cache_key] = sql
            asked = set(part)
            for row in self.store.backend.execute(sql, [v for values in part for v in values]):
                values = tuple(row[: len(key)])
                if values not in asked:
                    return None
                found[values] = (int(row[-2]), int(row[-1]))
        return found

    def first_duplicate(self, schema: TableSchema, cols: tuple[str, ...]) -> tuple[Any, ...] | None:
        """Values of ``cols`` that two visible rows share (None when every row's differ)."""
        view = self.store.view_sql(schema, self.lineage, "t", False)
        names = ", ".join(f't."{c}"' for c in cols)
        not_null = " AND ".join(f't."{c}" IS NOT NULL' for c in cols)
        sql = f"SELECT {names} FROM {view} AS t WHERE {not_null} GROUP BY {names} HAVING count(*) > 1 LIMIT 1"
        return next(self.store.backend.execute(sql), None)

    def count_rows(self, schema: TableSchema) -> int:
        """How many rows of ``schema`` this session sees."""
        view = self.store.view_sql(schema, self.lineage, "t", False)
        return int(next(self.store.backend.execute(f"SELECT count(*) FROM {view} AS t"))[0])


def numeric_values(
    compiled: Compiled, row: list[Any], positions: Sequence[int] | None = None, offset: int = 0
) -> list[Any]:
    """``row`` of ``compiled`` with its numeric results (numeric text on SQLite) at
    ``positions`` (by default all; result column ``i - offset``) as Decimals, as
    values stored into a column take them: ``1.5 + 1.5`` into an integer column is
    the numeric 3.0, not the text '3.0'."""
    for i in range(len(row)) if positions is None else positions:
        j = i - offset
        ctype = compiled.types[j] if 0 <= j < len(compiled.types) else None
        if ctype is not None and ctype.kind == "numeric" and isinstance(row[i], str):
            try:
                row[i] = Decimal(row[i])
            except InvalidOperation:
                pass  # not a number: stored as the text it is
    return row
