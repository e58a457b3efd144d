#!/usr/bin/env python
"""loomdb exact vector search: top-10 cosine against NumPy and sqlite-vec, in one run.

Every loomdb number sits next to two floors measured in the same process on
the same vectors:

* **NumPy**: brute force over a float32 matrix already in memory, rows
  normalised in advance: ``(M @ q)`` then ``argpartition`` (the floor an
  in-memory exact search can approach). Filtered: ``M[mask] @ q`` with a
  precomputed boolean mask.
* **sqlite-vec**: raw apsw on a plain table (``id, g, embedding BLOB``, an
  index on ``g``): ``ORDER BY vec_distance_cosine(embedding, ?) LIMIT 10``.

Cases, at 10k and 100k rows x 1536 dims (``--quick``: 10k only): unfiltered
and with a 1% filter (``WHERE g = %s``, g has 100 values), on main and on a
branch forked after loading with 1k rows of its own; the first query after
opening (it loads any cache), and queries right after a one-row commit (so a
cached answer can never be stale). Queries alternate between the sides in
blocks; medians.

    .venv/bin/python bench/bench_vector.py            # 10k and 100k rows
    .venv/bin/python bench/bench_vector.py --quick    # 10k rows only

Results: a Rich table on stdout, ``bench/results/vector-<date>[-quick].json``
and the table between the ``vector-bench`` markers of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import numpy as np
import sqlite_vec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _report  # noqa: E402
from _report import (  # noqa: E402
    chunks,
    command_line,
    interleaved,
    log,
    met_text,
    stats,
    write_json,
)

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results"
MARK_START = "<!-- vector-bench:start -->"
MARK_END = "<!-- vector-bench:end -->"

DIM = 1536
K = 10
GROUPS = 100
FILTER_G = 37

LOOM_SCHEMA = f"CREATE TABLE items (id INT PRIMARY KEY, g INT, embedding VECTOR({DIM}))"
LOOM_INDEX = "CREATE INDEX items_g ON items (g)"
LOOM_INSERT = "INSERT INTO items (id, g, embedding) VALUES (%s, %s, %s)"
LOOM_TOPK = f"SELECT id, embedding <=> %s AS d FROM items ORDER BY embedding <=> %s LIMIT {K}"
LOOM_TOPK_G = f"SELECT id, embedding <=> %s AS d FROM items WHERE g = %s ORDER BY embedding <=> %s LIMIT {K}"
RAW_SCHEMA = "CREATE TABLE items (id INTEGER PRIMARY KEY, g INTEGER, embedding BLOB)"
RAW_INDEX = "CREATE INDEX items_g ON items (g)"
RAW_INSERT = "INSERT INTO items (id, g, embedding) VALUES (?, ?, ?)"
RAW_TOPK = f"SELECT id, vec_distance_cosine(embedding, ?) AS d FROM items ORDER BY d LIMIT {K}"
RAW_TOPK_G = f"SELECT id, vec_distance_cosine(embedding, ?) AS d FROM items WHERE g = ? ORDER BY d LIMIT {K}"

pc = time.perf_counter_ns


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mode: str = "default"
    sizes: tuple[int, ...] = (10_000, 100_000)
    branch_rows: int = 1_000
    load_batch: int = 1_000
    queries: dict[int, int] = field(default_factory=lambda: {10_000: 60, 100_000: 20})
    warmup: int = 5
    fresh_reps: int = 15
    seed: int = 0


def make_config(args: argparse.Namespace) -> Config:
    cfg = Config(mode="quick", sizes=(10_000,)) if args.quick else Config()
    cfg.seed = args.seed
    return cfg


# --------------------------------------------------------------------------- helpers


def rss_bytes() -> int:
    """VmRSS of this process (Linux), 0 where /proc is not there."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cache_bytes(db: Any) -> int | None:
    """loomdb's own report of its vector cache size, if the engine exposes one."""
    for name in ("vector_cache_bytes", "vector_cache_nbytes", "cache_bytes"):
        fn = getattr(db, name, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                value = fn()
                if isinstance(value, dict):
                    value = sum(value.values())
                return int(value)
    return None


def blas_description() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        conf = blas.get("openblas configuration")
        if conf:
            text += f" ({conf})"
    except Exception as exc:  # older NumPy
        text = f"unknown ({type(exc).__name__})"
    core = os.environ.get("OPENBLAS_CORETYPE")
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if core:
        text += f", OPENBLAS_CORETYPE={core}"
    if threads:
        text += f", threads={threads}"
    return text


def unit_rows(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def numpy_topk(mn: np.ndarray, ids: np.ndarray, qn: np.ndarray) -> np.ndarray:
    """Ids of the K rows of normalised ``mn`` nearest to normalised ``qn`` by cosine."""
    s = mn @ qn
    part = np.arange(s.shape[0]) if s.shape[0] <= K else np.argpartition(-s, K)[:K]
    return ids[part[np.argsort(-s[part], kind="stable")]]


# --------------------------------------------------------------------------- metrics


@dataclass
class Metric:
    key: str
    name: str
    unit: str
    loomdb: float | None = None
    numpy: float | None = None
    sqlite_vec: float | None = None
    compare: str | None = None  # "ratio" (loomdb / numpy) or "delta" (loomdb - numpy)
    value: float | None = None
    goal: str = "—"
    met: bool | None = None
    note: str = ""
    error: str | None = None


Report = _report.Report


# --------------------------------------------------------------------------- one store size


class SizeRun:
    """One store size: loomdb store, raw sqlite-vec table and NumPy matrices."""

    def __init__(self, tmp: str, n: int, cfg: Config, report: Report):
        self.tmp, self.n, self.cfg, self.report = tmp, n, cfg, report
        self.rng = np.random.default_rng(cfg.seed + n)
        nb = cfg.branch_rows
        log(f"[{n}] generating {n + nb} x {DIM} vectors")
        # Vectors as an embedding client hands them over: float32.
        self.vecs = self.rng.standard_normal((n + nb, DIM), dtype=np.float32)
        self.groups = self.rng.integers(0, GROUPS, size=n + nb)
        self.ids = np.arange(n + nb)
        self.unit = unit_rows(self.vecs)  # the NumPy floor's matrix, normalised once
        self.db: Any = None
        self.branch: Any = None
        self.raw: apsw.Connection | None = None

    # -- loading

    def load(self) -> None:
        import loomdb

        n, cfg = self.n, self.cfg
        path = os.path.join(self.tmp, f"vec-{n}.loom")
        db = loomdb.connect(path, durability="normal")
        db.execute(LOOM_SCHEMA)
        db.execute(LOOM_INDEX)  # the same index on g as the raw table
        t0 = pc()
        with db.transaction(message="bulk load"):
            for start in range(0, n, cfg.load_batch):
                stop = min(start + cfg.load_batch, n)
                db.executemany(
                    LOOM_INSERT,
                    [[i, int(self.groups[i]), self.vecs[i]] for i in range(start, stop)],
                )
        t_loom = (pc() - t0) / 1e9
        db.close()

        raw = apsw.Connection(os.path.join(self.tmp, f"vec-{n}.raw.db"))
        raw.enable_load_extension(True)
        raw.load_extension(sqlite_vec.loadable_path())
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute(RAW_SCHEMA)
        raw.execute(RAW_INDEX)
        t0 = pc()
        with raw:
            raw.executemany(RAW_INSERT, ((i, int(self.groups[i]), self.vecs[i].tobytes()) for i in range(n)))
        t_raw = (pc() - t0) / 1e9
        self.raw = raw
        log(f"[{n}] loaded: loomdb {t_loom:.1f}s, raw {t_raw:.1f}s")
        self.report.details[f"load_{n}"] = {"loomdb_s": t_loom, "raw_s": t_raw}

    # -- query functions

    def loom_fn(self, handle: Any, filtered: bool) -> Callable[[np.ndarray], Any]:
        if filtered:
            return lambda q: handle.execute(LOOM_TOPK_G, [q, FILTER_G, q]).fetchall()
        return lambda q: handle.execute(LOOM_TOPK, [q, q]).fetchall()

    def raw_fn(self, filtered: bool) -> Callable[[np.ndarray], Any]:
        cur = self.raw.cursor()
        if filtered:
            return lambda q: cur.execute(RAW_TOPK_G, (q.tobytes(), FILTER_G)).fetchall()
        return lambda q: cur.execute(RAW_TOPK, (q.tobytes(),)).fetchall()

    def numpy_fn(self, rows: int, filtered: bool) -> Callable[[np.ndarray], Any]:
        mn, ids = self.unit[:rows], self.ids[:rows]
        if filtered:
            mask = self.groups[:rows] == FILTER_G  # precomputed once

            def run(q: np.ndarray) -> np.ndarray:
                return numpy_topk(mn[mask], ids[mask], q / np.linalg.norm(q))

            return run
        return lambda q: numpy_topk(mn, ids, q / np.linalg.norm(q))

    def queries(self, count: int) -> list[np.ndarray]:
        return [self.rng.standard_normal(DIM, dtype=np.float32) for _ in range(count)]

    def check(self, handle: Any, rows: int, filtered: bool, q: np.ndarray, raw_too: bool = True) -> None:
        """loomdb, NumPy and sqlite-vec give the same ids."""
        got = [r["id"] for r in self.loom_fn(handle, filtered)(q)]
        want = [int(i) for i in self.numpy_fn(rows, filtered)(q)]
        assert got == want, f"loomdb {got} != numpy {want}"
        if raw_too:
            raw = [r[0] for r in self.raw_fn(filtered)(q)]
            assert raw == want, f"sqlite-vec {raw} != numpy {want}"

    # -- benchmarks

    def first_query(self) -> None:
        """Open the store afresh: the first top-k query (loads any cache), memory."""
        import loomdb

        n = self.n
        gc.collect()
        self.db = loomdb.connect(os.path.join(self.tmp, f"vec-{n}.loom"), durability="normal")
        before = rss_bytes()
        q = self.queries(1)[0]
        t0 = pc()
        self.loom_fn(self.db, False)(q)
        first_ms = (pc() - t0) / 1e6
        after = rss_bytes()
        raw_bytes = n * DIM * 4
        reported = cache_bytes(self.db)
        self.report.details[f"memory_{n}"] = {
            "rss_before": before,
            "rss_after": after,
            "cache_bytes_reported": reported,
            "vector_bytes": raw_bytes,
        }
        self.report.add(
            Metric(
                f"first_query_{n}",
                f"first top-10 after open, {n:,} rows (loads any cache)",
                "ms",
                loomdb=first_ms,
                note="",
            )
        )
        if reported is not None:
            used, how = reported, "db.vector_cache_bytes()"
        else:
            used, how = after - before, "RSS growth over the first query (/proc/self/status VmRSS)"
        r = used / raw_bytes
        if reported is None and r < 0.5:
            how += " (no in-memory copy of the vectors detected)"
        self.report.add(
            Metric(
                f"cache_memory_{n}",
                f"cache memory / vector bytes, {n:,} rows",
                "×",
                loomdb=r,
                compare="ratio",
                value=r,
                goal="≤ 1.1×",
                met=r <= 1.1,
                note=f"{how}: {used / 2**20:,.1f} MiB for {raw_bytes / 2**20:,.1f} MiB of float32 vectors",
            )
        )
        self.check(self.db, n, False, q)
        self.check(self.db, n, True, q)

    def steady(self, handle: Any, rows: int, label: str, key: str) -> None:
        cfg = self.cfg
        reps = cfg.queries.get(self.n, 20)
        for filtered in (False, True):
            sides = {
                "loomdb": self.loom_fn(handle, filtered),
                "numpy": self.numpy_fn(rows, filtered),
                "sqlite-vec": self.raw_fn(filtered),
            }
            interleaved(sides, chunks(self.queries(cfg.warmup), 5))
            qs = chunks(self.queries(reps), 5)
            t = interleaved(sides, qs)
            # NumPy also back to back, on its own: the floor is the faster of the two
            # (on a shared machine the interleaved figure can carry others' noise).
            alone = interleaved({"numpy": sides["numpy"]}, qs)["numpy"]
            lo, sv = stats(t["loomdb"], "ms"), stats(t["sqlite-vec"], "ms")
            nu_i, nu_a = stats(t["numpy"], "ms"), stats(alone, "ms")
            nu = nu_i if nu_i["median_ms"] <= nu_a["median_ms"] else nu_a
            fkey = "filtered" if filtered else "unfiltered"
            self.report.details[f"{key}_{fkey}_{self.n}"] = {
                "rows": rows,
                "loomdb": lo,
                "numpy": nu,
                "numpy_interleaved": nu_i,
                "numpy_alone": nu_a,
                "sqlite_vec": sv,
            }
            name = f"top-10 cosine, {label}, {rows:,} rows" + (", 1% filter" if filtered else "")
            m = Metric(
                f"{key}_{fkey}_{self.n}",
                name,
                "ms",
                loomdb=lo["median_ms"],
                numpy=nu["median_ms"],
                sqlite_vec=sv["median_ms"],
            )
            if filtered:
                m.compare, m.value = "delta", lo["median_ms"] - nu["median_ms"]
                m.goal, m.met = "≤ NumPy + 3 ms", m.value <= 3.0
            else:
                m.compare, m.value = "ratio", lo["median_ms"] / nu["median_ms"]
                m.goal, m.met = "≤ 1.5× NumPy", m.value <= 1.5
            m.note = f"p95 loomdb {lo['p95_ms']:.2f} ms, NumPy {nu['p95_ms']:.2f} ms, sqlite-vec {sv['p95_ms']:.2f} ms"
            self.report.add(m)

    def make_branch(self) -> None:
        """Fork after loading, write branch_rows rows on it; time the very next query."""
        n, nb = self.n, self.cfg.branch_rows
        self.branch = self.db.branch("bench/vectors")
        for start in range(n, n + nb, 100):  # ten commits of 100 rows
            self.branch.executemany(
                LOOM_INSERT,
                [[i, int(self.groups[i]), self.vecs[i]] for i in range(start, min(start + 100, n + nb))],
            )
        q = self.vecs[n + nb - 1] + self.rng.standard_normal(DIM, dtype=np.float32) * 0.01
        t0 = pc()
        got = self.loom_fn(self.branch, False)(q)
        ms = (pc() - t0) / 1e6
        assert got[0]["id"] == n + nb - 1, (got[0]["id"], n + nb - 1)
        self.report.add(
            Metric(
                f"branch_first_{n}",
                f"first top-10 on the branch after writing {nb:,} rows on it ({n:,} rows on main)",
                "ms",
                loomdb=ms,
            )
        )
        # The raw table now holds main's and the branch's rows, like the branch view.
        with self.raw:
            self.raw.executemany(
                RAW_INSERT, ((i, int(self.groups[i]), self.vecs[i].tobytes()) for i in range(n, n + nb))
            )
        self.check(self.branch, n + nb, False, q)
        self.check(self.branch, n + nb, True, q)
        self.check(self.db, n, False, q, raw_too=False)  # main does not see the branch's rows

    def fresh(self, handle: Any, label: str, key: str, rows: int) -> None:
        """A one-row commit, then at once the query that must find that row first."""
        reps = self.cfg.fresh_reps
        write_ns: list[int] = []
        query_ns: list[int] = []
        floor_ns: list[int] = []
        next_id = 10_000_000 + (1_000 if key == "branch" else 0)
        for r in range(reps + self.cfg.warmup):
            v = self.rng.standard_normal(DIM, dtype=np.float32)
            t0 = pc()
            handle.execute(LOOM_INSERT, [next_id, FILTER_G, v])
            t1 = pc()
            got = handle.execute(LOOM_TOPK, [v, v]).fetchall()
            t2 = pc()
            assert got[0]["id"] == next_id, "stale answer: the row just written is not first"
            got = handle.execute(LOOM_TOPK_G, [v, FILTER_G, v]).fetchall()
            assert got[0]["id"] == next_id, "stale filtered answer"
            t3 = pc()
            self.numpy_fn(rows, False)(v)
            t4 = pc()
            next_id += 1
            if r >= self.cfg.warmup:
                write_ns.append(t1 - t0)
                query_ns.append(t2 - t1)
                floor_ns.append(t4 - t3)
        q, w, f = stats(query_ns, "ms"), stats(write_ns, "ms"), stats(floor_ns, "ms")
        self.report.details[f"fresh_{key}_{self.n}"] = {"query": q, "write": w, "numpy": f}
        ratio = q["median_ms"] / f["median_ms"]
        self.report.add(
            Metric(
                f"fresh_{key}_{self.n}",
                f"top-10 right after a 1-row commit, {label}, {rows:,} rows",
                "ms",
                loomdb=q["median_ms"],
                numpy=f["median_ms"],
                compare="ratio",
                value=ratio,
                goal="≤ 1.5× NumPy",
                met=ratio <= 1.5,
                note=f"the 1-row INSERT itself: median {w['median_ms']:.2f} ms (durability=normal)",
            )
        )

    def close(self) -> None:
        for h in (self.db, self.raw):
            if h is not None:
                _report.close_quietly(h)


def bench_size(tmp: str, n: int, cfg: Config, report: Report) -> None:
    sr = SizeRun(tmp, n, cfg, report)
    steps = [
        ("load", sr.load),
        ("first query", sr.first_query),
        ("main", lambda: sr.steady(sr.db, n, "main", "main")),
        ("branch", sr.make_branch),
        (
            "branch queries",
            lambda: sr.steady(sr.branch, n + cfg.branch_rows, "branch (+1k rows)", "branch"),
        ),
        ("fresh main", lambda: sr.fresh(sr.db, "main", "main", n)),
        ("fresh branch", lambda: sr.fresh(sr.branch, "branch", "branch", n + cfg.branch_rows)),
    ]
    try:
        for name, fn in steps:
            log(f"[{n}] {name}")
            try:
                fn()
            except Exception as exc:
                traceback.print_exc()
                report.add(
                    Metric(f"{name}_{n}", f"{name}, {n:,} rows", "", error=f"{type(exc).__name__}: {exc}")
                )
                if name in ("load", "first query"):
                    break
    finally:
        sr.close()
        gc.collect()


# --------------------------------------------------------------------------- output


def machine() -> dict[str, Any]:
    return _report.machine(
        sqlite_vec=getattr(sqlite_vec, "__version__", "?"),
        blas=blas_description(),
        load_average=os.getloadavg() if hasattr(os, "getloadavg") else None,
    )


def describe(mach: dict[str, Any]) -> str:
    return (
        f"{mach['cpu']} ({mach['cpu_count']} CPUs), {mach['platform']}, Python {mach['python']}, "
        f"SQLite {mach['sqlite']}, apsw {mach['apsw']}, sqlite-vec {mach['sqlite_vec']}, "
        f"numpy {mach['numpy']} with BLAS {mach['blas']}, loomdb {mach['loomdb']}"
        + (
            f"; load average at the end {mach['load_average'][0]:.2f} (1 min), {mach['load_average'][1]:.2f} (5 min)"
            if mach.get("load_average")
            else ""
        )
    )


def fmt(v: float | None, unit: str) -> str:
    return _report.fmt(v, unit, ms_places=2)


def fmt_value(m: Metric) -> str:
    return _report.fmt_value(m.value, m.compare, m.unit, places=2)


HEADERS = ["metric", "loomdb", "NumPy", "sqlite-vec", "vs NumPy", "goal", "met?"]


def rows_of(report: Report) -> list[list[str]]:
    out = []
    for m in report.metrics:
        if m.error:
            out.append([m.name, "error", "—", "—", "—", m.goal, "error: " + m.error[:120]])
            continue
        met = met_text(m.met)
        loom = fmt(m.loomdb, m.unit) if m.unit != "×" else f"{m.loomdb:.2f}×"
        out.append(
            [
                m.name,
                loom,
                fmt(m.numpy, m.unit),
                fmt(m.sqlite_vec, m.unit),
                fmt_value(m) if m.unit != "×" else "—",
                m.goal,
                met,
            ]
        )
    return out


MARKERS = (MARK_START, MARK_END)


def print_table(report: Report, mach: dict[str, Any]) -> None:
    title = f"loomdb vector search benchmarks ({report.config.mode})"
    _report.print_table(title, HEADERS, rows_of(report), report.metrics, describe(mach), width=170)


def markdown(report: Report, mach: dict[str, Any], command: str, date: str) -> str:
    cfg = report.config
    sizes = " and ".join(f"{n:,}" for n in cfg.sizes)
    workload = (
        f"Workload: {sizes} rows x {DIM} float32 dims (standard normal), `g` in 0..{GROUPS - 1}; "
        f"top-{K} by cosine distance (`ORDER BY embedding <=> %s LIMIT {K}`), unfiltered and with "
        f"`WHERE g = %s` (1% of rows); a branch forked after loading with {cfg.branch_rows:,} rows "
        f"of its own; {', '.join(f'{q} queries at {n:,}' for n, q in cfg.queries.items() if n in cfg.sizes)} "
        "per side and case, interleaved. NumPy: `(M @ q)` + `argpartition` over pre-normalised float32 rows "
        "in memory (filtered: `M[mask] @ q`, mask precomputed). sqlite-vec: raw apsw, "
        "`vec_distance_cosine` ORDER BY LIMIT on a plain table; both stores have an index on `g`. Medians."
    )
    return _report.markdown(
        MARKERS,
        "bench/bench_vector.py",
        date,
        cfg.mode,
        command,
        describe(mach),
        workload,
        HEADERS,
        rows_of(report),
        report.metrics,
    )


SECTION = """## Vector search

`bench/bench_vector.py` (`--quick` for 10k rows only) measures exact top-10
cosine search against two floors in the same run: NumPy brute force over a
float32 matrix already in memory, and sqlite-vec brute force in raw apsw.
Each run rewrites the table below and writes `bench/results/vector-<date>.json`.

"""


def update_docs(path: Path, block: str) -> None:
    _report.update_docs(path, block, MARKERS, heading=SECTION)


# --------------------------------------------------------------------------- main


def run(cfg: Config) -> Report:
    report = Report(cfg)
    tmp = tempfile.mkdtemp(prefix="loomdb-vbench-")
    log(f"stores under {tmp}")
    try:
        for n in cfg.sizes:
            bench_size(tmp, n, cfg, report)
            for name in os.listdir(tmp):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(tmp, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k rows only")
    _report.add_output_args(ap)
    args = ap.parse_args(argv)

    cfg = make_config(args)
    command = command_line("bench/bench_vector.py", argv)
    started = dt.datetime.now(dt.UTC)
    report = run(cfg)
    mach = machine()
    date = started.strftime("%Y-%m-%d")
    print_table(report, mach)
    if not args.no_json:
        out = RESULTS / f"vector-{date}{'-quick' if cfg.mode == 'quick' else ''}.json"
        write_json(out, report, mach, command, started)
    if not args.no_docs:
        update_docs(DOCS, markdown(report, mach, command, date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
