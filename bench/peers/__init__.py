"""Adapters for bench/bench_peers.py: one per system, one interface (``base.Peer``).

``SYSTEMS`` lists them in table order, embedded systems first (compared with
loomdb on SQLite), then the PostgreSQL ones (compared with loomdb on
PostgreSQL). Importing this package imports no peer library; each adapter
imports its own (deeplake, langgraph, psycopg) when it is used.
"""

from __future__ import annotations

import importlib

# key -> (module, class); the order is the table's.
SYSTEMS: dict[str, tuple[str, str]] = {
    "loomdb_sqlite": ("loom", "LoomSqlite"),
    "raw_apsw": ("raw_apsw", "RawApsw"),
    "sqlite_saver": ("langgraph_savers", "SqliteSaverPeer"),
    "deeplake": ("deep_lake", "Deeplake"),
    "loomdb_postgres": ("loom", "LoomPostgres"),
    "raw_psycopg": ("raw_psycopg", "RawPsycopg"),
    "postgres_saver": ("langgraph_savers", "PostgresSaverPeer"),
}
POSTGRES = {"loomdb_postgres", "raw_psycopg", "postgres_saver"}
REFERENCE = {"sqlite": "loomdb_sqlite", "postgres": "loomdb_postgres"}


def peer_class(key: str) -> type:
    module, cls = SYSTEMS[key]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
