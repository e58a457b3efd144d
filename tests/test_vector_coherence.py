"""Vector search sees other processes' commits at once (any in-memory copy stays coherent).

Runs on both engines (``store_path``): on SQLite top-k is answered from an
in-memory copy of the column that must be refreshed; on PostgreSQL pgvector
ranks in the server, and the same answers are required.

The API promises that ``ORDER BY vec <op> %s LIMIT k`` reads the column
"refreshed from the file before each query (so other processes' writes are
always seen)". Here another process (``sys.executable`` running a small
worker) writes while this process holds a handle whose top-k queries have
already run, and every answer is compared with NumPy brute force.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from test_vector_search import INSERT, OPS, brute_force, check_topk, has_near_tie

import loomdb

DIM = 16
TIMEOUT = 300

WORKER = textwrap.dedent(
    '''
    """Writer / reader for test_vector_coherence. argv: mode, store location, JSON file."""
    import json, os, sys, time
    import numpy as np
    import loomdb

    INSERT = "INSERT INTO t (id, g, name, embedding) VALUES (%s, %s, %s, %s)"
    mode, path, spec_file = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = json.load(open(spec_file))
    db = loomdb.connect(path)
    h = db if spec["branch"] == "main" else db.checkout(spec["branch"])

    def apply(op):
        kind = op[0]
        if kind == "insert":
            h.execute(INSERT, [op[1], op[2], "w", np.asarray(op[3], dtype=np.float32)])
        elif kind == "insert_many":
            h.executemany(INSERT, [[i, g, "w", np.asarray(v, dtype=np.float32)] for i, g, v in op[1]])
        elif kind == "update":
            h.execute("UPDATE t SET embedding = %s WHERE id = %s", [np.asarray(op[2], dtype=np.float32), op[1]])
        elif kind == "delete":
            h.execute("DELETE FROM t WHERE id = %s", [op[1]])
        elif kind == "delete_many":
            h.execute("DELETE FROM t WHERE id IN (" + ", ".join(str(int(i)) for i in op[1]) + ")")
        else:
            raise ValueError(kind)

    if mode == "write":
        if spec.get("as_one_commit"):
            with h.transaction(message="worker"):
                for op in spec["ops"]:
                    apply(op)
        else:
            for op in spec["ops"]:
                apply(op)
                if spec.get("pause"):
                    time.sleep(spec["pause"])
        print("done", flush=True)
    elif mode == "read":
        q = np.asarray(spec["query"], dtype=np.float32)
        answers = []
        stop = spec["stop_file"]

        def ask():
            out = {}
            for op in spec["ops_to_query"]:
                rows = h.execute(
                    f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT {spec['k']}", [q]
                ).fetchall()
                out[op] = [r["id"] for r in rows]
            return out

        print("ready", flush=True)
        while not os.path.exists(stop):
            answers.append(ask())
        final = ask()
        print(json.dumps({"answers": answers, "final": final}), flush=True)
    db.close()
    '''
)


@pytest.fixture
def worker(tmp_path):
    path = tmp_path / "vector_worker.py"
    path.write_text(WORKER)
    return str(path)


def _spec(tmp_path, name: str, spec: dict) -> str:
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(spec))
    return str(f)


def run_writer(worker: str, store: str, spec_file: str) -> None:
    proc = subprocess.run(
        [sys.executable, worker, "write", store, spec_file],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("done"), proc.stderr


def _vec(rng) -> np.ndarray:
    return rng.standard_normal(DIM).astype(np.float32)


def _setup(store: str, rng, n: int = 200):
    db = loomdb.connect(store)
    db.execute(f"CREATE TABLE t (id INT PRIMARY KEY, g INT, name TEXT, embedding VECTOR({DIM}))")
    model = {i: (i % 4, _vec(rng)) for i in range(n)}
    db.executemany(INSERT, [[i, g, "r", v] for i, (g, v) in model.items()])
    return db, model


def _check_everything(handle, model, queries) -> None:
    for q in queries:
        for op in OPS:
            for k in (1, 5, 10):
                if not has_near_tie(model, q, op, k, None, None):
                    check_topk(handle, model, q, op, k)
            if not has_near_tie(model, q, op, 5, "eq", 2):
                check_topk(handle, model, q, op, 5, "eq", 2)
            if not has_near_tie(model, q, op, 5, "lt", 2):
                check_topk(handle, model, q, op, 5, "lt", 2)


@pytest.mark.parametrize("branch", ["main", "side"])
def test_other_process_writes_seen_by_warm_handle(tmp_path, store_path, worker, branch):
    rng = np.random.default_rng(1 if branch == "main" else 2)
    store = store_path
    db, main_model = _setup(store, rng)
    if branch == "main":
        h, model = db, main_model
    else:
        h = db.branch("side")
        model = dict(main_model)
        # The branch has its own history before the other process writes.
        extra = {300 + i: (1, _vec(rng)) for i in range(20)}
        h.executemany(INSERT, [[i, g, "b", v] for i, (g, v) in extra.items()])
        model.update(extra)
        h.execute("DELETE FROM t WHERE id IN (0, 1, 2)")
        for i in (0, 1, 2):
            del model[i]
    main_frozen = dict(main_model)
    queries = [_vec(rng) for _ in range(4)]
    _check_everything(h, model, queries)  # warm: any cache is now loaded
    _check_everything(db, main_frozen, queries[:1])

    for round_ in range(3):
        q = queries[round_]
        # New rows right next to the query (they must become the answer), deletes of
        # the current nearest rows, and a moved vector.
        top, _ = brute_force(model, q, "<->", 3)
        new = [
            [1000 + 10 * round_ + j, j % 4, (q + rng.standard_normal(DIM) * 0.05 * (j + 1)).tolist()]
            for j in range(4)
        ]
        moved = max(i for i in model if i < 1000 and i not in top)
        moved_vec = (-q + rng.standard_normal(DIM) * 0.01).astype(np.float32)
        ops = [
            ["insert_many", new[:3]],
            ["insert", *new[3]],
            ["delete_many", top[:2]],
            ["delete", top[2]],
            ["update", moved, moved_vec.tolist()],
        ]
        spec = _spec(
            tmp_path,
            f"w{round_}",
            {"branch": branch, "ops": ops, "as_one_commit": round_ == 2},
        )
        run_writer(worker, store, spec)
        for i, g, v in new:
            model[i] = (g, np.asarray(v, dtype=np.float32))
        for i in top:
            del model[i]
        model[moved] = (model[moved][0], moved_vec)

        # The very next query on the warm handle sees exactly the other process's changes.
        got = h.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 4", [q]).fetchall()
        assert sorted(r["id"] for r in got) == sorted(i for i, _, _ in new)
        _check_everything(h, model, queries)
        # <#> against -q puts the moved row first.
        got = h.execute("SELECT id FROM t ORDER BY embedding <#> %s LIMIT 1", [-q]).fetchone()
        assert got["id"] == brute_force(model, -q, "<#>", 1)[0][0]
        if branch != "main":
            _check_everything(db, main_frozen, queries[:1])  # main is untouched
    db.close()


def test_other_process_writes_on_other_branch_not_seen(tmp_path, store_path, worker):
    rng = np.random.default_rng(3)
    store = store_path
    db, model = _setup(store, rng)
    side = db.branch("side")
    side_model = dict(model)
    queries = [_vec(rng) for _ in range(2)]
    _check_everything(db, model, queries)
    _check_everything(side, side_model, queries)
    q = queries[0]
    new = [[2000 + j, 0, (q + rng.standard_normal(DIM) * 0.01).tolist()] for j in range(3)]
    run_writer(worker, store, _spec(tmp_path, "w", {"branch": "main", "ops": [["insert_many", new]]}))
    for i, g, v in new:
        model[i] = (g, np.asarray(v, dtype=np.float32))
    _check_everything(db, model, queries)
    _check_everything(side, side_model, queries)  # the branch forked before: unchanged
    # A branch forked now sees them.
    late = db.branch("late")
    _check_everything(late, model, queries)
    db.close()


def _states(initial: dict, ops: list) -> list[dict]:
    """The committed states after 0..len(ops) single-op commits."""
    states = [dict(initial)]
    cur = dict(initial)
    for op in ops:
        if op[0] == "insert":
            cur[op[1]] = (op[2], np.asarray(op[3], dtype=np.float32))
        elif op[0] == "update":
            cur[op[1]] = (cur[op[1]][0], np.asarray(op[2], dtype=np.float32))
        elif op[0] == "delete":
            del cur[op[1]]
        states.append(dict(cur))
    return states


@pytest.mark.parametrize("branch", ["main", "side"])
def test_concurrent_readers_with_a_writer(tmp_path, store_path, worker, branch):
    rng = np.random.default_rng(4)
    store = store_path
    db, model = _setup(store, rng, n=300)
    if branch != "main":
        db.branch("side").execute("DELETE FROM t WHERE id < 10")
        for i in range(10):
            del model[i]
    q = _vec(rng)
    k = 5
    # Each commit inserts a row near q, deletes one of the current answer, or moves a row.
    ops: list = []
    live = dict(model)
    next_id = 5000
    for step in range(60):
        r = step % 3
        if r == 0:
            v = (q + rng.standard_normal(DIM) * (0.2 + 0.01 * step)).astype(np.float32)
            ops.append(["insert", next_id, step % 4, v.tolist()])
            live[next_id] = (step % 4, v)
            next_id += 1
        elif r == 1:
            victim = brute_force(live, q, "<->", k)[0][int(rng.integers(k))]
            ops.append(["delete", victim])
            del live[victim]
        else:
            moved = int(rng.choice(sorted(live)))
            v = _vec(rng)
            ops.append(["update", moved, v.tolist()])
            live[moved] = (live[moved][0], v)
    states = _states(model, ops)
    possible = {op: [tuple(brute_force(s, q, op, k)[0]) for s in states] for op in OPS}

    stop = str(tmp_path / "stop")
    read_spec = _spec(
        tmp_path,
        "r",
        {"branch": branch, "query": q.tolist(), "k": k, "ops_to_query": list(OPS), "stop_file": stop},
    )
    readers = [
        subprocess.Popen(
            [sys.executable, worker, "read", store, read_spec],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in readers:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        time.sleep(0.2)  # readers are warm and looping
        run_writer(worker, store, _spec(tmp_path, "w", {"branch": branch, "ops": ops, "pause": 0.002}))
        with open(stop, "w"):
            pass
        results = []
        for p in readers:
            out, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in readers:
            if p.poll() is None:
                p.kill()
    final = states[-1]
    for res in results:
        assert res["answers"], "reader never queried"
        for ans in res["answers"]:
            for op in OPS:
                assert tuple(ans[op]) in possible[op], (op, ans[op])
        for op in OPS:
            assert res["final"][op] == brute_force(final, q, op, k)[0], op
    # And this process, whose handle never queried during the writes, agrees too.
    h = db if branch == "main" else db.checkout("side")
    _check_everything(h, final, [q])
    db.close()
