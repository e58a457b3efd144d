"""Per-branch PRIMARY KEY and UNIQUE checks, and the key lookups an INSERT can send with BEGIN."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import errors
from ...catalog import TableSchema

if TYPE_CHECKING:
    from ..session import Session


class KeyChecker:
    """Checks PRIMARY KEY / UNIQUE on the handle's branch view, including rows of this statement."""

    def __init__(self, session: Session, schema: TableSchema):
        self.session, self.schema = session, schema
        self.seen: list[dict[tuple[Any, ...], tuple[int, int] | None]] = [{} for _ in schema.keys]
        txn = session.store.txn
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
                found = self.session.lookup_key(self.schema, key, values)
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
            found = self.session.lookup_keys(self.schema, key, sorted(wanted, key=repr))
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
        """``row`` now holds its keys as version ``vid`` of row ``rid``."""
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
        """The IntegrityError for ``row`` clashing on ``key``."""
        values = ", ".join(repr(row.get(c)) for c in key)
        kind = "primary key" if key == self.schema.primary_key else "unique constraint"
        return errors.IntegrityError(
            f'duplicate key value violates {kind} of "{self.schema.name}": ({", ".join(key)})=({values})'
            f" already exists on branch {self.session.name!r}",
            sqlstate="23505",
        )
