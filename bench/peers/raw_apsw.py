"""Raw SQLite through apsw: the floor for the embedded systems.

Exactly bench_engine.py's raw side: a plain ``iterations`` table (embedding as a
float32 BLOB, state as JSON text) with a ``(run_id, step)`` index, WAL and
``PRAGMA synchronous=FULL`` (fsync at every commit, as loomdb's "full"); one
autocommit INSERT per step, the caller paying for ``json.dumps`` and the float32
packing (``_workload.raw_params``). Vector search is what a raw SQLite user
reaches for: sqlite-vec's brute-force ``vec_distance_cosine`` over the BLOBs
(exact). No branches, hence no merge and no conflicts.
"""

from __future__ import annotations

import json
import os

import apsw
import sqlite_vec
from _report import close_quietly
from _workload import RAW_INSERT, RAW_RESUME, raw_params
from bench_engine import checkpointed_size, open_raw

from .base import BRANCH, CONFLICT, MERGE, Context, Peer, unit

TOP10_SQL = "SELECT run_id, step FROM iterations ORDER BY vec_distance_cosine(embedding, ?) LIMIT 10"
NO_BRANCHES = "a plain table has no branches"


class RawApsw(Peer):
    name = "raw apsw"
    key = "raw_apsw"
    family = "sqlite"
    durability = "WAL, synchronous=FULL: fsync at every commit"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.conn: apsw.Connection | None = None
        self.absent = {BRANCH: NO_BRANCHES, MERGE: NO_BRANCHES, CONFLICT: NO_BRANCHES}
        self.how = {
            "persist": "one autocommit INSERT (json.dumps, float32 bytes in the timed call)",
            "resume": "SELECT step, state_snapshot ... ORDER BY step DESC LIMIT 1, json.loads",
            "top10": "sqlite-vec brute force: ORDER BY vec_distance_cosine(embedding, ?) LIMIT 10 (exact)",
        }

    def _open(self, kind: str) -> None:
        close_quietly(self.conn)
        self.path = os.path.join(self.ctx.tmp, f"raw-{kind}.db")
        self.conn = open_raw(self.path, "FULL")
        self.conn.enable_load_extension(True)
        self.conn.load_extension(sqlite_vec.loadable_path())
        self.cur = self.conn.cursor()

    def open_persist(self) -> None:
        self._open("persist")

    def persist(self, row: list) -> None:
        self.cur.execute(RAW_INSERT, raw_params(row))

    def persist_bytes(self) -> int:
        self.close()
        return checkpointed_size(self.path)

    def open_bulk(self) -> None:
        self._open("bulk")

    def bulk_load(self, rows: list[list]) -> None:
        with self.conn:  # one transaction
            self.cur.executemany(RAW_INSERT, [raw_params(r) for r in rows])

    def resume(self, run_id: str) -> tuple[int, dict]:
        step, state = self.cur.execute(RAW_RESUME, (run_id,)).fetchone()
        return step, json.loads(state)

    def top10(self, query) -> list[tuple[str, int]]:
        return list(self.cur.execute(TOP10_SQL, (unit(query).tobytes(),)))

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None
