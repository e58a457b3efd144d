"""loomdb, embedded (SQLite file) or on PostgreSQL, driven through its agent-loop API.

Persist is ``db.run(run_id).persist(step, ...)`` (docs/run.md: one INSERT, one
commit, on the ``iterations`` table the Run API creates with
``PRIMARY KEY (run_id, step)``) at ``loomdb.connect(..., durability="full")``,
the default. Resume is the raw floors' query (the newest step and its state);
vector search is pgvector's ``ORDER BY embedding <=> %s LIMIT 10`` in SQL
(exact: loomdb's in-memory copy of the column on SQLite, a pgvector scan on
PostgreSQL, no ANN index); a branch is ``db.branch(name)``; the merge is
``db.merge(name, into="main")`` and a conflicting edit raises
``loomdb.MergeConflict``. The bulk store is loaded with ``executemany`` inside
``db.transaction()``, one transaction per batch.
"""

from __future__ import annotations

import os
from typing import Any

from _report import close_quietly
from _workload import LOOM_INSERT, LOOM_RESUME
from bench_engine import checkpointed_size

from .base import Context, Peer, unit

TOP10_SQL = "SELECT run_id, step FROM iterations ORDER BY embedding <=> %s LIMIT 10"
BUMP_SQL = "UPDATE iterations SET tokens_used = tokens_used + 1 WHERE run_id = %s"
SET_SQL = "UPDATE iterations SET tokens_used = %s WHERE run_id = %s AND step = %s"


class LoomPeer(Peer):
    """What both engines share; subclasses say where the store lives."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.db: Any = None
        self.runs: dict[str, Any] = {}
        self.how = {
            "persist": "db.run(run_id).persist(step, ...): one INSERT, one commit",
            "resume": "the raw floors' query, SELECT step, state_snapshot ... ORDER BY step DESC LIMIT 1"
            " (run.resume() reads the whole step, embedding and all)",
            "top10": "SQL ORDER BY embedding <=> %s LIMIT 10 over all runs (exact)",
            "branch": "db.branch(name): one catalog row, no copy",
            "merge": "db.merge(name, into='main'), three-way, row- and cell-level",
        }

    def url(self, kind: str) -> str:
        raise NotImplementedError

    def connect(self, kind: str) -> None:
        import loomdb

        close_quietly(self.db)
        self.db = loomdb.connect(self.url(kind), durability="full")
        self.runs = {}
        self.db.run("setup")  # creates the Run API's iterations table

    def run(self, run_id: str) -> Any:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = self.db.run(run_id)
        return run

    def open_persist(self) -> None:
        self.connect("persist")

    def persist(self, row: list) -> None:
        run_id, step, action, obs, emb, state, tokens = row
        self.run(run_id).persist(
            step, action=action, observation=obs, state=state, embedding=emb, tokens_used=tokens
        )

    def open_bulk(self) -> None:
        self.connect("bulk")

    def bulk_load(self, rows: list[list]) -> None:
        with self.db.transaction(message="bulk load"):
            self.db.executemany(LOOM_INSERT, rows)

    def resume(self, run_id: str) -> tuple[int, dict]:
        # The same work as the raw floors' resume: the newest step and its state.
        row = self.db.execute(LOOM_RESUME, [run_id]).fetchone()
        return row[0], row[1]

    def top10(self, query) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self.db.execute(TOP10_SQL, [unit(query)]).fetchall()]

    def branch(self, name: str) -> None:
        self.db.branch(name)

    def prepare_merge(self, name: str, run_id: str) -> int:
        self.changed = self.db.branch(name).execute(BUMP_SQL, [run_id]).rowcount
        return self.changed

    def merge(self, name: str) -> None:
        self.last_merge = self.db.merge(name, into="main")

    def check_merge(self, run_id: str) -> bool:
        return self.last_merge.modified == self.changed

    def conflict(self, run_id: str) -> tuple[bool, str]:
        import loomdb

        name = f"conflict/{run_id}"
        self.db.branch(name).execute(SET_SQL, [111, run_id, 0])
        self.db.execute(SET_SQL, [222, run_id, 0])
        try:
            self.db.merge(name, into="main")
        except loomdb.MergeConflict as exc:
            kept = self.db.execute(
                "SELECT tokens_used FROM iterations WHERE run_id = %s AND step = 0", [run_id]
            ).fetchone()[0]
            c = exc.conflicts[0]
            return True, (
                f"MergeConflict: {len(exc.conflicts)} conflict ({c.kind} on {', '.join(c.columns)}),"
                f" nothing merged (main keeps {kept})"
            )
        return False, "merged without reporting the conflict"

    def close(self) -> None:
        close_quietly(self.db)
        self.db = None


class LoomSqlite(LoomPeer):
    name = "loomdb (SQLite)"
    key = "loomdb_sqlite"
    family = "sqlite"
    durability = 'durability="full" (the default): WAL, fsync at every commit'

    def url(self, kind: str) -> str:
        self.path = os.path.join(self.ctx.tmp, f"loomdb-{kind}.loom")
        return self.path

    def persist_bytes(self) -> int:
        self.close()
        return checkpointed_size(self.path)


class LoomPostgres(LoomPeer):
    name = "loomdb (PostgreSQL)"
    key = "loomdb_postgres"
    family = "postgres"
    durability = 'durability="full" (the default): synchronous_commit=on'

    def url(self, kind: str) -> str:
        pg = self.ctx.pg
        self.schema = pg.schema(f"loom_{kind}")
        return pg.server.loom_url(self.schema)

    def persist_bytes(self) -> int:
        self.close()
        return self.ctx.pg.schema_bytes(self.schema)["total"]
