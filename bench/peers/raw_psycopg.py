"""Raw psycopg 3 on PostgreSQL: the floor for the PostgreSQL systems.

bench_postgres.py's raw side: a plain table with the native types loomdb's
PostgreSQL engine uses (text, integer, pgvector's ``vector(1536)`` sent in
binary, jsonb, timestamptz) and a ``(run_id, step)`` index, in its own schema;
``synchronous_commit=on``; one autocommit INSERT per step (one round trip, its
own transaction). Vector search is pgvector's exact ``ORDER BY embedding <=> %s
LIMIT 10`` (no ANN index). No branches, hence no merge and no conflicts.
"""

from __future__ import annotations

from typing import Any

from _report import close_quietly
from bench_postgres import RAW_INSERT, RAW_RESUME, raw_connect, raw_params, raw_table

from .base import BRANCH, CONFLICT, MERGE, Context, Peer, unit

TOP10_SQL = "SELECT run_id, step FROM iterations ORDER BY embedding <=> %s LIMIT 10"
NO_BRANCHES = "a plain table has no branches"


class RawPsycopg(Peer):
    name = "raw psycopg"
    key = "raw_psycopg"
    family = "postgres"
    durability = "autocommit INSERT, synchronous_commit=on"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.conn: Any = None
        self.absent = {BRANCH: NO_BRANCHES, MERGE: NO_BRANCHES, CONFLICT: NO_BRANCHES}
        self.how = {
            "persist": "one autocommit INSERT (one round trip)",
            "resume": "SELECT step, state_snapshot ... ORDER BY step DESC LIMIT 1 (jsonb -> dict)",
            "top10": "pgvector exact: ORDER BY embedding <=> %s LIMIT 10, no ANN index",
        }

    def _open(self, kind: str) -> None:
        close_quietly(self.conn)
        pg = self.ctx.pg
        self.schema = pg.schema(f"raw_{kind}")
        pg.admin.execute(f'CREATE SCHEMA "{self.schema}"')
        self.conn = raw_connect(pg.server.url, self.schema, autocommit=True)
        raw_table(self.conn, "iterations")
        self.insert = RAW_INSERT.format(name="iterations")
        self.cur = self.conn.cursor()

    def open_persist(self) -> None:
        self._open("persist")

    def persist(self, row: list) -> None:
        self.cur.execute(self.insert, raw_params(row))

    def persist_bytes(self) -> int:
        self.close()
        return self.ctx.pg.schema_bytes(self.schema)["total"]

    def open_bulk(self) -> None:
        self._open("bulk")

    def bulk_load(self, rows: list[list]) -> None:
        with self.conn.transaction():
            self.cur.executemany(self.insert, [raw_params(r) for r in rows])

    def resume(self, run_id: str) -> tuple[int, dict]:
        step, state = self.cur.execute(RAW_RESUME.format(name="iterations"), (run_id,)).fetchone()
        return step, state

    def top10(self, query) -> list[tuple[str, int]]:
        return [tuple(r) for r in self.cur.execute(TOP10_SQL, (unit(query),))]

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None
