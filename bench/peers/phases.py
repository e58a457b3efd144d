"""The timed phases of bench_peers.py, each interleaved across the systems.

Every phase hands the same rows or arguments to every peer and rotates which
peer goes first in each block or round, so machine noise hits them alike;
warm-up calls are made and discarded first. A peer whose call raises is
marked with the error and left out of the rest of that phase; a capability a
peer lacks (``peer.absent``) is never called.

- ``persist_phase``: blocks of steps, round-robin; a peer whose persist time
  passes the budget stops there (its curve ends early). After each block the
  page cache is flushed (``os.sync``, untimed), so a system that does not
  fsync does not hand its writeback to the next system's fsyncs.
- ``load``: the bulk store, batch by batch, with the exact top-10 of the query
  vectors kept up to date from the same rows (``ExactTop10``).
- ``rounds``: any per-call operation (resume, top-10, branch) in rounds.
- ``merge_phase`` / ``conflict_phase``: one branch of 1,000 changed rows per
  round, the merge timed; one conflicting edit, reported or not.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from _report import log, pc, timed_each
from _workload import EMBED_DIM, Workload, run_name

from .base import BRANCH, CONFLICT, MERGE, Peer


def rotated(items: Sequence[Any], i: int) -> list[Any]:
    k = i % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


# --------------------------------------------------------------------------- persist


@dataclass
class PersistResult:
    times: list[int] = field(default_factory=list)  # ns per timed step, in step order
    spent_s: float = 0.0
    stopped: str | None = None  # why it stopped before the last step
    rows: int = 0  # rows in the store (warm-up included)
    bytes: int | None = None
    error: str | None = None


def persist_rows(wl: Workload, start: int, stop: int) -> list[list]:
    """Steps ``start..stop-1`` of the persist run: one run id per 1,000 steps."""
    return [wl.row(run_name(i // 1000, "persist"), i % 1000) for i in range(start, stop)]


def persist_phase(
    peers: list[Peer], wl: Workload, steps: int, block: int, warmup: int, budget_s: float
) -> dict[str, PersistResult]:
    out = {p.key: PersistResult() for p in peers}
    live: list[Peer] = []
    for p in peers:
        try:
            p.open_persist()
            live.append(p)
        except Exception as exc:
            traceback.print_exc()
            out[p.key].error = error_text(exc)
    warm = [wl.row("warmup", s) for s in range(warmup)]
    for p in live:
        try:
            timed_each(p.persist, warm)
            out[p.key].rows = warmup
        except Exception as exc:
            traceback.print_exc()
            out[p.key].error = error_text(exc)
    live = [p for p in live if out[p.key].error is None]
    t_start = time.monotonic()
    for b, start in enumerate(range(0, steps, block)):
        rows = persist_rows(wl, start, min(start + block, steps))
        for p in rotated(live, b):
            res = out[p.key]
            if res.error or res.stopped:
                continue
            try:
                ns = timed_each(p.persist, rows)
            except Exception as exc:
                traceback.print_exc()
                res.error = error_text(exc)
                continue
            os.sync()  # untimed: what this block left unsynced is not flushed by the next one's fsync
            res.times.extend(ns)
            res.rows += len(rows)
            res.spent_s += sum(ns) / 1e9
            if res.spent_s > budget_s and start + block < steps:
                res.stopped = f"stopped after {len(res.times):,} steps: its persist time passed the {budget_s:g} s budget"
                log(f"  persist: {p.name} {res.stopped}")
        if b % 10 == 9:
            log(f"  persist {start + block:,}/{steps:,} steps ({time.monotonic() - t_start:.0f} s)")
    for p in peers:
        res = out[p.key]
        if res.error and not res.rows:
            p.close()
            continue
        try:
            res.bytes = p.persist_bytes()
        except Exception as exc:
            traceback.print_exc()
            res.error = res.error or f"measuring bytes: {error_text(exc)}"
        p.close()
    return out


# --------------------------------------------------------------------------- the bulk store


class ExactTop10:
    """The exact cosine top-10 of each query vector over the rows seen so far (float32,
    as the systems store them), by (run_id, step)."""

    def __init__(self, queries: np.ndarray) -> None:
        q = np.asarray(queries, dtype=np.float32)
        self.q = q / np.linalg.norm(q, axis=1, keepdims=True)
        self.best: list[list[tuple[float, tuple[str, int]]]] = [[] for _ in range(len(q))]

    def add(self, rows: list[list]) -> None:
        e = np.stack([np.asarray(r[4], dtype=np.float32) for r in rows])
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        sims = e @ self.q.T  # (rows, queries)
        for j in range(self.q.shape[0]):
            top = np.argpartition(-sims[:, j], 10)[:10] if len(rows) > 10 else range(len(rows))
            merged = self.best[j] + [(float(sims[i, j]), (rows[i][0], rows[i][1])) for i in top]
            self.best[j] = sorted(merged, key=lambda x: -x[0])[:10]

    def ids(self, j: int) -> set[tuple[str, int]]:
        return {k for _, k in self.best[j]}


def query_vectors(wl: Workload, n: int, seed: int, noise: float) -> np.ndarray:
    """``n`` query vectors: pool embeddings plus noise (none equals a stored row)."""
    rng = np.random.default_rng([seed, 11])
    return np.stack(
        [wl.pool[k % len(wl.pool)].embedding + rng.standard_normal(EMBED_DIM) * noise for k in range(n)]
    )


def bulk_batches(wl: Workload, runs: int, first_step: int, steps: int, batch: int, seed: int, noise: float):
    """Rows of ``runs`` runs for steps ``first_step..first_step+steps-1``, step-major, in
    batches; each row's embedding is its pool embedding plus its own noise, so every
    row is distinct and nearest neighbours are well defined."""
    rows: list[list] = []
    b = 0
    for row in wl.rows(runs, steps, first_step=first_step):
        rows.append(row)
        if len(rows) == batch:
            yield perturbed(rows, (first_step, b), seed, noise)
            rows, b = [], b + 1
    if rows:
        yield perturbed(rows, (first_step, b), seed, noise)


def perturbed(rows: list[list], where: tuple[int, int], seed: int, noise: float) -> list[list]:
    rng = np.random.default_rng([seed, 7, *where])
    extra = rng.standard_normal((len(rows), EMBED_DIM)) * noise
    for row, e in zip(rows, extra, strict=True):
        row[4] = row[4] + e
    return rows


def load(peers: list[Peer], batches, exact: ExactTop10, seconds: dict[str, float], errors: dict) -> int:
    """Hand every batch to every live peer (rotating the order); returns rows loaded."""
    n = 0
    for i, rows in enumerate(batches):
        exact.add(rows)
        for p in rotated(peers, i):
            if p.key in errors:
                continue
            t0 = pc()
            try:
                p.bulk_load(rows)
            except Exception as exc:
                traceback.print_exc()
                errors[p.key] = f"loading: {error_text(exc)}"
            seconds[p.key] = seconds.get(p.key, 0.0) + (pc() - t0) / 1e9
        n += len(rows)
        if i % 20 == 19:
            log(f"  loaded {n:,} rows")
    return n


# --------------------------------------------------------------------------- rounds


@dataclass
class Timing:
    rounds: list[list[int]] = field(default_factory=list)  # ns per call, per round
    error: str | None = None

    def summary(self, unit: str = "ms") -> dict[str, Any] | None:
        """Median of the round medians, the pooled p95, and each round's median."""
        if not self.rounds or self.error:
            return None
        div = {"us": 1e3, "ms": 1e6}[unit]
        meds = [float(np.median(r)) / div for r in self.rounds]
        pooled = np.concatenate([np.asarray(r, dtype=np.float64) for r in self.rounds]) / div
        return {
            f"median_{unit}": float(np.median(meds)),
            f"p95_{unit}": float(np.percentile(pooled, 95)),
            f"round_medians_{unit}": [round(m, 4) for m in meds],
            "n": int(pooled.size),
        }


def rounds(
    peers: list[Peer],
    make: Callable[[Peer], Callable[[Any], Any]],
    per_round: list[list[Any]],
    warm: list[Any],
) -> dict[str, Timing]:
    """Time ``make(peer)(arg)`` for each arg of each round, one peer after another
    (rotating the first), after the warm-up args (discarded)."""
    out = {p.key: Timing() for p in peers}
    fns: dict[str, Callable[[Any], Any]] = {}
    for p in peers:
        try:
            fns[p.key] = make(p)
            timed_each(fns[p.key], warm)
        except Exception as exc:
            traceback.print_exc()
            out[p.key].error = error_text(exc)
    for r, args in enumerate(per_round):
        for p in rotated(peers, r):
            t = out[p.key]
            if t.error:
                continue
            try:
                t.rounds.append(timed_each(fns[p.key], args))
            except Exception as exc:
                traceback.print_exc()
                t.error = error_text(exc)
    return out


def branch_phase(peers: list[Peer], label: str, creations: int, n_rounds: int, start_run: str) -> dict:
    """``creations`` branches per peer per round, after 2 discarded."""
    able = [p for p in peers if BRANCH not in p.absent]
    for p in able:
        p.start_branches(start_run)
    per_round = [[f"bench/{label}-r{r}-{i}" for i in range(creations)] for r in range(n_rounds)]
    return rounds(able, lambda p: p.branch, per_round, [f"bench/{label}-warm-{i}" for i in range(2)])


# --------------------------------------------------------------------------- merge and conflicts


@dataclass
class MergeResult:
    ns: list[int] = field(default_factory=list)  # timed merges (the first, discarded, not included)
    rows: list[int] = field(default_factory=list)  # rows changed on each branch
    applied: list[bool] = field(default_factory=list)
    error: str | None = None


def merge_phase(peers: list[Peer], reps: int) -> dict[str, MergeResult]:
    """Round 0 (discarded) and ``reps`` timed rounds: each peer branches, changes the
    rows of run ``i`` there (untimed), then merges into its main line (timed)."""
    able = [p for p in peers if MERGE not in p.absent]
    out = {p.key: MergeResult() for p in able}
    for r in range(reps + 1):
        for p in rotated(able, r):
            res = out[p.key]
            if res.error:
                continue
            name, run_id = f"bench/merge-{r}", run_name(r)
            try:
                changed = p.prepare_merge(name, run_id)
                t0 = pc()
                p.merge(name)
                ns = pc() - t0
                ok = p.check_merge(run_id)
            except Exception as exc:
                traceback.print_exc()
                res.error = error_text(exc)
                continue
            if r:
                res.ns.append(ns)
                res.rows.append(changed)
                res.applied.append(ok)
    return out


def conflict_phase(peers: list[Peer], run_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in peers:
        if CONFLICT in p.absent:
            continue
        try:
            reported, what = p.conflict(run_id)
            out[p.key] = {"reported": reported, "what": what}
        except Exception as exc:
            traceback.print_exc()
            out[p.key] = {"reported": None, "what": "", "error": error_text(exc)}
    return out
