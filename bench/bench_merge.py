#!/usr/bin/env python
"""loomdb merge and diff benchmarks: the cost of a merge follows the changes, not the table.

A branch with exactly 1,000 changed rows (500 updates, 300 inserts, 200
deletes) is diffed against main and merged into main, on a narrow table of
100,000 and of 1,000,000 rows; the goal is the same time at both sizes
(within 1.5x) and under 100 ms. The brief's ``iterations`` row (a 1536-float
embedding, a 4 KB JSON state) is measured the same way at 100,000 rows.

    python bench/bench_merge.py            # default: 100k and 1M rows, iterations at 100k
    python bench/bench_merge.py --quick    # 10k and 100k rows, iterations at 10k: a sanity run

Results: a Rich table on stdout, ``bench/results/merge-<date>[-quick].json``
and the table between the ``merge-bench`` markers of ``docs/benchmarks.md``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _report  # noqa: E402
from _report import (  # noqa: E402
    close_quietly,
    command_line,
    describe,
    log,
    machine,
    met_text,
    remove_store,
    stats,
    tmp_filesystem,
    write_json,
)
from _workload import LOOM_INDEX, LOOM_INSERT, LOOM_SCHEMA, Workload, batched, run_name  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results"
MARK_START = "<!-- merge-bench:start -->"
MARK_END = "<!-- merge-bench:end -->"
SECTION = "## Merge and diff"

NARROW_SCHEMA = "CREATE TABLE t (id INT PRIMARY KEY, a INT, b TEXT, c DOUBLE PRECISION)"
NARROW_INSERT = "INSERT INTO t (id, a, b, c) VALUES (%s, %s, %s, %s)"
NARROW_UPDATE = "UPDATE t SET a = a + 1, b = %s WHERE id = %s"
NARROW_DELETE = "DELETE FROM t WHERE id = %s"

ITER_UPDATE = (
    "UPDATE iterations SET tokens_used = tokens_used + 1, observation = %s WHERE run_id = %s AND step = %s"
)
ITER_DELETE = "DELETE FROM iterations WHERE run_id = %s AND step = %s"

pc = time.perf_counter_ns


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mode: str = "default"
    sizes: tuple[int, ...] = (100_000, 1_000_000)  # rows on main of the narrow table
    updates: int = 500  # per branch: rows updated ...
    inserts: int = 300  # ... inserted ...
    deletes: int = 200  # ... and deleted, chosen by id
    branches: int = 7  # fresh branches per size, each diffed and merged into main
    warmup: int = 1  # of which the first ones are discarded
    load_batch: int = 10_000  # executemany batch size while loading
    iter_runs: int = 100  # iterations table: runs ...
    iter_steps: int = 1_000  # ... times steps per run (100k rows)
    iter_branches: int = 5
    durability: str = "full"
    seed: int = 0

    @property
    def changed(self) -> int:
        return self.updates + self.inserts + self.deletes

    @property
    def iter_rows(self) -> int:
        return self.iter_runs * self.iter_steps


def make_config(args: argparse.Namespace) -> Config:
    cfg = Config(mode="quick", sizes=(10_000, 100_000), iter_steps=100) if args.quick else Config()
    cfg.seed = args.seed
    return cfg


# --------------------------------------------------------------------------- metrics


@dataclass
class Metric:
    key: str
    name: str
    unit: str  # "ms", "×" or "rows/s"
    value: float | None = None  # the median (ms), the ratio or the rate
    p95: float | None = None
    goal: str = "—"
    met: bool | None = None
    note: str = ""
    error: str | None = None


class Report(_report.Report):
    def find(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key and not m.error), None)

    def failed(self, key: str, name: str, exc: BaseException) -> None:
        self.add(Metric(key, name, "", error=f"{type(exc).__name__}: {exc}", met=False))


GOAL_MS = 100.0
GOAL_RATIO = 1.5


def time_metric(key: str, name: str, ns: Sequence[int], goal: bool = True, note: str = "") -> Metric:
    s = stats(ns)
    median, p95 = s["median_us"] / 1e3, s["p95_us"] / 1e3
    if goal:
        return Metric(key, name, "ms", median, p95, f"< {GOAL_MS:g} ms", median < GOAL_MS, note)
    return Metric(key, name, "ms", median, p95, "—", None, note)


# --------------------------------------------------------------------------- one branch, one merge


@dataclass
class Sample:
    diff_ns: int
    stat_ns: int
    merge_ns: int


def diff_and_merge(db: Any, name: str, expected: tuple[int, int, int]) -> Sample:
    """Time ``list(db.diff("main", name))``, ``db.diff_stat`` and ``db.merge(name)`` into main,
    and check that each saw exactly the branch's changes."""
    added, modified, deleted = expected
    t0 = pc()
    changes = list(db.diff("main", name))
    t1 = pc()
    stat = db.diff_stat("main", name)
    t2 = pc()
    result = db.merge(name)
    t3 = pc()
    kinds = {k: sum(c.kind == k for c in changes) for k in ("added", "modified", "removed")}
    if (kinds["added"], kinds["modified"], kinds["removed"]) != expected:
        raise RuntimeError(f"diff of {name} saw {kinds}, expected {expected}")
    if sum(s.added + s.modified + s.removed for s in stat.values()) != sum(expected):
        raise RuntimeError(f"diff_stat of {name} saw {stat}, expected {expected}")
    if (result.added, result.modified, result.deleted) != expected or result.commit is None:
        raise RuntimeError(f"merge of {name} did {result}, expected {expected}")
    return Sample(t1 - t0, t2 - t1, t3 - t2)


def run_branches(
    db: Any, count: int, prefix: str, change: Callable[[Any, int], None], expected: tuple[int, int, int]
) -> list[Sample]:
    """``count`` times: fork a fresh branch from main's head, change it, diff it and merge it."""
    out = []
    for i in range(count):
        name = f"{prefix}-{i}"
        branch = db.branch(name)
        with branch.transaction(message=f"{expected} changes"):
            change(branch, i)
        branch.close()
        gc.collect()
        out.append(diff_and_merge(db, name, expected))
    return out


def record(report: Report, key: str, label: str, samples: list[Sample], warmup: int, goal: bool) -> None:
    kept = samples[warmup:]
    report.add(time_metric(f"diff_{key}", f"diff, {label}", [s.diff_ns for s in kept], goal))
    report.add(time_metric(f"diff_stat_{key}", f"diff_stat, {label}", [s.stat_ns for s in kept], False))
    report.add(time_metric(f"merge_{key}", f"merge into main, {label}", [s.merge_ns for s in kept], goal))
    report.details[key] = {
        "diff_ms": [s.diff_ns / 1e6 for s in samples],
        "diff_stat_ms": [s.stat_ns / 1e6 for s in samples],
        "merge_ms": [s.merge_ns / 1e6 for s in samples],
        "warmup_discarded": warmup,
    }


# --------------------------------------------------------------------------- benchmarks


def bench_narrow(tmp: str, size: int, cfg: Config, report: Report) -> None:
    import loomdb

    path = os.path.join(tmp, f"narrow-{size}.loom")
    db = loomdb.connect(path, durability=cfg.durability)
    try:
        db.execute(NARROW_SCHEMA)
        log(f"  loading {size:,} rows")
        t0 = pc()
        with db.transaction(message=f"load {size} rows"):
            for start in range(0, size, cfg.load_batch):
                ids = range(start, min(size, start + cfg.load_batch))
                db.executemany(NARROW_INSERT, [(i, i % 1000, f"row-{i}", i / 3) for i in ids])
        load_s = (pc() - t0) / 1e9
        report.add(
            Metric(f"load_{size}", f"load {size:,} rows (one transaction), rows/s", "rows/s", size / load_s)
        )
        # Each branch updates and deletes rows no earlier branch touched, and
        # inserts ids above the table, so every branch changes exactly 1,000 rows.
        order = np.random.default_rng(cfg.seed).permutation(size)
        touched = cfg.updates + cfg.deletes

        def change(branch: Any, i: int) -> None:
            ids = order[i * touched : (i + 1) * touched].tolist()
            branch.executemany(NARROW_UPDATE, [(f"branch-{i}", x) for x in ids[: cfg.updates]])
            first = size + i * cfg.inserts
            branch.executemany(
                NARROW_INSERT, [(x, x % 1000, f"new-{x}", x / 3) for x in range(first, first + cfg.inserts)]
            )
            branch.executemany(NARROW_DELETE, [(x,) for x in ids[cfg.updates :]])

        log(f"  {cfg.branches} branches of {cfg.changed:,} changed rows: diff and merge")
        samples = run_branches(
            db, cfg.branches, f"change-{size}", change, (cfg.inserts, cfg.updates, cfg.deletes)
        )
        record(
            report,
            f"narrow_{size}",
            f"{cfg.changed:,} changed rows, t at {size:,} rows",
            samples,
            cfg.warmup,
            True,
        )
    finally:
        close_quietly(db)
        remove_store(path)


def bench_iterations(tmp: str, cfg: Config, report: Report) -> None:
    import loomdb

    path = os.path.join(tmp, "iterations.loom")
    wl = Workload(seed=cfg.seed)
    db = loomdb.connect(path, durability=cfg.durability)
    try:
        db.execute(LOOM_SCHEMA)
        db.execute(LOOM_INDEX)
        log(f"  loading {cfg.iter_rows:,} iterations rows")
        with db.transaction(message="load"):
            for batch in batched(wl.rows(cfg.iter_runs, cfg.iter_steps), 1_000):
                db.executemany(LOOM_INSERT, batch)
        pairs = [(r, s) for s in range(cfg.iter_steps) for r in range(cfg.iter_runs)]
        order = np.random.default_rng(cfg.seed + 1).permutation(len(pairs))
        touched = cfg.updates + cfg.deletes
        per_step = -(-cfg.inserts // cfg.iter_runs)  # new steps per run and branch

        def change(branch: Any, i: int) -> None:
            chosen = [pairs[k] for k in order[i * touched : (i + 1) * touched].tolist()]
            branch.executemany(
                ITER_UPDATE, [(f"revised on branch {i}", run_name(r), s) for r, s in chosen[: cfg.updates]]
            )
            new = [
                wl.row(run_name(k % cfg.iter_runs), cfg.iter_steps + i * per_step + k // cfg.iter_runs)
                for k in range(cfg.inserts)
            ]
            branch.executemany(LOOM_INSERT, new)
            branch.executemany(ITER_DELETE, [(run_name(r), s) for r, s in chosen[cfg.updates :]])

        log(f"  {cfg.iter_branches} branches of {cfg.changed:,} changed rows: diff and merge")
        samples = run_branches(db, cfg.iter_branches, "iter", change, (cfg.inserts, cfg.updates, cfg.deletes))
        record(
            report,
            f"iterations_{cfg.iter_rows}",
            f"{cfg.changed:,} changed rows, iterations at {cfg.iter_rows:,} rows",
            samples,
            cfg.warmup,
            # The issue sets the time goal on the narrow table and asks for the
            # brief's ~12 KB row to be reported: merging writes every merged
            # row again as a version on the target, so this moves ~12 MB.
            False,
        )
    finally:
        close_quietly(db)


def add_ratios(report: Report, cfg: Config) -> None:
    small, big = cfg.sizes[0], cfg.sizes[-1]
    for op in ("diff", "merge"):
        a, b = report.find(f"{op}_narrow_{small}"), report.find(f"{op}_narrow_{big}")
        if a is None or b is None or not a.value:
            continue
        ratio = b.value / a.value
        report.add(
            Metric(
                f"{op}_ratio",
                f"{op}: {big:,} / {small:,} rows",
                "×",
                ratio,
                None,
                f"≤ {GOAL_RATIO:g}× (cost follows the changes)",
                ratio <= GOAL_RATIO,
                f"{a.value:.1f} ms → {b.value:.1f} ms",
            )
        )


def run(cfg: Config) -> Report:
    report = Report(cfg)
    tmp = tempfile.mkdtemp(prefix="loomdb-bench-merge-")
    steps = len(cfg.sizes) + 1
    try:
        for n, size in enumerate(cfg.sizes, 1):
            log(f"{n}/{steps} narrow table, {size:,} rows")
            try:
                bench_narrow(tmp, size, cfg, report)
            except Exception as exc:
                traceback.print_exc()
                report.failed(f"narrow_{size}", f"diff and merge at {size:,} rows", exc)
            gc.collect()
        add_ratios(report, cfg)
        log(f"{steps}/{steps} iterations table, {cfg.iter_rows:,} rows")
        try:
            bench_iterations(tmp, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed("iterations", f"diff and merge, iterations at {cfg.iter_rows:,} rows", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("done")
    return report


# --------------------------------------------------------------------------- output

HEADERS = ["metric", "median", "p95", "goal", "met?"]
MARKERS = (MARK_START, MARK_END)


def fmt(v: float | None, unit: str) -> str:
    return _report.fmt(v, unit, ms_places=1)


def rows_of(report: Report) -> list[list[str]]:
    out = []
    for m in report.metrics:
        if m.error:
            out.append([m.name, "error", "—", m.goal, "error: " + m.error[:120]])
            continue
        out.append([m.name, fmt(m.value, m.unit), fmt(m.p95, m.unit), m.goal, met_text(m.met)])
    return out


def print_table(report: Report, mach: dict[str, Any]) -> None:
    title = f"loomdb merge and diff benchmarks ({report.config.mode})"
    _report.print_table(title, HEADERS, rows_of(report), report.metrics, describe(mach))


def markdown(report: Report, mach: dict[str, Any], command: str, date: str) -> str:
    cfg = report.config
    sizes = " and ".join(f"{s:,}" for s in cfg.sizes)
    workload = (
        f"Workload: `t (id INT PRIMARY KEY, a INT, b TEXT, c DOUBLE PRECISION)` with {sizes} rows on "
        f"main; each of {cfg.branches} fresh branches per size ({cfg.warmup} discarded) changes "
        f"{cfg.changed:,} rows ({cfg.updates} updates, {cfg.inserts} inserts, {cfg.deletes} deletes, "
        f"by id), then `list(db.diff('main', branch))`, `db.diff_stat('main', branch)` and "
        f"`db.merge(branch)` into main are timed. The brief's `iterations` rows: {cfg.iter_rows:,} on "
        f"main, {cfg.iter_branches} branches of the same {cfg.changed:,} changes. "
        f"durability={cfg.durability}. Medians."
    )
    return _report.markdown(
        MARKERS,
        "bench/bench_merge.py",
        date,
        cfg.mode,
        command,
        describe(mach),
        workload,
        HEADERS,
        rows_of(report),
        report.metrics,
    )


def update_docs(path: Path, block: str) -> None:
    """Replace the block between the markers, or append a "Merge and diff" section."""
    _report.update_docs(path, block, MARKERS, heading=f"{SECTION}\n\n")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fast sanity run: 10k and 100k rows")
    _report.add_output_args(ap)
    args = ap.parse_args(argv)

    cfg = make_config(args)
    command = command_line("bench/bench_merge.py", argv)
    started = dt.datetime.now(dt.UTC)
    report = run(cfg)
    mach = machine(tmp_filesystem=tmp_filesystem())
    date = started.strftime("%Y-%m-%d")
    print_table(report, mach)

    if not args.no_json:
        out = RESULTS / f"merge-{date}{'-quick' if cfg.mode == 'quick' else ''}.json"
        write_json(out, report, mach, command, started)
    if not args.no_docs:
        update_docs(DOCS, markdown(report, mach, command, date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
