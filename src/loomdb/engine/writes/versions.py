"""Appending versions of rows on a branch: the one place that writes a user table's physical rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...backend.protocol import AllocatedVersions
from ...catalog import TableSchema
from ...layout import INF_SEQ, VERSION_COLUMNS, version_insert_sql
from ..transaction import Txn

if TYPE_CHECKING:
    from ..session import Session


class VersionWriter:
    """Appends versions of one table's rows on the handle's branch."""

    def __init__(self, session: Session, schema: TableSchema, txn: Txn):
        self.session, self.schema, self.txn = session, schema, txn
        self.backend = session.store.backend
        self.seq = session.store.ensure_commit(txn)
        self.bid = txn.bid
        self.store = session.store
        self.physical = schema.physical
        cache_key = (schema.physical, tuple(c.phys for c in schema.columns))
        sql = self.store.plans.version_sql.get(cache_key)
        if sql is None:
            sql = version_statements(schema, self.store.allocator)
            self.store.plans.version_sql[cache_key] = sql
        self._insert_sql, self._inplace_sql, self._end_sql, self._delete_sql, self._allocating_sql = sql

    def _values(self, row: dict[str, Any] | None) -> list[Any]:
        """``row``'s values in the schema's column order (all NULL for a tombstone)."""
        if row is None:
            return [None] * len(self.schema.columns)
        return [row.get(c.name) for c in self.schema.columns]

    def _allocating_params(self, rid: int | None, row: dict[str, Any] | None) -> list[Any]:
        """The parameters of the INSERT that takes its version id from the engine."""
        return [rid, self.bid, self.seq, INF_SEQ, 1 if row is None else 0, *self._values(row)]

    def _append(self, rid: int | None, row: dict[str, Any] | None) -> int:
        """Append a version of row ``rid`` (None: a new row) on this branch; returns its _vid."""
        deleted = 1 if row is None else 0
        if self._allocating_sql is not None:
            # The engine hands out the id inside the INSERT.
            params = self._allocating_params(rid, row)
            return int(next(self.backend.execute(self._allocating_sql, params))[0])
        vid = self.store.allocate_vid(self.physical)
        self.backend.execute(
            self._insert_sql,
            [vid, vid if rid is None else rid, self.bid, self.seq, INF_SEQ, deleted, *self._values(row)],
        )
        return vid

    def insert(self, row: dict[str, Any], rid: int | None = None) -> int:
        """Append a version; a new row identity when ``rid`` is None. Returns its _vid."""
        return self._append(rid, row)

    def insert_blind(self, row: dict[str, Any]) -> None:
        """Append a new row whose version id nobody needs (the engine may defer it)."""
        if self._allocating_sql is not None:
            # Sent with the next statement (the COMMIT, say): no round trip of its own.
            self.backend.defer(self._allocating_sql, self._allocating_params(None, row))
            return
        self._append(None, row)

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
        if bid == self.bid:
            self.backend.execute(self._end_sql, [self.seq, vid])
        return new_vid


def version_statements(
    schema: TableSchema, allocator: AllocatedVersions | None
) -> tuple[str, str, str, str, str | None]:
    """The statements that append a version (with its id), change one in place,
    end one, delete one, and (engines that allocate ids) append one that takes
    its id from the engine."""
    table = schema.physical
    marks = "".join(", ?" for _ in schema.columns)
    sep = ", " if schema.columns else ""
    sets = ", ".join(f'"{c.phys}" = ?' for c in schema.columns)
    head = version_insert_sql(table, [c.phys for c in schema.columns])
    return (
        f"{head} VALUES ({', '.join('?' for _ in VERSION_COLUMNS)}{marks})",
        f'UPDATE "{table}" SET _del = ?{sep}{sets} WHERE _vid = ?',
        f'UPDATE "{table}" SET _end = ? WHERE _vid = ?',
        f'DELETE FROM "{table}" WHERE _vid = ?',
        None
        if allocator is None
        else allocator.allocating_insert_sql(table, [(c.phys, c.type) for c in schema.columns]),
    )
