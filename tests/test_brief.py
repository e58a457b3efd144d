"""The product brief's snippets (shared/seed/000_450b794f6fef6cc9.txt) run on loomdb.

Only the import and the connection string differ from the brief:
``import loomdb; db = loomdb.connect(path)`` instead of
``import deeplake; db = deeplake.connect("deeplake://my-org/agent-runs")``.
The SQL text and ``persist_step`` are copied verbatim. ``db.merge`` is not
exercised here (a later issue adds it).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import loomdb

UTC = dt.UTC

# --- verbatim from the brief -------------------------------------------------
# fmt: off

SCHEMA_SNIPPET = """
CREATE TABLE IF NOT EXISTS iterations (
run_id TEXT,
step INT,
action TEXT,
observation TEXT,
embedding VECTOR(1536),
state_snapshot JSONB,
tokens_used INT,
created_at TIMESTAMP DEFAULT NOW()
)
"""


def persist_step(db, run_id, step, action, observation, embedding, state):
    db.execute("""
INSERT INTO iterations (run_id, step, action, observation, embedding, state_snapshot, tokens_used)
VALUES (%s, %s, %s, %s, %s, %s, %s)
""", [run_id, step, action, observation, embedding, state, state["tokens_used"]])


def recover(db, run_id, agent):
    # Resume from the last successful step after a crash
    last = db.execute("""
SELECT step, state_snapshot FROM iterations
WHERE run_id = %s ORDER BY step DESC LIMIT 1
""", [run_id]).fetchone()
    agent.restore(last["state_snapshot"])
    agent.resume(from_step=last["step"] + 1)
    return last
# fmt: on


# --- helpers -----------------------------------------------------------------


class FakeAgent:
    """Stands in for the brief's ``agent``: records what it was given."""

    def __init__(self):
        self.restored = None
        self.from_step = None

    def restore(self, state):
        self.restored = state

    def resume(self, from_step):
        self.from_step = from_step


def embedding_for(step: int, as_numpy: bool):
    """A deterministic 1536-d embedding; float64 values, as a list or an ndarray."""
    vec = np.random.default_rng(1000 + step).standard_normal(1536)
    return vec if as_numpy else [float(x) for x in vec]


def state_for(run_id: str, step: int) -> dict:
    return {
        "plan": [f"{run_id}: do {i}" for i in range(step % 3 + 1)],
        "tokens_used": 100 * (step + 1),
        "scratch": {"note": "naïve ü ✓", "done": step % 2 == 1, "score": step / 4},
        "history": None,
    }


def do_step(db, run_id, step, action_prefix="act", as_numpy=False):
    state = state_for(run_id, step)
    emb = embedding_for(step, as_numpy)
    persist_step(db, run_id, step, f"{action_prefix}-{step}", f"obs-{step}", emb, state)
    return emb, state


def visible(db):
    """(run_id, step, action) of every row this handle sees, sorted."""
    cur = db.execute("SELECT run_id, step, action FROM iterations")
    return sorted((r["run_id"], r["step"], r["action"]) for r in cur.fetchall())


@pytest.fixture
def db(store_path):
    db = loomdb.connect(store_path)
    db.execute(SCHEMA_SNIPPET)
    yield db
    db.close()


# --- tests -------------------------------------------------------------------


def test_schema_snippet_runs_twice_and_keeps_rows(db):
    assert db.execute("SELECT count(*) FROM iterations").fetchone()[0] == 0
    do_step(db, "run-42", 0)
    head = db.head
    db.execute(SCHEMA_SNIPPET)  # IF NOT EXISTS: a second run of the agent
    assert db.execute("SELECT count(*) FROM iterations").fetchone()[0] == 1
    assert db.head == head, "CREATE TABLE IF NOT EXISTS on an existing table made a commit"
    names = [d[0] for d in db.execute("SELECT * FROM iterations").description]
    assert names == [
        "run_id",
        "step",
        "action",
        "observation",
        "embedding",
        "state_snapshot",
        "tokens_used",
        "created_at",
    ]


def test_persist_step_then_recovery_query_resumes_after_last_step(db):
    for step in range(5):
        do_step(db, "run-42", step)
    for step in range(2):
        do_step(db, "run-7", step)

    agent = FakeAgent()
    last = recover(db, "run-42", agent)
    assert last["step"] == 4
    assert type(last["step"]) is int
    assert isinstance(last["state_snapshot"], dict)
    assert last["state_snapshot"] == state_for("run-42", 4)
    assert agent.restored == state_for("run-42", 4)
    assert agent.from_step == 5

    other = FakeAgent()
    recover(db, "run-7", other)
    assert other.from_step == 2
    assert other.restored == state_for("run-7", 1)


def test_each_persist_step_is_one_commit(db):
    before = len(db.log())
    heads = []
    for step in range(3):
        do_step(db, "run-42", step)
        heads.append(db.head)
    assert len(set(heads)) == 3
    assert len(db.log()) == before + 3
    assert [c.id for c in db.log(limit=3)] == heads[::-1]


def test_columns_come_back_as_python_values(db):
    written = {}
    for step in range(4):
        written[step] = do_step(db, "run-42", step, as_numpy=step % 2 == 1)
    rows = db.execute("SELECT * FROM iterations ORDER BY step").fetchall()
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    for r in rows:
        step = r["step"]
        emb, state = written[step]
        assert type(r["run_id"]) is str and r["run_id"] == "run-42"
        assert type(step) is int
        assert r["action"] == f"act-{step}" and r["observation"] == f"obs-{step}"
        e = r["embedding"]
        assert isinstance(e, np.ndarray), type(e)
        assert e.dtype == np.float32
        assert e.shape == (1536,)
        np.testing.assert_array_equal(e, np.asarray(emb, dtype=np.float32))
        assert isinstance(r["state_snapshot"], dict)
        assert r["state_snapshot"] == state
        assert type(r["state_snapshot"]["tokens_used"]) is int
        assert type(r["state_snapshot"]["scratch"]["score"]) is float
        assert type(r["tokens_used"]) is int and r["tokens_used"] == state["tokens_used"]
        c = r["created_at"]
        assert isinstance(c, dt.datetime)
        assert c.tzinfo is None  # a TIMESTAMP is naive, as psycopg returns PostgreSQL's


def test_created_at_defaults_to_now_in_utc_with_microseconds(db):
    stamps = []
    for step in range(6):
        before = dt.datetime.now(UTC)
        do_step(db, "run-42", step)
        after = dt.datetime.now(UTC)
        c = db.execute("SELECT created_at FROM iterations WHERE step = %s", [step]).fetchone()["created_at"]
        assert c.tzinfo is None  # TIMESTAMP: NOW()'s wall time in UTC, naive as in PostgreSQL
        c = c.replace(tzinfo=UTC)
        assert before <= c <= after, (before, c, after)
        stamps.append(c)
    assert stamps == sorted(stamps)
    # A microsecond clock: six NOW() values all on whole milliseconds would
    # mean millisecond (or coarser) precision.
    assert any(s.microsecond % 1000 for s in stamps), stamps


def test_recovery_after_crash_sees_every_returned_write(store_path):
    writer = loomdb.connect(store_path)
    writer.execute(SCHEMA_SNIPPET)
    for step in range(3):
        do_step(writer, "run-42", step)
    # The "crashed" process never closed its handle; a new process opens the file.
    survivor = loomdb.connect(store_path)
    try:
        agent = FakeAgent()
        last = recover(survivor, "run-42", agent)
        assert last["step"] == 2
        assert agent.restored == state_for("run-42", 2)
        assert agent.from_step == 3
        row = survivor.execute("SELECT embedding FROM iterations WHERE step = 1").fetchone()
        np.testing.assert_array_equal(row["embedding"], np.asarray(embedding_for(1, False), dtype=np.float32))
    finally:
        survivor.close()
        writer.close()


def test_branch_snippet_exactly_as_in_brief_then_checkout(db):
    for step in range(3):
        do_step(db, "run-42", step)
    fork_head = db.head

    # Agent explores two approaches in parallel
    db.branch("run-42/approach-a")
    db.branch("run-42/approach-b")

    assert db.branch_name == "main", "branch() must not move db off main"
    names = {b.name: b for b in db.branches()}
    assert {"main", "run-42/approach-a", "run-42/approach-b"} <= set(names)
    for n in ("run-42/approach-a", "run-42/approach-b"):
        assert names[n].parent == "main"
        assert names[n].fork == fork_head

    a = db.checkout("run-42/approach-a")
    b = db.checkout("run-42/approach-b")
    assert a.branch_name == "run-42/approach-a"
    assert b.branch_name == "run-42/approach-b"
    assert a.head == fork_head and b.head == fork_head

    # Each branch accumulates its own iterations independently
    for step in range(3, 6):
        do_step(a, "run-42", step, action_prefix="a")
    for step in range(3, 5):
        do_step(b, "run-42", step, action_prefix="b")

    base = [("run-42", s, f"act-{s}") for s in range(3)]
    assert visible(db) == base
    assert visible(a) == base + [("run-42", s, f"a-{s}") for s in range(3, 6)]
    assert visible(b) == base + [("run-42", s, f"b-{s}") for s in range(3, 5)]
    assert db.head == fork_head

    # A fresh checkout (not the handle that wrote) sees the same rows.
    assert visible(db.checkout("run-42/approach-a")) == visible(a)


def test_branch_handles_accumulate_rows_independently_of_main(db):
    for step in range(2):
        do_step(db, "run-42", step)
    fork_head = db.head

    a = db.branch("run-42/approach-a")
    b = db.branch("run-42/approach-b")
    assert a.branch_name == "run-42/approach-a"
    assert b.branch_name == "run-42/approach-b"
    assert db.branch_name == "main"

    for step in range(2, 5):
        do_step(a, "run-42", step, action_prefix="a", as_numpy=True)
    do_step(b, "run-42", 2, action_prefix="b")
    do_step(b, "run-99", 0, action_prefix="b")
    # main goes on after the fork: neither branch sees it
    do_step(db, "run-42", 2, action_prefix="main")

    base = [("run-42", 0, "act-0"), ("run-42", 1, "act-1")]
    assert visible(db) == base + [("run-42", 2, "main-2")]
    assert visible(a) == base + [("run-42", s, f"a-{s}") for s in (2, 3, 4)]
    assert visible(b) == sorted(base + [("run-42", 2, "b-2"), ("run-99", 0, "b-0")])

    # the recovery query answers per branch
    ag_main, ag_a, ag_b = FakeAgent(), FakeAgent(), FakeAgent()
    recover(db, "run-42", ag_main)
    recover(a, "run-42", ag_a)
    recover(b, "run-42", ag_b)
    assert (ag_main.from_step, ag_a.from_step, ag_b.from_step) == (3, 5, 3)
    assert ag_a.restored == state_for("run-42", 4)

    # branch-local values keep their types
    row = a.execute("SELECT embedding, state_snapshot, created_at FROM iterations WHERE step = 3").fetchone()
    np.testing.assert_array_equal(row["embedding"], np.asarray(embedding_for(3, True), dtype=np.float32))
    assert row["embedding"].dtype == np.float32
    assert row["state_snapshot"] == state_for("run-42", 3)
    assert isinstance(row["created_at"], dt.datetime) and row["created_at"].tzinfo is None

    # history of main at the fork point is what both branches started from
    assert visible(db.as_of(fork_head)) == base
    assert a.head != fork_head and b.head != fork_head and db.head != fork_head


def test_branches_survive_reopen_by_name(store_path):
    db = loomdb.connect(store_path)
    db.execute(SCHEMA_SNIPPET)
    do_step(db, "run-42", 0)
    a = db.branch("run-42/approach-a")
    do_step(a, "run-42", 1, action_prefix="a")
    db.close()

    reopened = loomdb.connect(store_path, branch="run-42/approach-a")
    try:
        assert reopened.branch_name == "run-42/approach-a"
        assert visible(reopened) == [("run-42", 0, "act-0"), ("run-42", 1, "a-1")]
        main = reopened.checkout("main")
        assert visible(main) == [("run-42", 0, "act-0")]
    finally:
        reopened.close()
