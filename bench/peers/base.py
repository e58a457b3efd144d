"""The interface every system measured by ``bench/bench_peers.py`` implements.

A ``Peer`` stores the brief's ``iterations`` rows (``bench/_workload.py``: run_id,
step, action, observation, embedding, state, tokens_used) the way its own
documentation recommends, and answers the benchmark's questions about them.
It holds two stores in turn: the *persist* store (one durable write per step)
and the *bulk* store (loaded in big batches, then queried, branched and
merged). A capability the system lacks is named in ``absent`` with the reason;
the driver then prints "absent" instead of a number and never calls it.

Rows are passed as the lists ``Workload.row`` returns; a peer must not change
them (the same objects go to every peer).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

# The metrics a peer may lack, by key (the driver's names for them).
PERSIST, RESUME, TOP10, BRANCH, MERGE, CONFLICT = "persist", "resume", "top10", "branch", "merge", "conflict"


@dataclass
class Context:
    """What a peer may use: a private temporary folder, and the PostgreSQL server
    (``bench_langgraph.PgServer``) when the run has one."""

    tmp: str
    pg: Any = None


class Peer:
    """One system. Subclasses set the class attributes and implement what they support.

    ``name``: the column header; ``family``: "sqlite" (embedded, compared with
    loomdb on SQLite) or "postgres" (compared with loomdb on PostgreSQL);
    ``durability``: the setting it runs at, in words (``open_persist`` may
    complete it from what the store reports); ``matches_full``: whether that is
    as durable as loomdb's ``durability="full"`` (fsync at every commit).
    ``absent``: metric -> why the system lacks it; ``how``: metric -> how it is
    measured here; ``details``: anything worth keeping in the results JSON.
    """

    name = ""
    key = ""
    family = "sqlite"
    durability = ""
    matches_full = True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.absent: dict[str, str] = {}
        self.how: dict[str, str] = {}
        self.details: dict[str, Any] = {}

    # -- the persist store: one durable write per step -----------------------------------

    def open_persist(self) -> None:
        """Create an empty persist store (and set ``durability``)."""
        raise NotImplementedError

    def persist(self, row: list) -> None:
        """Store one step durably, as the system's own per-step write does."""
        raise NotImplementedError

    def persist_bytes(self) -> int:
        """Bytes the persist store takes on disk; the store is closed afterwards."""
        raise NotImplementedError

    # -- the bulk store: loaded in batches, then queried ---------------------------------

    def open_bulk(self) -> None:
        """Create an empty bulk store."""
        raise NotImplementedError

    def bulk_load(self, rows: list[list]) -> None:
        """Append a batch of rows (one big transaction or the system's batch append)."""
        raise NotImplementedError

    def begin_load(self) -> None:
        """Called before a stage of ``bulk_load`` batches."""

    def end_load(self) -> None:
        """Called after a stage of ``bulk_load`` batches, before anything is timed."""

    def resume(self, run_id: str) -> tuple[int, dict]:
        """The newest step of ``run_id`` and its state (a dict)."""
        raise NotImplementedError

    def top10(self, query: np.ndarray) -> list[tuple[str, int]]:
        """(run_id, step) of the 10 rows nearest to ``query`` by cosine distance, nearest first."""
        raise NotImplementedError

    def start_branches(self, run_id: str) -> None:
        """Called before branches are timed; ``run_id`` is a run the branches may start from."""

    def branch(self, name: str) -> None:
        """Create a branch (or the system's closest equivalent) named ``name``."""
        raise NotImplementedError

    def prepare_merge(self, name: str, run_id: str) -> int:
        """Untimed: create branch ``name`` and change the ``tokens_used`` of every row
        of ``run_id`` on it; returns how many rows changed."""
        raise NotImplementedError

    def merge(self, name: str) -> None:
        """Timed: merge branch ``name`` (prepared by ``prepare_merge``) into the main line."""
        raise NotImplementedError

    def check_merge(self, run_id: str) -> bool:
        """Untimed, after ``merge``: the main line now holds the branch's change."""
        raise NotImplementedError

    def conflict(self, run_id: str) -> tuple[bool, str]:
        """Change one cell on a new branch and the same cell on the main line to other
        values, merge: (was the conflict reported?, what happened, in words)."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """Footnotes for the table, from what the run found out (``details``)."""
        return []

    def close(self) -> None:
        """Release everything (stores stay on disk until the driver removes ``ctx.tmp``)."""


def dir_bytes(path: str) -> int:
    """Bytes of every file under ``path``."""
    total = 0
    for folder, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(folder, f))
    return total


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` as float32 (what the systems store)."""
    return np.asarray(v, dtype=np.float32)
