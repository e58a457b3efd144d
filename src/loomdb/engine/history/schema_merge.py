"""Merging schemas: tables and columns added on the source join the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import errors
from ...catalog import TableSchema

if TYPE_CHECKING:
    pass


def merged_schemas(
    base: dict[str, TableSchema], ours: dict[str, TableSchema], theirs: dict[str, TableSchema]
) -> dict[str, tuple[TableSchema | None, TableSchema]]:
    """For each table the source has: (the target's schema before, the merged schema)."""
    out: dict[str, tuple[TableSchema | None, TableSchema]] = {}
    for name, their in theirs.items():
        our, old = ours.get(name), base.get(name)
        if our is None:
            if old is None or old.tid != their.tid:
                out[name] = (None, their)  # created on the source
            continue  # dropped on the target: its rows stay dropped
        if our.tid != their.tid:
            raise errors.NotSupportedError(
                f"table {name!r} was created separately on both branches; loomdb cannot merge two different tables"
            )
        known = {c.name for c in our.columns}
        added = tuple(
            c for c in their.columns if c.name not in known and (old is None or old.column(c.name) is None)
        )
        out[name] = (our, our.with_columns(our.columns + added) if added else our)
    return out
