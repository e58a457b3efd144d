#!/usr/bin/env python
"""loomdb engine benchmarks: the agent-loop workload against raw apsw, in one run.

Every loomdb number is measured next to raw apsw doing the same work on the
same machine in the same process (the floor loomdb is judged against): the
same columns in a plain table with the same index, WAL, the same
``synchronous`` setting; the raw side also pays for ``json.dumps`` of the state,
``astype(np.float32).tobytes()`` of the embedding and a Python-computed
timestamp. Timed loops alternate between loomdb and raw in blocks so machine
noise hits both sides alike; warm-up iterations are discarded.

    python bench/bench_engine.py            # default: 20k-step persist run, 100k-row resume store
    python bench/bench_engine.py --quick    # ~2k steps, 10k rows: a sanity run
    python bench/bench_engine.py --steps 100000
    python bench/bench_engine.py --profile  # cProfile of loomdb's persist loop, nothing else

Results: a Rich table on stdout, ``bench/results/engine-<date>[-quick].json``
and the table between the ``engine-bench`` markers of ``docs/benchmarks.md``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
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
    fmt,
    fmt_value,
    interleaved,
    log,
    met_text,
    remove_store,
    stats,
    timed_each,
    tmp_filesystem,
    write_json,
)
from _workload import (  # noqa: E402
    LOOM_INDEX,
    LOOM_INSERT,
    LOOM_RESUME,
    LOOM_SCAN,
    LOOM_SCHEMA,
    RAW_INDEX,
    RAW_INSERT,
    RAW_RESUME,
    RAW_SCAN,
    RAW_SCHEMA,
    Workload,
    batched,
    raw_params,
    run_name,
)

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results"
MARK_START = "<!-- engine-bench:start -->"
MARK_END = "<!-- engine-bench:end -->"

pc = time.perf_counter_ns


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mode: str = "default"
    steps: int = 20_000  # persist long run (durability="full")
    normal_steps: int = 5_000  # persist run at durability="normal"
    block: int = 200  # steps per block before switching sides
    warmup: int = 200  # discarded steps/queries per side before timing
    runs: int = 100  # runs in the resume store
    steps_per_run: int = 1_000  # -> runs * steps_per_run rows (100k)
    load_batch: int = 1_000  # executemany batch size while loading
    branch_rows: int = 1_000  # rows written on the resume branch
    branch_runs: int = 10  # ... spread over this many runs
    queries: int = 4_000  # resume queries per side per case
    query_block: int = 100
    scan_reps: int = 15
    creations: int = 50  # branch creations per store size
    small_rows: int = 1_000  # rows in the small store of the branch-creation benchmark
    seed: int = 0

    @property
    def resume_rows(self) -> int:
        return self.runs * self.steps_per_run


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            mode="quick",
            steps=2_000,
            normal_steps=1_000,
            warmup=100,
            steps_per_run=100,
            queries=1_000,
            scan_reps=7,
        )
    else:
        cfg = Config()
    if args.steps is not None:
        cfg.steps = args.steps
    cfg.seed = args.seed
    if cfg.steps < 2_000:
        raise SystemExit("--steps must be at least 2000 (flatness compares two 1000-step windows)")
    return cfg


# --------------------------------------------------------------------------- helpers


def open_raw(path: str, synchronous: str) -> apsw.Connection:
    conn = apsw.Connection(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(RAW_SCHEMA)
    conn.execute(RAW_INDEX)
    return conn


def open_loom(path: str, durability: str):
    import loomdb

    db = loomdb.connect(path, durability=durability)
    db.execute(LOOM_SCHEMA)
    db.execute(LOOM_INDEX)
    return db


def checkpointed_size(path: str) -> int:
    """Bytes of ``path`` plus its -wal after ``PRAGMA wal_checkpoint(TRUNCATE)``.

    Runs the checkpoint through a fresh raw apsw connection, so it works the
    same for a closed loomdb store and a closed raw database."""
    conn = apsw.Connection(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    total = os.path.getsize(path)
    wal = path + "-wal"
    if os.path.exists(wal):
        total += os.path.getsize(wal)
    return total


# --------------------------------------------------------------------------- metrics


@dataclass
class Metric:
    key: str
    name: str
    unit: str
    loomdb: float | None = None
    raw: float | None = None
    compare: str | None = None  # "ratio" (loomdb / raw), "delta" (loomdb - raw) or None
    value: float | None = None  # the ratio or delta
    goal: str = "—"
    met: bool | None = None
    note: str = ""
    error: str | None = None


class Report(_report.Report):
    def failed(self, keys: Sequence[tuple[str, str]], exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        for key, name in keys:
            self.add(Metric(key=key, name=name, unit="", error=text, met=False))


def ratio_metric(key, name, unit, loom, raw, limit, goal=None, note="") -> Metric:
    r = loom / raw if raw else float("inf")
    return Metric(key, name, unit, loom, raw, "ratio", r, goal or f"≤ {limit:g}× raw", r <= limit, note)


def delta_metric(key, name, unit, loom, raw, limit, goal=None, note="") -> Metric:
    d = loom - raw
    return Metric(
        key,
        name,
        unit,
        loom,
        raw,
        "delta",
        d,
        goal or f"≤ raw + {limit:g} {unit}",
        d <= limit,
        note,
    )


def info_metric(key, name, unit, loom, raw, compare="ratio", note="") -> Metric:
    value = None
    if loom is not None and raw is not None:
        value = loom / raw if compare == "ratio" else loom - raw
    return Metric(key, name, unit, loom, raw, compare, value, "—", None, note)


# --------------------------------------------------------------------------- benchmarks


def bench_persist(tmp: str, wl: Workload, cfg: Config, durability: str, steps: int, report: Report) -> None:
    """Benchmarks 1 (persist one step) and 5 (disk bytes per step)."""
    sync = {"full": "FULL", "normal": "NORMAL"}[durability]
    loom_path = os.path.join(tmp, f"persist-{durability}.loom")
    raw_path = os.path.join(tmp, f"persist-{durability}.raw.db")
    db = open_loom(loom_path, durability)
    raw = open_raw(raw_path, sync)
    rcur = raw.cursor()

    def loom_step(row: list) -> None:
        db.execute(LOOM_INSERT, row)

    def raw_step(row: list) -> None:
        rcur.execute(RAW_INSERT, raw_params(row))

    sides = {"loomdb": loom_step, "raw": raw_step}

    # Warm-up: its own run id, discarded from the timings (the rows stay in both stores).
    warm = [wl.row("warmup", s) for s in range(cfg.warmup)]
    interleaved(sides, [warm])

    def rows_for(start: int, stop: int) -> list[list]:
        # One run is 1000 steps; the long run is a sequence of runs.
        return [wl.row(run_name(i // 1000, "persist"), i % 1000) for i in range(start, stop)]

    times: dict[str, list[int]] = {"loomdb": [], "raw": []}
    t_start = time.monotonic()
    for b, start in enumerate(range(0, steps, cfg.block)):
        block = rows_for(start, min(start + cfg.block, steps))
        order = ["loomdb", "raw"] if b % 2 == 0 else ["raw", "loomdb"]
        for n in order:
            times[n].extend(timed_each(sides[n], block))
        if b % 50 == 49:
            log(f"  persist[{durability}] {start + cfg.block}/{steps} steps")
    log(f"  persist[{durability}] {steps} steps x 2 sides in {time.monotonic() - t_start:.1f}s")
    rcur.close()

    lo, ra = stats(times["loomdb"]), stats(times["raw"])
    first = {n: stats(times[n][:1000])["median_us"] for n in times}
    last = {n: stats(times[n][-1000:])["median_us"] for n in times}
    report.details[f"persist_{durability}"] = {
        "steps": steps,
        "loomdb": lo,
        "raw": ra,
        "first_1k_median_us": first,
        "last_1k_median_us": last,
    }

    if durability == "full":
        report.add(
            ratio_metric(
                "persist_full_median",
                "persist step, full: median",
                "µs",
                lo["median_us"],
                ra["median_us"],
                1.25,
            )
        )
        report.add(
            info_metric("persist_full_p95", "persist step, full: p95", "µs", lo["p95_us"], ra["p95_us"])
        )
        # Flat: loomdb's last-1k median within 1.2x of its first-1k median, or its drift
        # within 1.1x of raw's (the ratio column: (last/first loomdb) / (last/first raw)
        # = (loomdb/raw over the last 1k) / (loomdb/raw over the first 1k)), so a
        # disk that slows down or speeds up mid-run is not read as loomdb growth.
        drift_l = last["loomdb"] / first["loomdb"]
        drift_r = last["raw"] / first["raw"]
        relative = drift_l / drift_r
        report.add(
            Metric(
                "persist_full_flatness",
                f"persist flatness: median last 1k / first 1k of {steps} steps",
                "×",
                drift_l,
                drift_r,
                "ratio",
                relative,
                "loomdb ≤ 1.2× or ratio ≤ 1.1×",
                drift_l <= 1.2 or relative <= 1.1,
                note=(
                    f"loomdb {first['loomdb']:.1f}→{last['loomdb']:.1f} µs, "
                    f"raw {first['raw']:.1f}→{last['raw']:.1f} µs"
                ),
            )
        )
    else:
        report.add(
            delta_metric(
                "persist_normal_median",
                "persist step, normal: median",
                "µs",
                lo["median_us"],
                ra["median_us"],
                40,
            )
        )
        report.add(
            info_metric(
                "persist_normal_p95",
                "persist step, normal: p95",
                "µs",
                lo["p95_us"],
                ra["p95_us"],
                compare="delta",
            )
        )

    db.close()
    raw.close()
    if durability == "full":
        n = steps + cfg.warmup
        lb, rb = checkpointed_size(loom_path), checkpointed_size(raw_path)
        report.details["disk"] = {"rows": n, "loomdb_bytes": lb, "raw_bytes": rb}
        report.add(
            ratio_metric("disk_bytes_per_step", f"disk bytes per step ({n} steps)", "B", lb / n, rb / n, 1.05)
        )
    for p in (loom_path, raw_path):
        remove_store(p)


def load_stores(tmp: str, wl: Workload, cfg: Config, report: Report):
    """The resume store: runs x steps_per_run rows, bulk-loaded on both sides."""
    n = cfg.resume_rows
    db = open_loom(os.path.join(tmp, "resume.loom"), "full")
    t0 = pc()
    with db.transaction(message="bulk load"):
        for batch in batched(wl.rows(cfg.runs, cfg.steps_per_run), cfg.load_batch):
            db.executemany(LOOM_INSERT, batch)
    t_loom = (pc() - t0) / 1e9

    raw = open_raw(os.path.join(tmp, "resume.raw.db"), "FULL")
    cur = raw.cursor()
    t0 = pc()
    with raw:  # one transaction
        cur.executemany(RAW_INSERT, (raw_params(r) for r in wl.rows(cfg.runs, cfg.steps_per_run)))
    t_raw = (pc() - t0) / 1e9
    cur.close()
    log(f"  loaded {n} rows: loomdb {t_loom:.1f}s, raw {t_raw:.1f}s")
    report.add(
        info_metric(
            "bulk_load_rows_per_s",
            f"bulk load {n} rows (one txn), rows/s",
            "rows/s",
            n / t_loom,
            n / t_raw,
        )
    )
    return db, raw


def resume_fns(handle: Any, raw: apsw.Connection):
    rcur = raw.cursor()

    def loom_resume(run_id: str) -> None:
        last = handle.execute(LOOM_RESUME, [run_id]).fetchone()
        last["step"], last["state_snapshot"]["plan"]

    def raw_resume(run_id: str) -> None:
        step, state = rcur.execute(RAW_RESUME, (run_id,)).fetchone()
        json.loads(state)["plan"]

    return {"loomdb": loom_resume, "raw": raw_resume}, rcur


def measure_resume(sides, run_ids: list[str], cfg: Config) -> dict[str, list[int]]:
    interleaved(sides, [run_ids[: cfg.warmup]])
    blocks = [run_ids[i : i + cfg.query_block] for i in range(0, len(run_ids), cfg.query_block)]
    return interleaved(sides, blocks)


def bench_resume_scan(db, raw, wl: Workload, cfg: Config, report: Report):
    """Benchmarks 2 (resume on main and on a branch) and 3 (full scan on main)."""
    rng = np.random.default_rng(cfg.seed + 1)
    n = cfg.resume_rows

    # Sanity: both sides answer the same.
    a = db.execute(LOOM_RESUME, [run_name(3)]).fetchone()
    b = raw.execute(RAW_RESUME, (run_name(3),)).fetchone()
    assert a["step"] == b[0] == cfg.steps_per_run - 1, (a["step"], b[0])
    assert a["state_snapshot"] == json.loads(b[1])

    run_ids = [run_name(int(i)) for i in rng.integers(cfg.runs, size=cfg.warmup + cfg.queries)]
    sides, rcur = resume_fns(db, raw)
    t = measure_resume(sides, run_ids, cfg)
    rcur.close()
    lo, ra = stats(t["loomdb"]), stats(t["raw"])
    report.details["resume_main"] = {"rows": n, "loomdb": lo, "raw": ra}
    report.add(
        delta_metric(
            "resume_main_median",
            f"resume latest step, main ({n} rows)",
            "µs",
            lo["median_us"],
            ra["median_us"],
            25,
        )
    )

    # Full scan on main.
    rcur = raw.cursor()
    c1 = db.execute(LOOM_SCAN).fetchone()
    c2 = rcur.execute(RAW_SCAN).fetchone()
    assert tuple(c1) == tuple(c2), (tuple(c1), c2)
    scan_sides = {
        "loomdb": lambda _: db.execute(LOOM_SCAN).fetchone(),
        "raw": lambda _: rcur.execute(RAW_SCAN).fetchone(),
    }
    interleaved(scan_sides, [[None, None]])  # warm-up
    t = interleaved(scan_sides, [[None]] * cfg.scan_reps)
    rcur.close()
    lo, ra = stats(t["loomdb"]), stats(t["raw"])
    report.details["scan_main"] = {"rows": n, "loomdb": lo, "raw": ra}
    report.add(
        ratio_metric(
            "scan_main_median",
            f"full scan count(*), max(step), main ({n} rows)",
            "ms",
            lo["median_us"] / 1e3,
            ra["median_us"] / 1e3,
            2,
        )
    )

    # A branch with ~1k rows of its own: branch_runs runs continue past their last step.
    br = db.branch("bench/resume")
    per_run = cfg.branch_rows // cfg.branch_runs
    new_rows = list(wl.rows(cfg.branch_runs, per_run, first_step=cfg.steps_per_run))
    t0 = pc()
    for batch in batched(iter(new_rows), per_run):  # one commit per ~100 rows
        br.executemany(LOOM_INSERT, batch)
    t_branch_write = (pc() - t0) / 1e9
    cur = raw.cursor()
    with raw:
        cur.executemany(RAW_INSERT, (raw_params(r) for r in new_rows))
    cur.close()
    a = br.execute(LOOM_RESUME, [run_name(0)]).fetchone()
    assert a["step"] == cfg.steps_per_run + per_run - 1, a["step"]
    a = db.execute(LOOM_RESUME, [run_name(0)]).fetchone()
    assert a["step"] == cfg.steps_per_run - 1, a["step"]  # main does not see the branch

    # Half the queries hit runs written on the branch, half runs inherited from main.
    written = rng.integers(cfg.branch_runs, size=cfg.warmup + cfg.queries)
    inherited = rng.integers(cfg.branch_runs, cfg.runs, size=cfg.warmup + cfg.queries)
    run_ids = [
        run_name(int(w if i % 2 else h)) for i, (w, h) in enumerate(zip(written, inherited, strict=True))
    ]
    sides, rcur = resume_fns(br, raw)
    t = measure_resume(sides, run_ids, cfg)
    rcur.close()
    lo, ra = stats(t["loomdb"]), stats(t["raw"])
    report.details["resume_branch"] = {
        "rows_main": n,
        "rows_branch": len(new_rows),
        "loomdb": lo,
        "raw": ra,
        "branch_write_s": t_branch_write,
    }
    report.add(
        delta_metric(
            "resume_branch_median",
            f"resume latest step, branch (+{len(new_rows)} rows)",
            "µs",
            lo["median_us"],
            ra["median_us"],
            25,
            note="raw: the same table holding main's and the branch's rows",
        )
    )
    # No br.close(): a derived handle shares the store's connection, and closing
    # it closes every handle on the store.


def bench_branch_create(tmp: str, big_db, big_path: str, wl: Workload, cfg: Config, report: Report) -> None:
    """Benchmark 4: branch creation on a small store and on the big one, interleaved.

    Measured at durability="full" (the goal) and again through durability="normal"
    handles on the same two stores, where no fsync hides loomdb's own cost.
    """
    small_path = os.path.join(tmp, "small.loom")
    small = open_loom(small_path, "full")
    with small.transaction(message="load"):
        for batch in batched(wl.rows(10, cfg.small_rows // 10), cfg.load_batch):
            small.executemany(LOOM_INSERT, batch)

    import loomdb

    handles: list[Any] = []
    opened: list[Any] = []
    for durability in ("full", "normal"):
        if durability == "full":
            dbs = {"small": small, "big": big_db}
        else:
            dbs = {
                "small": loomdb.connect(small_path, durability="normal"),
                "big": loomdb.connect(big_path, durability="normal"),
            }
            opened += dbs.values()

        def maker(db):
            def create(branch_name: str) -> None:
                handles.append(db.branch(branch_name))

            return create

        # Raw SQLite has no branches. Its column shows the nearest floor: one
        # autocommit INSERT of a one-row catalog record at the same synchronous
        # setting, the single commit that an O(1) branch creation cannot avoid.
        sync = "FULL" if durability == "full" else "NORMAL"
        raw = apsw.Connection(os.path.join(tmp, f"branches-{durability}.raw.db"))
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute(f"PRAGMA synchronous={sync}")
        raw.execute("CREATE TABLE branches (name TEXT UNIQUE, parent INT, fork INT, created TEXT)")
        rcur = raw.cursor()

        def raw_create(branch_name: str, rcur=rcur) -> None:
            rcur.execute(
                "INSERT INTO branches VALUES (?, 1, 1, ?)",
                (branch_name, dt.datetime.now(dt.UTC).isoformat(sep=" ")),
            )

        sides = {"small": maker(dbs["small"]), "big": maker(dbs["big"]), "raw": raw_create}
        interleaved(sides, [[f"bench/warm-{durability}-{i:03d}" for i in range(5)]])
        blocks = [[f"bench/create-{durability}-{i:04d}"] for i in range(cfg.creations)]
        t = interleaved(sides, blocks)
        handles.clear()  # not closed: closing a derived handle closes the whole store
        rcur.close()
        raw.close()
        s, b, r_ = stats(t["small"]), stats(t["big"]), stats(t["raw"])
        report.details[f"branch_create_{durability}"] = {
            "small_rows": cfg.small_rows,
            "big_rows": cfg.resume_rows,
            "small": s,
            "big": b,
            "raw_one_row_commit": r_,
        }
        floor = r_["median_us"] / 1e3
        note = f"raw: one autocommit one-row INSERT at synchronous={sync} (the commit floor)"
        for key, rows, st in (("small", cfg.small_rows, s), ("big", cfg.resume_rows, b)):
            report.add(
                Metric(
                    f"branch_create_{durability}_{key}",
                    f"branch creation at {rows} rows, {durability}",
                    "ms",
                    st["median_us"] / 1e3,
                    floor,
                    "ratio",
                    st["median_us"] / 1e3 / floor,
                    "< 0.5 ms",
                    st["median_us"] < 500,
                    note=note if key == "small" else "",
                )
            )
        r = b["median_us"] / s["median_us"]
        report.add(
            Metric(
                f"branch_create_{durability}_o1",
                f"branch creation: {cfg.resume_rows} / {cfg.small_rows} rows, {durability}",
                "×",
                None,
                None,
                "ratio",
                r,
                "≤ 1.5× (O(1))",
                r <= 1.5,
            )
        )
    for h in opened:
        close_quietly(h)
    small.close()


# --------------------------------------------------------------------------- output


HEADERS = ["metric", "loomdb", "raw apsw", "ratio / delta", "goal", "met?"]
MARKERS = (MARK_START, MARK_END)


def machine() -> dict[str, Any]:
    return _report.machine(tmp_filesystem=tmp_filesystem())


def rows_of(report: Report) -> list[list[str]]:
    out = []
    for m in report.metrics:
        if m.error:
            out.append([m.name, "error", "—", "—", m.goal, "error: " + m.error[:120]])
            continue
        value = fmt_value(m.value, m.compare, m.unit)
        out.append([m.name, fmt(m.loomdb, m.unit), fmt(m.raw, m.unit), value, m.goal, met_text(m.met)])
    return out


def print_table(report: Report, mach: dict[str, Any]) -> None:
    title = f"loomdb engine benchmarks ({report.config.mode})"
    _report.print_table(title, HEADERS, rows_of(report), report.metrics, describe(mach))


def markdown(report: Report, mach: dict[str, Any], command: str, date: str) -> str:
    cfg = report.config
    workload = (
        f"Workload: persist {cfg.steps:,} steps at durability=full and "
        f"{cfg.normal_steps:,} at normal; "
        f"resume/scan store {cfg.resume_rows:,} rows over {cfg.runs} runs plus a branch with "
        f"{cfg.branch_rows:,} rows; {cfg.queries:,} resume queries per side and case; "
        f"{cfg.scan_reps} scans; {cfg.creations} branch creations per size. Medians unless noted."
    )
    return _report.markdown(
        MARKERS,
        "bench/bench_engine.py",
        date,
        cfg.mode,
        command,
        describe(mach),
        workload,
        HEADERS,
        rows_of(report),
        report.metrics,
    )


DOC_SKELETON = """# Benchmarks

See `bench/README.md` for what each benchmark measures and how.

{block}
"""


def update_docs(path: Path, block: str) -> None:
    new_file = DOC_SKELETON.format(block=MARK_START + "\n" + MARK_END)
    _report.update_docs(path, block, MARKERS, new_file=new_file)


# --------------------------------------------------------------------------- main


def profile_persist(steps: int, seed: int) -> None:
    """cProfile loomdb's persist loop (durability=full) and print the top entries."""
    wl = Workload(seed=seed)
    tmp = tempfile.mkdtemp(prefix="loomdb-bench-")
    try:
        db = open_loom(os.path.join(tmp, "profile.loom"), "full")
        for s in range(200):
            db.execute(LOOM_INSERT, wl.row("warmup", s))
        rows = [wl.row(run_name(i // 1000, "p"), i % 1000) for i in range(steps)]
        prof = cProfile.Profile()
        prof.enable()
        for row in rows:
            db.execute(LOOM_INSERT, row)
        prof.disable()
        db.close()
        st = pstats.Stats(prof)
        st.sort_stats("cumulative").print_stats(40)
        st.sort_stats("tottime").print_stats(25)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(cfg: Config) -> Report:
    report = Report(cfg)
    wl = Workload(seed=cfg.seed)
    tmp = tempfile.mkdtemp(prefix="loomdb-bench-")
    log(f"stores under {tmp}")
    try:
        log(f"1/4 persist: {cfg.steps} steps at durability=full")
        try:
            bench_persist(tmp, wl, cfg, "full", cfg.steps, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed(
                [
                    ("persist_full_median", "persist step, full: median"),
                    ("disk_bytes_per_step", "disk bytes per step"),
                ],
                exc,
            )
        gc.collect()
        log(f"    persist: {cfg.normal_steps} steps at durability=normal")
        try:
            bench_persist(tmp, wl, cfg, "normal", cfg.normal_steps, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed([("persist_normal_median", "persist step, normal: median")], exc)
        gc.collect()

        log(f"2/4 resume + scan: loading {cfg.resume_rows} rows")
        db = raw = None
        try:
            db, raw = load_stores(tmp, wl, cfg, report)
            bench_resume_scan(db, raw, wl, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            done = {m.key for m in report.metrics}
            report.failed(
                [
                    (k, n)
                    for k, n in [
                        ("resume_main_median", "resume latest step, main"),
                        ("scan_main_median", "full scan, main"),
                        ("resume_branch_median", "resume latest step, branch"),
                    ]
                    if k not in done
                ],
                exc,
            )
        gc.collect()

        log("3/4 branch creation")
        try:
            if db is None:
                raise RuntimeError("no resume store (loading failed)")
            bench_branch_create(tmp, db, os.path.join(tmp, "resume.loom"), wl, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed([("branch_create", "branch creation")], exc)
        for h in (db, raw):
            if h is not None:
                close_quietly(h)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("4/4 done")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fast sanity run: ~2k steps, 10k-row store")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps of the durability=full persist run (default 20000; 100000 for the full run)",
    )
    _report.add_output_args(ap)
    ap.add_argument(
        "--profile",
        action="store_true",
        help="only cProfile loomdb's persist loop (--steps, default 3000) and print it",
    )
    args = ap.parse_args(argv)

    if args.profile:
        profile_persist(args.steps or 3_000, args.seed)
        return 0

    cfg = make_config(args)
    command = command_line("bench/bench_engine.py", argv)
    started = dt.datetime.now(dt.UTC)
    report = run(cfg)
    mach = machine()
    date = started.strftime("%Y-%m-%d")
    print_table(report, mach)

    if not args.no_json:
        suffix = (
            ""
            if cfg.mode == "default" and cfg.steps == Config().steps
            else ("-quick" if cfg.mode == "quick" else f"-{cfg.steps}")
        )
        write_json(RESULTS / f"engine-{date}{suffix}.json", report, mach, command, started)
    if not args.no_docs:
        update_docs(DOCS, markdown(report, mach, command, date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
