"""Deeplake 4 (``deeplake`` on PyPI), a local dataset on disk.

Schema made before any data (its best-practices page): text columns, int64
step and tokens_used, ``types.Dict()`` for the state and
``types.Embedding(1536)`` for the embedding (float32, with its default
``Clustered`` index). A step is ``ds.append([row])`` plus ``ds.commit()``: the
commit is what makes a row a version other readers see and what survives the
process. Deeplake does not fsync: ``fsync_probe`` runs commits under strace
and counts fsync-family calls (0 on 4.7.4), so a commit is not power-cut
durable and cannot match loomdb's ``durability="full"``.

Resume and vector search are TQL through ``ds.query``:
``SELECT * WHERE run_id = '...' ORDER BY step DESC LIMIT 1`` and
``SELECT run_id, step ORDER BY COSINE_SIMILARITY(embedding, ARRAY[...]) DESC
LIMIT 10``, answered from the embedding index once the bulk store has built
it (approximate by design: the driver measures recall); their plans
(``explain_query``) are kept in the results. Branches
and merges are its version control: ``ds.branch(name)``, changes committed on
``ds.branches[name].open()``, then ``ds.merge(name)``. The bulk store appends
batches of rows with one commit per batch. Deeplake's best-practices page
says to commit for versions only, appends being flushed by themselves; but
appends without a commit are gone after the process is killed
(``kill_probe``), so a step an agent must not lose needs its commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Any

import numpy as np

from .base import Context, Peer, dir_bytes, remove_tree, unit

PROBE = """
import sys, deeplake
from deeplake import types
ds = deeplake.create(sys.argv[1])
ds.add_column("t", types.Text())
ds.add_column("e", types.Embedding(8))
ds.commit()
for i in range(20):
    ds.append([{"t": "x" * 100, "e": [float(i)] * 8}])
    ds.commit()
"""
KILL_PROBE = """
import os, sys, time, deeplake
from deeplake import types
ds = deeplake.create(sys.argv[1])
ds.add_column("t", types.Text())
ds.commit()
ds.append([{"t": "committed"}])
ds.commit()
for _ in range(50):
    ds.append([{"t": "appended, not committed"}])
time.sleep(1)
os._exit(0)
"""
SYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "sync", "msync")


def fsync_probe(tmp: str) -> dict[str, Any]:
    """Run 20 append+commit steps of a small local dataset under ``strace -f -c`` and
    count the fsync-family system calls; ``{"calls": None}`` when strace is missing."""
    strace = shutil.which("strace")
    if strace is None:
        return {"calls": None, "method": "strace not installed"}
    out = os.path.join(tmp, "strace.txt")
    path = os.path.join(tmp, "probe-ds")
    done = subprocess.run(
        [
            strace,
            "-f",
            "-c",
            "-o",
            out,
            "-e",
            "trace=" + ",".join(SYNC_CALLS),
            sys.executable,
            "-c",
            PROBE,
            path,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    remove_tree(path)
    if done.returncode != 0 or not os.path.exists(out):
        return {"calls": None, "method": f"strace failed: {done.stderr.strip()[-200:]}"}
    calls = 0
    with open(out) as f:
        for line in f:
            parts = line.split()
            if parts and parts[-1] in SYNC_CALLS and len(parts) >= 4:
                calls += int(parts[3])
    return {"calls": calls, "commits": 21, "method": "strace -f -c -e trace=" + ",".join(SYNC_CALLS)}


def kill_probe(tmp: str) -> dict[str, Any]:
    """Commit one row, append 50 more without a commit, kill the process (``os._exit``)
    a second later, reopen: how many rows survived (the committed one only: a step
    is durable once committed, not once appended)."""
    import deeplake

    path = os.path.join(tmp, "kill-ds")
    subprocess.run([sys.executable, "-c", KILL_PROBE, path], capture_output=True, timeout=120, check=True)
    rows = len(deeplake.open(path))
    remove_tree(path)
    return {"committed": 1, "appended_uncommitted": 50, "rows_after_kill": rows}


def vector_literal(q: np.ndarray) -> str:
    return "ARRAY[" + ",".join(repr(float(x)) for x in unit(q)) + "]"


class Deeplake(Peer):
    name = "Deeplake 4"
    key = "deeplake"
    family = "sqlite"
    durability = "commit per step; no fsync"
    matches_full = False

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ds: Any = None
        self.how = {
            "persist": "ds.append of one row, then ds.commit()",
            "resume": "TQL SELECT * WHERE run_id = '...' ORDER BY step DESC LIMIT 1",
            "top10": "TQL ORDER BY COSINE_SIMILARITY(embedding, ARRAY[...]) DESC LIMIT 10",
            "branch": "ds.branch(name)",
            "merge": "ds.merge(name) of a branch with the changes committed",
        }

    def probe(self) -> None:
        """Count fsyncs of its commits (once) and word the durability accordingly."""
        import deeplake

        p = fsync_probe(self.ctx.tmp)
        self.details["fsync_probe"] = p
        try:
            self.details["kill_probe"] = kill_probe(self.ctx.tmp)
        except Exception as exc:
            self.details["kill_probe"] = {"error": f"{type(exc).__name__}: {exc}"}
        self.details["version"] = deeplake.__version__
        if p["calls"] == 0:
            self.durability = (
                f"commit per step; no fsync ({p['commits']} commits under strace: 0 fsync-family calls):"
                " survives a killed process, not a power cut"
            )
        elif p["calls"] is None:
            self.durability = f"commit per step; fsync unknown ({p['method']})"
        else:
            self.durability = f"commit per step; {p['calls']} fsync-family calls in {p['commits']} commits"
            self.matches_full = p["calls"] >= p["commits"]

    def _open(self, kind: str) -> None:
        import deeplake
        from deeplake import types

        self.path = os.path.join(self.ctx.tmp, f"deeplake-{kind}")
        remove_tree(self.path)
        ds = deeplake.create(self.path)
        ds.add_column("run_id", types.Text())
        ds.add_column("step", types.Int64())
        ds.add_column("action", types.Text())
        ds.add_column("observation", types.Text())
        ds.add_column("embedding", types.Embedding(1536))
        ds.add_column("state_snapshot", types.Dict())
        ds.add_column("tokens_used", types.Int64())
        ds.commit("schema")
        self.ds = ds
        self.offsets: dict[str, list[int]] = {}  # run_id -> row offsets (bulk store)
        self.tokens: dict[int, int] = {}
        self.count = 0

    @staticmethod
    def _record(row: list) -> dict[str, Any]:
        run_id, step, action, obs, emb, state, tokens = row
        return {
            "run_id": run_id,
            "step": step,
            "action": action,
            "observation": obs,
            "embedding": emb,
            "state_snapshot": state,
            "tokens_used": tokens,
        }

    def open_persist(self) -> None:
        if "fsync_probe" not in self.details:
            self.probe()
        self._open("persist")

    def persist(self, row: list) -> None:
        self.ds.append([self._record(row)])
        self.ds.commit()

    def persist_bytes(self) -> int:
        self.details["persist_versions"] = len(self.ds.history)
        self.close()
        return dir_bytes(self.path)

    def open_bulk(self) -> None:
        self._open("bulk")

    def bulk_load(self, rows: list[list]) -> None:
        self.ds.append([self._record(r) for r in rows])
        self.ds.commit()
        for r in rows:
            self.offsets.setdefault(r[0], []).append(self.count)
            self.tokens[self.count] = r[6]
            self.count += 1

    def end_load(self) -> None:
        """Build the embedding index now (``IndexingMode.Automatic``, the default, had not
        built it for the local dataset, so queries scanned); then back to the default, so
        later commits are not slowed by index updates. The build time is kept."""
        import deeplake

        t0 = time.perf_counter()
        self.ds.indexing_mode = deeplake.IndexingMode.Always
        self.ds.build_indexes()
        self.ds.indexing_mode = deeplake.IndexingMode.Automatic
        self.details.setdefault("index_build_s", []).append(round(time.perf_counter() - t0, 2))
        self.details["embedding_indexes"] = [str(i) for i in self.ds["embedding"].indexes]

    def resume(self, run_id: str) -> tuple[int, dict]:
        view = self.ds.query(f"SELECT * WHERE run_id = '{run_id}' ORDER BY step DESC LIMIT 1")
        row = view[0]
        return int(row["step"]), row["state_snapshot"].to_dict()

    def top10(self, query) -> list[tuple[str, int]]:
        sql = f"SELECT run_id, step ORDER BY COSINE_SIMILARITY(embedding, {vector_literal(query)}) DESC LIMIT 10"
        view = self.ds.query(sql)
        return list(zip(list(view["run_id"][:]), (int(s) for s in view["step"][:]), strict=True))

    def explain(self, run_id: str, query: np.ndarray) -> None:
        """The plans of the resume and vector queries, for the results JSON."""
        resume = f"SELECT * WHERE run_id = '{run_id}' ORDER BY step DESC LIMIT 1"
        top = f"SELECT run_id, step ORDER BY COSINE_SIMILARITY(embedding, {vector_literal(query)}) DESC LIMIT 10"
        self.details["plans"] = {
            "resume": str(self.ds.explain_query(resume)),
            "top10": "\n".join(
                line[:120] for line in str(self.ds.explain_query(top)).splitlines()
            ),  # the vector literal cut
        }

    def notes(self) -> list[str]:
        out = []
        plans = self.details.get("plans", {})
        for what in ("resume", "top10"):
            if plans.get(what):
                first = plans[what].splitlines()[0].strip()
                out.append(f"{what} plan (explain_query): {first}")
        if self.details.get("embedding_indexes"):
            built = " + ".join(f"{t:g} s" for t in self.details.get("index_build_s", []))
            out.append(
                f"embedding index: {', '.join(self.details['embedding_indexes'])}, built after loading"
                f" (IndexingMode.Always + build_indexes(), {built}, untimed)"
            )
        kp = self.details.get("kill_probe", {})
        if "rows_after_kill" in kp:
            out.append(
                f"after a kill, {kp['rows_after_kill']} row(s) of {kp['committed']} committed +"
                f" {kp['appended_uncommitted']} appended-only survived: a step is durable once committed"
            )
        return out

    def branch(self, name: str) -> None:
        self.ds.branch(name)

    def prepare_merge(self, name: str, run_id: str) -> int:
        view = self.ds.branch(name).open()
        column = view["tokens_used"]
        for i in self.offsets[run_id]:
            column[i] = self.tokens[i] + 1
        view.commit("1,000 changed rows")
        self.merged_run = run_id
        return len(self.offsets[run_id])

    def merge(self, name: str) -> None:
        self.ds.merge(name)

    def check_merge(self, run_id: str) -> bool:
        column = self.ds["tokens_used"]
        return all(int(column[i]) == self.tokens[i] + 1 for i in self.offsets[run_id][:20])

    def conflict(self, run_id: str) -> tuple[bool, str]:
        i = self.offsets[run_id][0]
        name = f"conflict-{run_id}"
        view = self.ds.branch(name).open()
        view["tokens_used"][i] = 111
        view.commit("branch side")
        self.ds["tokens_used"][i] = 222
        self.ds.commit("main side")
        try:
            self.ds.merge(name)
        except Exception as exc:
            return True, f"merge raised {type(exc).__name__}: {str(exc)[:120]}"
        kept = int(self.ds["tokens_used"][i])
        who = {111: "the branch's value (111) replaced main's", 222: "main's value (222) kept"}.get(
            kept, f"the cell now holds {kept}"
        )
        return False, f"ds.merge succeeded without reporting it; {who}"

    def close(self) -> None:
        self.ds = None
