"""Concurrent writers on one store file: every row lands exactly once, no lock error escapes.

* 8 processes, each on its own branch (all created up front from main, which
  already holds a few rows), while a 9th process keeps writing to main. Each
  branch ends up with exactly its writer's rows plus the rows main had at the
  fork; main with its own rows only; each branch's log holds exactly as many
  commits as its writer made.
* 8 processes on one shared branch: the branch holds every writer's rows
  exactly once; main is untouched.
* Threads: 8 threads sharing one handle (statements and transaction blocks
  serialize on it) with a reader thread alongside, and 8 threads each with
  their own ``connect()`` (half on main, half on their own branch).

Writers use single INSERTs, ``transaction()`` blocks and ``executemany``, and
check after every commit that they read their own rows back
(``tests/durability/concurrency_worker.py``). A worker that gets any exception
(a lock timeout included) makes the test fail with that exception's text.
``LOOMDB_CONCURRENCY_ROWS`` (default 50) sets the rows per writer.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import traceback
from collections import Counter

import pytest
from durability.common import integrity_check, worker_cmd, worker_env
from durability.concurrency_worker import INSERT_WRITE, WRITES_DDL, write_params, write_rows

import loomdb

ROWS = int(os.environ.get("LOOMDB_CONCURRENCY_ROWS", "50"))
WRITERS = 8
BASE_ROWS = 5
PROCESS_TIMEOUT = 600.0


def _run_processes(configs: list[dict]) -> dict[str, int]:
    """Start all workers, release them together, return {writer: commits}; fail on any error."""
    procs = []
    try:
        for cfg in configs:
            procs.append(
                subprocess.Popen(
                    worker_cmd("concurrency_worker.py", cfg),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=worker_env(),
                )
            )
        not_ready = []
        for cfg, proc in zip(configs, procs, strict=True):
            if proc.stdout.readline().strip() != "ready":
                not_ready.append(cfg["writer"])
        if not_ready:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
            errors = [
                f"{cfg['writer']}: status {proc.wait()}\n{proc.stderr.read()}"
                for cfg, proc in zip(configs, procs, strict=True)
                if cfg["writer"] in not_ready
            ]
            pytest.fail("workers failed before writing:\n" + "\n".join(errors))
        for proc in procs:  # the start barrier
            proc.stdin.write("go\n")
            proc.stdin.flush()
        commits: dict[str, int] = {}
        errors = []
        for cfg, proc in zip(configs, procs, strict=True):
            out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
            last = out.strip().splitlines()[-1] if out.strip() else ""
            if proc.returncode != 0 or not last.startswith("done "):
                errors.append(f"{cfg['writer']} (status {proc.returncode}):\n{err}")
                continue
            _, rows, n_commits = last.split()
            assert int(rows) == cfg["rows"]
            commits[cfg["writer"]] = int(n_commits)
        if errors:
            pytest.fail("concurrent writers failed:\n" + "\n".join(errors))
        return commits
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _rows(handle) -> Counter:
    return Counter(
        (r["writer"], r["seq"], r["branch"])
        for r in handle.execute("SELECT writer, seq, branch FROM writes").fetchall()
    )


def _expected(writer: str, rows: int, branch: str) -> Counter:
    return Counter((writer, seq, branch) for seq in range(rows))


def _assert_exactly(actual: Counter, expected: Counter, where: str) -> None:
    duplicates = sorted(k for k, n in actual.items() if n > 1)
    assert not duplicates, f"{where}: rows present more than once: {duplicates[:10]}"
    missing = sorted(expected - actual)
    assert not missing, f"{where}: {len(missing)} rows missing, e.g. {missing[:10]}"
    foreign = sorted(actual - expected)
    assert not foreign, f"{where}: {len(foreign)} rows that do not belong, e.g. {foreign[:10]}"


def _own_commits(db, branch: str) -> int:
    return sum(1 for c in db.log(branch=branch) if c.branch == branch)


def _seed_main(path: str) -> Counter:
    with loomdb.connect(path) as db:
        db.execute(WRITES_DDL)
        for seq in range(BASE_ROWS):
            db.execute(INSERT_WRITE, write_params("base", seq, "main"))
    return _expected("base", BASE_ROWS, "main")


@pytest.mark.slow
def test_processes_on_their_own_branches(store_path):
    base = _seed_main(store_path)
    branches = [f"agent-{i}/work" for i in range(WRITERS)]
    with loomdb.connect(store_path) as db:
        for name in branches:
            db.branch(name)
        main_commits_before = _own_commits(db, "main")
    configs = [
        {"path": store_path, "branch": name, "writer": f"w{i}", "rows": ROWS}
        for i, name in enumerate(branches)
    ]
    configs.append({"path": store_path, "branch": "main", "writer": "main-late", "rows": ROWS})
    commits = _run_processes(configs)

    with loomdb.connect(store_path) as db:
        for i, name in enumerate(branches):
            handle = db.checkout(name)
            _assert_exactly(_rows(handle), base + _expected(f"w{i}", ROWS, name), name)
            assert _own_commits(db, name) == commits[f"w{i}"], f"commits on {name}"
        _assert_exactly(_rows(db), base + _expected("main-late", ROWS, "main"), "main")
        assert _own_commits(db, "main") == main_commits_before + commits["main-late"]
    assert integrity_check(store_path) == ["ok"]


@pytest.mark.slow
def test_processes_on_one_branch(store_path):
    base = _seed_main(store_path)
    shared = "team/shared"
    with loomdb.connect(store_path) as db:
        db.branch(shared)
    configs = [
        {"path": store_path, "branch": shared, "writer": f"w{i}", "rows": ROWS} for i in range(WRITERS)
    ]
    commits = _run_processes(configs)

    expected = Counter(base)
    for i in range(WRITERS):
        expected += _expected(f"w{i}", ROWS, shared)
    with loomdb.connect(store_path) as db:
        _assert_exactly(_rows(db.checkout(shared)), expected, shared)
        _assert_exactly(_rows(db), base, "main")
        assert _own_commits(db, shared) == sum(commits.values())
    assert integrity_check(store_path) == ["ok"]


def _run_threads(targets: list) -> None:
    errors: list[str] = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException:
                errors.append(traceback.format_exc())

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, "threads failed:\n" + "\n".join(errors)


def test_threads_sharing_one_handle(store_path):
    db = loomdb.connect(store_path)
    try:
        db.execute(WRITES_DDL)
        done = threading.Event()
        seen_counts: list[int] = []

        def reader():
            while not done.is_set():
                n = db.execute("SELECT count(*) FROM writes").fetchone()[0]
                if seen_counts and n < seen_counts[-1]:
                    raise AssertionError(f"row count went back from {seen_counts[-1]} to {n}")
                seen_counts.append(n)
                time.sleep(0.002)  # do not starve the writers of the handle

        def writer(i):
            return lambda: write_rows(db, f"t{i}", "main", ROWS)

        writers = [writer(i) for i in range(WRITERS)]

        def all_writers():
            try:
                _run_threads(writers)
            finally:
                done.set()

        _run_threads([all_writers, reader])
        expected = Counter()
        for i in range(WRITERS):
            expected += _expected(f"t{i}", ROWS, "main")
        _assert_exactly(_rows(db), expected, "main")
        assert seen_counts, "the reader thread never ran"
    finally:
        db.close()
    assert integrity_check(store_path) == ["ok"]


def test_threads_with_their_own_connections(store_path):
    base = _seed_main(store_path)
    branch_of = {i: ("main" if i % 2 == 0 else f"thread-{i}") for i in range(WRITERS)}
    with loomdb.connect(store_path) as db:
        for name in set(branch_of.values()) - {"main"}:
            db.branch(name)

    def writer(i):
        def run():
            with loomdb.connect(store_path, branch=branch_of[i]) as own:
                assert own.branch_name == branch_of[i]
                write_rows(own, f"t{i}", branch_of[i], ROWS)

        return run

    _run_threads([writer(i) for i in range(WRITERS)])

    with loomdb.connect(store_path) as db:
        on_main = Counter(base)
        for i, name in branch_of.items():
            if name == "main":
                on_main += _expected(f"t{i}", ROWS, "main")
            else:
                _assert_exactly(_rows(db.checkout(name)), base + _expected(f"t{i}", ROWS, name), name)
        _assert_exactly(_rows(db), on_main, "main")
    assert integrity_check(store_path) == ["ok"]
