"""Fault injection on the PostgreSQL engine: lost connections and a restarted server.

PostgreSQL-specific by nature: these faults (a backend terminated by
``pg_terminate_backend``, a server restarted or crashed under a client,
nothing listening on the port) have no SQLite counterpart; the SQLite engine's
crash tests are ``test_crash.py``, ``test_merge_crash.py`` and
``test_powercut.py``. The stores are schemas of the test session's server
(``new_store``, with this module's ``engine`` fixed to postgres), and loomdb's connections
are found by the ``application_name`` their URL carries.

The contract under test (``backend/postgres/``): a lost connection raises
``loomdb.OperationalError``; the open transaction is gone with it, so nothing
half-written is ever visible; the same handle (on a fresh connection) or a
new ``loomdb.connect`` carries on, and every acknowledged commit is there.
"""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter

import psycopg
import pytest
from durability.common import (
    INSERT_STEP,
    ITERATIONS_DDL,
    check_step_row,
    commit_steps,
    integrity_check,
    split_pg_location,
    step_params,
    tagged,
    worker_cmd,
    worker_env,
)
from test_merge_crash import build_template, main_rows, merged_rows, read, source_rows

import loomdb

WAIT = 120.0  # generous deadline of every wait on a busy machine
INF = 9223372036854775807


@pytest.fixture
def engine() -> str:
    """``new_store`` makes PostgreSQL stores only, in this module."""
    return "postgres"


@pytest.fixture
def admin(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def _tag(what: str) -> str:
    return f"loomdb-{what}-{uuid.uuid4().hex[:8]}"


def _backend_pid(admin, tag: str) -> int:
    """The pid of the one server backend whose application_name is ``tag``."""
    deadline = time.monotonic() + WAIT
    while True:
        pids = [
            r[0]
            for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [tag]
            ).fetchall()
        ]
        if len(pids) == 1:
            return pids[0]
        assert len(pids) == 0 and time.monotonic() < deadline, f"backends of {tag}: {pids}"
        time.sleep(0.01)


def _terminate(admin, pid: int) -> None:
    """pg_terminate_backend, waiting until the backend has exited."""
    assert admin.execute("SELECT pg_terminate_backend(%s, %s)", [pid, int(WAIT * 1000)]).fetchone()[0]


def _step_rows(db, run_id: str) -> list[int]:
    rows = db.execute("SELECT * FROM iterations WHERE run_id = %s ORDER BY step", [run_id]).fetchall()
    for row in rows:
        check_step_row(row, run_id, row["step"])
    return [row["step"] for row in rows]


# -- a backend terminated inside a transaction() block ---------------------------------------


@pytest.mark.parametrize("when", ["mid-block", "at-commit", "idle"])
def test_terminated_backend_loses_only_the_open_transaction(new_store, admin, when):
    """The connection dies inside a ``with db.transaction():`` block (before a later
    statement, or just before the COMMIT), or while the handle is idle: that
    transaction (or statement) fails with OperationalError and is gone, and
    the handle goes on writing on a fresh connection."""
    store, tag = new_store(), _tag("txn")
    db = loomdb.connect(tagged(store, tag))
    db.execute(ITERATIONS_DDL)
    for step in range(5):
        db.execute(INSERT_STEP, step_params("run", step))
    with db.transaction(message="acked block"):
        for step in range(5, 8):
            db.execute(INSERT_STEP, step_params("run", step))
    acked_log = [c.message for c in db.log()]

    pid = db.execute("SELECT pg_backend_pid() AS pid").fetchone()["pid"]
    assert pid == _backend_pid(admin, tag)  # the handle's connection is the only one
    with pytest.raises(loomdb.OperationalError, match="PostgreSQL connection"):
        if when == "idle":
            _terminate(admin, pid)
            db.execute(INSERT_STEP, step_params("run", 8))
        else:
            with db.transaction(message="doomed block"):
                db.execute(INSERT_STEP, step_params("run", 8))
                db.execute(INSERT_STEP, step_params("run", 9))
                _terminate(admin, pid)
                if when == "mid-block":
                    db.execute(INSERT_STEP, step_params("run", 10))
    # The same handle goes on, on a fresh connection: the open transaction is gone.
    assert _step_rows(db, "run") == list(range(8)), "the open transaction's rows are visible"
    assert [c.message for c in db.log()] == acked_log
    with db.transaction(message="after"):
        for step in (8, 9, 10):
            db.execute(INSERT_STEP, step_params("run", step))
    db.close()

    with loomdb.connect(store) as again:
        assert _step_rows(again, "run") == list(range(11))
        again.execute(INSERT_STEP, step_params("run", 11))
        assert _step_rows(again, "run") == list(range(12))
        again.branch("later").execute(INSERT_STEP, step_params("branch", 0))
        assert _step_rows(again.checkout("later"), "branch") == [0]
    assert integrity_check(store) == ["ok"]


# -- a backend terminated in the middle of a merge -------------------------------------------


def _merge_store(new_store) -> str:
    """A store where merging ``src`` into main changes 2000 rows (test_merge_crash's)."""
    store = new_store()
    build_template(store)
    return store


def _merge_in_thread(location: str) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            with loomdb.connect(location) as db:
                outcome["result"] = db.merge("src", into="main")
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _holds_branch_lock(admin, pid: int) -> bool:
    """Whether ``pid`` is inside a write transaction (it holds an advisory branch lock)."""
    row = admin.execute(
        "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND granted", [pid]
    ).fetchone()
    return row[0] > 0


def _check_after_failed_merge(store: str, allowed: tuple[str, ...]) -> str:
    """Main is merged or untouched (as allowed), src unchanged; merging again works."""
    merged, untouched = merged_rows(), main_rows()
    with loomdb.connect(store) as db:
        main = read(db)
        if main == merged:
            outcome = "merged"
            assert len(db.log(limit=1)[0].parents) == 2, "merged rows without a merge commit"
        elif main == untouched:
            outcome = "untouched"
            assert len(db.log(limit=1)[0].parents) == 1, "a merge commit without the merged rows"
        else:
            differ = sum(1 for k in set(main) | set(merged) if main.get(k) != merged.get(k))
            pytest.fail(f"main is partially merged: {differ} rows differ from the merged content")
        assert outcome in allowed, f"main is {outcome}"
        assert read(db.checkout("src")) == source_rows(), "the source branch changed"
    assert integrity_check(store) == ["ok"]
    with loomdb.connect(store) as db:
        again = db.merge("src", into="main")
        assert (again.commit is None) == (outcome == "merged")
        assert read(db) == merged
    assert integrity_check(store) == ["ok"]
    return outcome


def test_terminated_backend_mid_merge_leaves_target_untouched(new_store, admin):
    """Deterministic: an admin session row-locks main's version of one row that the
    merge changes (k = 998, which today's merge reaches after writing about 1500 of
    its 2500 versions), so the merge stops on that row inside its transaction; its
    backend is terminated there."""
    store, tag = _merge_store(new_store), _tag("merge")
    server, schema = split_pg_location(store)
    (physical,) = admin.execute(f'SELECT physical FROM "{schema}".loom_tables').fetchone()
    # Version ids come from a sequence, which a rollback does not rewind: it shows
    # that the merge had written versions when it stopped.
    vid_sequence = f'SELECT last_value FROM "{schema}"."{physical}__vid"'
    vids_before = admin.execute(vid_sequence).fetchone()[0]
    with psycopg.connect(server) as blocker:  # holds the row lock in a transaction of its own
        locked = blocker.execute(
            f'SELECT _vid FROM "{schema}"."{physical}" WHERE _bid = 1 AND _end = %s AND k = 998 FOR UPDATE',
            [INF],
        ).fetchall()
        assert len(locked) == 1  # main's current version of a row src updated
        thread, outcome = _merge_in_thread(tagged(store, tag))
        pid = _backend_pid(admin, tag)
        deadline = time.monotonic() + WAIT
        while True:  # until the merge waits for that row, inside its write transaction
            waiting = admin.execute(
                "SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if waiting and waiting[0] == "Lock" and _holds_branch_lock(admin, pid):
                break
            assert thread.is_alive(), f"the merge ended without waiting for the locked row: {outcome}"
            assert time.monotonic() < deadline, "the merge never reached the locked row"
            time.sleep(0.01)
        assert "_end" in waiting[1], f"the merge waits in an unexpected statement: {waiting[1]}"
        written = admin.execute(vid_sequence).fetchone()[0] - vids_before
        assert written > 0, "the merge had written nothing yet: the test would prove little"
        _terminate(admin, pid)
        thread.join(WAIT)
        assert not thread.is_alive()
        blocker.rollback()
    assert isinstance(outcome.get("error"), loomdb.OperationalError), outcome
    assert _check_after_failed_merge(store, ("untouched",)) == "untouched"


@pytest.mark.slow
def test_terminated_backend_at_random_points_of_a_merge(new_store, admin):
    """Terminated at a random moment after the merge's transaction opened (some may
    come after its commit): main is merged or untouched, and a merge that returned
    is there."""
    template = _merge_store(new_store)
    rng = random.Random()
    seed = rng.randrange(2**31)
    rng.seed(seed)
    # How long a merge holds its transaction here, to aim inside it.
    calibration = new_store()
    loomdb.copy(template, calibration)
    with loomdb.connect(calibration) as db:
        began = time.monotonic()
        db.merge("src", into="main")
        window = time.monotonic() - began
    outcomes = []
    for trial in range(3):
        store, tag = new_store(), _tag(f"merge{trial}")
        loomdb.copy(template, store)
        thread, outcome = _merge_in_thread(tagged(store, tag))
        pid = _backend_pid(admin, tag)
        deadline = time.monotonic() + WAIT
        while not _holds_branch_lock(admin, pid) and thread.is_alive():
            assert time.monotonic() < deadline, "the merge never opened its transaction"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, window * 1.2))
        admin.execute("SELECT pg_terminate_backend(%s, %s)", [pid, int(WAIT * 1000)])
        thread.join(WAIT)
        assert not thread.is_alive()
        error = outcome.get("error")
        assert error is None or isinstance(error, loomdb.OperationalError), f"{error!r} (seed {seed})"
        allowed = ("merged",) if error is None else ("merged", "untouched")
        outcomes.append(_check_after_failed_merge(store, allowed))
    print(f"merge termination outcomes (seed {seed}): {outcomes}")


# -- the server restarts (or crashes) under a writing agent ----------------------------------


class _Loop:
    """A reconnect_worker process and the lines it has written so far."""

    def __init__(self, config: dict) -> None:
        self.proc = subprocess.Popen(
            worker_cmd("reconnect_worker.py", config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
        )
        self.lines: list[str] = []
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.endswith("\n"):
                self.lines.append(line.strip())

    def count(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))

    def wait_for(self, what: str, condition) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            if self.proc.poll() is not None:
                self._out.join()
                pytest.fail(f"the writer died waiting for {what}:\n{self.proc.stderr.read()}")
            assert time.monotonic() < deadline, f"no {what} after {WAIT}s: {self.lines[-5:]}"
            time.sleep(0.01)

    def finish(self) -> None:
        try:
            rc = self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._out.join()
        err = self.proc.stderr.read()
        assert rc == 0 and self.lines[-1:] == ["done"], f"writer status {rc}:\n{err}"

    def acked(self) -> list[int]:
        return [int(w) for line in self.lines if line.startswith("ack ") for w in line.split()[1:]]


@pytest.mark.parametrize("fault", ["restart", "crash"])
def test_server_restart_under_a_writing_agent(new_store, pg_server_instance, tmp_path, fault):
    """``restart``: a fast shutdown and start (durability="normal": the shutdown
    checkpoint keeps asynchronous commits). ``crash``: an immediate shutdown, then
    crash recovery (durability="full": a commit that returned must survive it).
    The writer gets OperationalError, reconnects and resumes; afterwards every
    acknowledged step is there exactly once and no commit is there in part."""
    if pg_server_instance is None:
        pytest.skip("LOOMDB_TEST_POSTGRES_URL names an external server, which the tests may not restart")
    store = new_store()
    stop = tmp_path / "stop"
    run_id = f"agent-{fault}"
    loop = _Loop(
        {
            "path": store,
            "durability": "normal" if fault == "restart" else "full",
            "run_id": run_id,
            "stop_file": str(stop),
            "reconnect_timeout": WAIT,
        }
    )
    try:
        loop.wait_for("20 acknowledged commits", lambda: loop.count("ack ") >= 20)
        if fault == "restart":
            pg_server_instance.restart()
        else:
            pg_server_instance.kill()
            pg_server_instance.start()
        acks_after = loop.count("ack ")
        loop.wait_for("an error from the restart", lambda: loop.count("error ") >= 1)
        loop.wait_for("20 commits after the restart", lambda: loop.count("ack ") >= acks_after + 20)
        stop.touch()
        loop.finish()
    finally:
        if loop.proc.poll() is None:
            loop.proc.kill()
            loop.proc.wait()

    acked = loop.acked()
    in_doubt = [steps for steps in (_error_steps(line) for line in loop.lines) if steps]
    assert acked == sorted(set(acked)), "the writer acknowledged a step twice"
    with loomdb.connect(store) as db:
        present = _step_rows(db, run_id)
        duplicates = sorted(s for s, n in Counter(present).items() if n > 1)
        assert not duplicates, f"steps present more than once: {duplicates}"
        missing = sorted(set(acked) - set(present))
        assert not missing, f"acknowledged steps lost across the {fault}: {missing}"
        extra = set(present) - set(acked)
        assert extra <= {s for steps in in_doubt for s in steps}, f"steps nobody wrote: {sorted(extra)}"
        for steps in in_doubt:  # a commit whose outcome the writer never learnt: whole or absent
            assert set(steps) <= set(present) or not set(steps) & set(present), f"commit {steps} in part"
        assert present == list(range(len(present)))
        # Each multi-step commit is one transaction: NOW() is the same for its rows.
        stamps = {
            r["step"]: r["created_at"]
            for r in db.execute(
                "SELECT step, created_at FROM iterations WHERE run_id = %s", [run_id]
            ).fetchall()
        }
        for first in range(0, len(present)):
            steps = commit_steps(first)
            if len(steps) > 1 and steps[-1] < len(present):
                assert len({stamps[s] for s in steps}) == 1, f"steps {steps} were not one commit"
        db.execute(INSERT_STEP, step_params(run_id, len(present)))
        assert _step_rows(db, run_id) == list(range(len(present) + 1))
    assert integrity_check(store) == ["ok"]


def _error_steps(line: str) -> list[int]:
    """The steps of an ``error <steps> <message>`` line."""
    if not line.startswith("error "):
        return []
    steps = []
    for word in line.split()[1:]:
        if not word.isdigit():
            break
        steps.append(int(word))
    return steps


# -- nothing listens -------------------------------------------------------------------------


def test_connect_where_nothing_listens_is_a_clear_operational_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # (closed again: nothing listens there now)
    url = f"postgresql://agent:s3cret-pw@127.0.0.1:{port}/postgres?schema=nowhere"
    with pytest.raises(loomdb.OperationalError) as info:
        loomdb.connect(url, timeout=5)
    message = str(info.value)
    assert "cannot connect to PostgreSQL" in message
    assert f"127.0.0.1:{port}" in message
    assert "refused" in message.lower()
    assert "s3cret-pw" not in message, "the password leaked into the message"
