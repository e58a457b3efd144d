"""The catalog as a whole, read from one store and written into another (``loomdb.copy``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ...catalog import TableSchema
from ...layout import CATALOG_TABLES

if TYPE_CHECKING:
    from .store import Store


def has_history(store: Store) -> bool:
    """Whether anything was written since the store was created (a commit or a branch)."""
    for table in ("loom_commits", "loom_branches"):
        if int(next(store.backend.execute(f"SELECT count(*) FROM {table}"))[0]) > 1:
            return True
    return False


def catalog_rows(store: Store) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Every catalog table's rows (columns as in ``layout.CATALOG_TABLES``), in copy order."""
    return [
        (table, list(store.backend.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1")))
        for table, columns in CATALOG_TABLES
    ]


def replace_catalog(store: Store, table: str, rows: list[tuple[Any, ...]]) -> None:
    """Replace catalog ``table``'s rows with ``rows`` (inside the open transaction)."""
    columns = dict(CATALOG_TABLES)[table]
    store.backend.execute(f"DELETE FROM {table}")
    marks = ", ".join("?" for _ in columns)
    store.backend.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def table_definitions(store: Store) -> list[TableSchema]:
    """Every table schema ever written, on any branch."""
    rows = store.backend.execute("SELECT definition FROM loom_schema WHERE definition IS NOT NULL")
    return [TableSchema.from_json(d) for (d,) in rows]


def physical_tables(store: Store) -> list[tuple[int, str, dict[str, str]]]:
    """``(table id, physical table, {physical column: affinity})`` of every physical table."""
    rows = store.backend.execute("SELECT tid, physical, columns FROM loom_tables ORDER BY tid")
    return [(int(tid), physical, json.loads(columns)) for tid, physical, columns in rows]
