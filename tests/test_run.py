"""The agent-loop Run API (docs/run.md), on both engines."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loomdb
from loomdb.run import Resume

DIM = 8
BRIEF_TABLE = """
CREATE TABLE iterations (
    run_id TEXT, step INT, action TEXT, observation TEXT,
    embedding VECTOR(8), state_snapshot JSONB, tokens_used INT,
    created_at TIMESTAMP DEFAULT NOW()
)"""


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def persist_steps(run: loomdb.Run, steps, prefix: str = "act") -> None:
    for step in steps:
        run.persist(
            step,
            action=f"{prefix} {step}",
            observation=f"obs {step}",
            state={"step": step, "plan": [prefix]},
            embedding=vec(step),
            tokens_used=10 * step,
        )


def step_numbers(run: loomdb.Run) -> list[int]:
    return [s.step for s in run.steps()]


def commit_count(db: loomdb.Database) -> int:
    return len(db.log())


# -- the table ------------------------------------------------------------------------------


def test_run_creates_the_briefs_table_with_a_key_on_run_and_step(fresh_db):
    fresh_db.run("run-42", dim=DIM)
    cursor = fresh_db.execute("SELECT * FROM iterations LIMIT 0")
    assert [(d[0], d[1]) for d in cursor.description] == [
        ("run_id", "TEXT"),
        ("step", "INT"),
        ("action", "TEXT"),
        ("observation", "TEXT"),
        ("embedding", f"VECTOR({DIM})"),
        ("state_snapshot", "JSONB"),
        ("tokens_used", "INT"),
        ("created_at", "TIMESTAMP"),
    ]
    insert = "INSERT INTO iterations (run_id, step) VALUES (%s, %s)"
    fresh_db.execute(insert, ["run-42", 1])
    with pytest.raises(loomdb.IntegrityError):
        fresh_db.execute(insert, ["run-42", 1])


def test_run_embedding_dimension_defaults_to_1536(fresh_db):
    run = fresh_db.run("run-42")
    assert run.dim == loomdb.run.DEFAULT_DIM == 1536
    run.persist(1, embedding=np.ones(1536))


def test_run_takes_the_dimension_of_an_existing_table(fresh_db):
    fresh_db.execute(BRIEF_TABLE)
    assert fresh_db.run("run-42").dim == DIM


def test_a_dim_other_than_the_tables_raises_data_error(fresh_db):
    fresh_db.run("run-42", dim=DIM)
    with pytest.raises(loomdb.DataError, match=r"VECTOR\(8\), not of dimension 16"):
        fresh_db.run("run-43", dim=16)


def test_persisting_an_embedding_of_the_wrong_dimension_raises_data_error_and_writes_nothing(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    head = fresh_db.head
    with pytest.raises(loomdb.DataError, match="embedding"):
        run.persist(1, action="a", embedding=np.ones(DIM + 1))
    assert fresh_db.head == head
    assert run.last() is None


def test_run_uses_a_table_the_user_created_and_fills_its_own_columns(fresh_db):
    fresh_db.execute(
        "CREATE TABLE iterations (run_id TEXT, step INT, action TEXT, observation TEXT,"
        " embedding VECTOR(8), state_snapshot JSONB, tokens_used INT,"
        " created_at TIMESTAMP DEFAULT NOW(), model TEXT, latency_ms INT, PRIMARY KEY (run_id, step))"
    )
    run = fresh_db.run("run-42")
    assert run.persist(1, action="plan", model="gpt-x", latency_ms=840) is True
    step = run.get(1)
    assert step.extra == {"model": "gpt-x", "latency_ms": 840}
    assert step.action == "plan"
    assert run.persist(1, action="plan", model="gpt-x", latency_ms=840) is False
    with pytest.raises(loomdb.StepConflictError, match="latency_ms"):
        run.persist(1, action="plan", model="gpt-x", latency_ms=841)


def test_persist_names_an_unknown_column(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    with pytest.raises(loomdb.ProgrammingError, match="no column 'temperature'"):
        run.persist(1, action="a", temperature=0.2)
    assert run.last() is None


def test_persist_refuses_run_columns_passed_as_extra_columns(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    with pytest.raises(loomdb.ProgrammingError, match="'state'"):
        run.persist(1, state_snapshot={"a": 1})
    with pytest.raises(loomdb.ProgrammingError, match="run_id"):
        run.persist(1, run_id="other")


def test_persist_sees_a_column_added_after_the_run_was_opened(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    fresh_db.execute("ALTER TABLE iterations ADD COLUMN reviewer TEXT")
    run.persist(1, action="a", reviewer="ada")
    assert run.get(1).extra == {"reviewer": "ada"}


def test_run_refuses_a_table_without_the_run_columns(fresh_db):
    fresh_db.execute("CREATE TABLE notes (run_id TEXT, step INT, body TEXT)")
    with pytest.raises(loomdb.ProgrammingError, match="lacks the Run API's column"):
        fresh_db.run("run-42", table="notes")


def test_run_refuses_a_bad_run_id_table_or_dim(fresh_db):
    for kwargs in ({"run_id": ""}, {"run_id": 42}):
        with pytest.raises(loomdb.ProgrammingError, match="run_id"):
            fresh_db.run(**kwargs)
    with pytest.raises(loomdb.ProgrammingError, match="identifier"):
        fresh_db.run("run-42", table="iterations; DROP TABLE x")
    with pytest.raises(loomdb.ProgrammingError, match="dim"):
        fresh_db.run("run-42", dim=0)
    with pytest.raises(loomdb.ProgrammingError):  # nothing was created
        fresh_db.execute("SELECT * FROM iterations")


def test_the_briefs_keyless_table_gets_a_unique_step_key(fresh_db):
    fresh_db.execute(BRIEF_TABLE)
    run = fresh_db.run("run-42")
    persist_steps(run, [1])
    assert run.persist(1, action="act 1", observation="obs 1", state={"step": 1, "plan": ["act"]},
                       embedding=vec(1), tokens_used=10) is False  # fmt: skip
    with pytest.raises(loomdb.StepConflictError):
        run.persist(1, action="something else")
    with pytest.raises(loomdb.IntegrityError):
        fresh_db.execute("INSERT INTO iterations (run_id, step) VALUES ('run-42', 1)")
    assert fresh_db.execute("SELECT count(*) FROM iterations").fetchone()[0] == 1


def test_a_keyless_table_that_already_repeats_a_step_raises_integrity_error(fresh_db):
    fresh_db.execute(BRIEF_TABLE)
    fresh_db.executemany("INSERT INTO iterations (run_id, step) VALUES (%s, %s)", [["r", 1], ["r", 1]])
    with pytest.raises(loomdb.IntegrityError, match="duplicated"):
        fresh_db.run("r")


def test_opening_a_run_on_an_existing_table_leaves_no_commit_and_no_row(fresh_db):
    fresh_db.run("run-42", dim=DIM)
    other = fresh_db.checkout("main")  # a new handle looks at the table again
    head, commits = fresh_db.head, commit_count(fresh_db)
    other.run("run-42")
    assert (fresh_db.head, commit_count(fresh_db)) == (head, commits)
    assert fresh_db.execute("SELECT count(*) FROM iterations").fetchone()[0] == 0


def test_opening_a_run_inside_a_transaction_adds_nothing_to_it(fresh_db):
    fresh_db.run("run-42", dim=DIM)
    other = fresh_db.checkout("main")
    with fresh_db.transaction():
        run = other.run("run-42")
        run.persist(1, action="a")
    assert [r["step"] for r in fresh_db.execute("SELECT step FROM iterations")] == [1]


# -- persist ----------------------------------------------------------------------------------


def test_each_persist_is_one_commit(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    before = commit_count(fresh_db)
    persist_steps(run, [1, 2, 3])
    assert commit_count(fresh_db) == before + 3


def test_persist_stores_every_column_as_given(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    state = {"plan": ["b", "c"], "done": ["a"], "tokens_used": 812, "nested": {"ok": True}}
    assert run.persist(1, action="a", observation="saw x", state=state, embedding=vec(1), tokens_used=812)
    step = run.get(1)
    assert (step.run_id, step.step, step.action, step.observation) == ("run-42", 1, "a", "saw x")
    assert step.state == state and step.tokens_used == 812
    assert np.array_equal(step.embedding, vec(1))
    assert isinstance(step.created_at, dt.datetime) and step.created_at.tzinfo is not None
    assert step.extra == {} and step.distance is None


def test_an_identical_retry_writes_nothing_and_returns_false(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    state = {"plan": ("b", "c"), "score": np.float64(0.5), "n": np.int64(3)}  # stored as JSON
    assert run.persist(1, action="a", state=state, embedding=vec(1).tolist(), tokens_used=5) is True
    head, commits = fresh_db.head, commit_count(fresh_db)
    assert run.persist(1, action="a", state=state, embedding=vec(1), tokens_used=5) is False
    assert (fresh_db.head, commit_count(fresh_db)) == (head, commits)
    assert len(run.steps()) == 1


def test_a_retry_after_an_in_doubt_commit_on_a_new_connection_is_safe(store_path):
    # The first process persisted step 2 and died before it knew; its successor retries.
    first = loomdb.connect(store_path)
    persist_steps(first.run("run-42", dim=DIM), [1, 2])
    first.close()
    second = loomdb.connect(store_path)
    run = second.run("run-42")
    resumed = run.resume()
    assert resumed.next_step == 3
    persist_steps(run, [2, 3])  # step 2 again, as the retry would
    assert step_numbers(run) == [1, 2, 3]
    second.close()


def test_a_retry_with_other_content_raises_step_conflict_naming_run_step_and_columns(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    run.persist(3, action="a", observation="o", state={"x": 1}, embedding=vec(3), tokens_used=1)
    head = fresh_db.head
    with pytest.raises(loomdb.StepConflictError) as info:
        run.persist(3, action="a", observation="o", state={"x": 2}, embedding=vec(4), tokens_used=1)
    err = info.value
    assert isinstance(err, loomdb.IntegrityError)
    assert (err.run_id, err.step, err.branch, err.columns) == (
        "run-42",
        3,
        "main",
        ("embedding", "state_snapshot"),
    )
    assert "step 3 of run 'run-42'" in str(err) and "branch 'main'" in str(err)
    assert fresh_db.head == head
    assert run.get(3).state == {"x": 1}


def test_a_retry_that_leaves_out_a_stored_value_is_a_conflict(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    run.persist(1, action="a", tokens_used=7)
    with pytest.raises(loomdb.StepConflictError, match="tokens_used"):
        run.persist(1, action="a")


def test_runs_with_different_ids_keep_their_own_steps(fresh_db):
    a, b = fresh_db.run("run-a", dim=DIM), fresh_db.run("run-b")
    persist_steps(a, [1, 2], "a")
    persist_steps(b, [1], "b")
    assert [s.action for s in a.steps()] == ["a 1", "a 2"]
    assert [s.action for s in b.steps()] == ["b 1"]


def test_persist_inside_a_transaction_commits_with_it_or_not_at_all(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    fresh_db.execute("CREATE TABLE memory (note TEXT)")
    with fresh_db.transaction(message="step 1 and a note"):
        run.persist(1, action="a")
        fresh_db.execute("INSERT INTO memory VALUES ('learned x')")
    assert fresh_db.log(limit=1)[0].message == "step 1 and a note"
    with pytest.raises(RuntimeError), fresh_db.transaction():
        run.persist(2, action="b")
        raise RuntimeError("the model call failed")
    assert step_numbers(run) == [1]


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, None])
def test_persist_refuses_a_step_that_is_not_a_non_negative_int(fresh_db, bad):
    run = fresh_db.run("run-42", dim=DIM)
    with pytest.raises(loomdb.ProgrammingError, match="step must be a non-negative int"):
        run.persist(bad, action="a")


@settings(max_examples=20)
@given(
    attempts=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(["a", "b"]), st.sampled_from([None, 1, 2])),
        max_size=12,
    )
)
def test_the_first_persist_of_a_step_wins_and_later_ones_return_false_or_raise(fresh_db, attempts):
    run = fresh_db.run(f"run-{fresh_db.head}", dim=DIM)  # a fresh run per example
    model: dict[int, tuple[str, int | None]] = {}
    for step, action, tokens in attempts:
        if step not in model:
            assert run.persist(step, action=action, tokens_used=tokens) is True
            model[step] = (action, tokens)
        elif model[step] == (action, tokens):
            assert run.persist(step, action=action, tokens_used=tokens) is False
        else:
            with pytest.raises(loomdb.StepConflictError):
                run.persist(step, action=action, tokens_used=tokens)
    assert [(s.step, s.action, s.tokens_used) for s in run.steps()] == [
        (step, *model[step]) for step in sorted(model)
    ]


# -- reading ----------------------------------------------------------------------------------


def test_a_run_without_steps_resumes_at_step_1_with_no_state(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    assert run.last() is None
    assert run.resume() == Resume(None, 1, None)
    assert run.steps() == []


def test_resume_gives_the_newest_state_and_the_next_step_after_a_reconnect(store_path):
    db = loomdb.connect(store_path)
    persist_steps(db.run("run-42", dim=DIM), [1, 2, 3])
    db.close()
    db = loomdb.connect(store_path)
    state, next_step, last = db.run("run-42").resume()
    assert (state, next_step, last.step, last.action) == ({"step": 3, "plan": ["act"]}, 4, 3, "act 3")
    db.close()


def test_last_is_the_highest_step_not_the_latest_written(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [5, 2])
    assert run.last().step == 5


def test_steps_come_in_step_order_after_a_step_and_up_to_a_limit(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [3, 1, 4, 2, 5])
    assert step_numbers(run) == [1, 2, 3, 4, 5]
    assert [s.step for s in run.steps(after=2)] == [3, 4, 5]
    assert [s.step for s in run.steps(after=2, limit=2)] == [3, 4]
    assert run.get(4).action == "act 4"
    assert run.get(9) is None
    with pytest.raises(loomdb.ProgrammingError, match="limit"):
        run.steps(limit=-1)


def test_similar_returns_this_runs_nearest_steps_first_with_their_distances(fresh_db):
    run, other = fresh_db.run("run-42", dim=DIM), fresh_db.run("run-7")
    persist_steps(run, range(1, 11))
    persist_steps(other, range(11, 21))
    query = vec(3) + 0.1 * vec(99)
    hits = run.similar(query, k=3)
    stored = {s: vec(s) for s in range(1, 11)}
    cosine = {
        s: 1 - float(v @ query) / float(np.linalg.norm(v) * np.linalg.norm(query)) for s, v in stored.items()
    }
    assert [h.step for h in hits] == sorted(cosine, key=cosine.get)[:3]
    assert hits[0].step == 3 and all(h.run_id == "run-42" for h in hits)
    for hit in hits:
        assert hit.distance == pytest.approx(cosine[hit.step], abs=1e-5)
    everywhere = run.similar(vec(15), k=1, all_runs=True)
    assert [(h.run_id, h.step) for h in everywhere] == [("run-7", 15)]


def test_similar_supports_l2_and_inner_product(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, range(1, 6))
    query = vec(2)
    l2 = run.similar(query, k=1, metric="l2")[0]
    assert l2.step == 2 and l2.distance == pytest.approx(0.0, abs=1e-6)
    ip = run.similar(query, k=5, metric="inner_product")
    expected = sorted(range(1, 6), key=lambda s: -float(vec(s) @ query))
    assert [h.step for h in ip] == expected
    assert ip[0].distance == pytest.approx(-float(vec(expected[0]) @ query), rel=1e-5)


def test_similar_never_returns_steps_without_an_embedding(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    run.persist(1, action="no vector")
    run.persist(2, action="vector", embedding=vec(2))
    assert [h.step for h in run.similar(vec(2), k=5)] == [2]


def test_similar_refuses_bad_arguments(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    with pytest.raises(loomdb.ProgrammingError, match="k must be"):
        run.similar(vec(1), k=0)
    with pytest.raises(loomdb.ProgrammingError, match="metric"):
        run.similar(vec(1), metric="hamming")
    with pytest.raises(loomdb.DataError):
        run.similar(np.ones(DIM + 2))


# -- fork ---------------------------------------------------------------------------------------


def test_fork_gives_a_branch_whose_run_ends_at_the_step(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, range(1, 6))
    fork = run.fork(at_step=3)
    assert isinstance(fork, loomdb.Run)
    assert (fork.branch, fork.run_id) == ("run-42/fork-3", "run-42")
    assert step_numbers(fork) == [1, 2, 3]
    assert fork.resume().next_step == 4
    assert step_numbers(run) == [1, 2, 3, 4, 5]  # the original is untouched
    persist_steps(fork, [4], "explore")
    assert fork.get(4).action == "explore 4" and run.get(4).action == "act 4"


def test_fork_holds_the_whole_store_as_it_was_when_the_step_was_persisted(fresh_db):
    run, other = fresh_db.run("run-42", dim=DIM), fresh_db.run("run-7")
    fresh_db.execute("CREATE TABLE memory (note TEXT)")
    persist_steps(other, [1])
    persist_steps(run, [1, 2])
    fresh_db.execute("INSERT INTO memory VALUES ('after step 2')")
    persist_steps(other, [2])
    fork = run.fork(at_step=2)
    assert fork.db.execute("SELECT count(*) FROM memory").fetchone()[0] == 0
    assert step_numbers(fork.db.run("run-7")) == [1]
    branch = next(b for b in fresh_db.branches() if b.name == fork.branch)
    assert (branch.parent, branch.fork) == ("main", fresh_db.log(limit=3)[2].id)


def test_forks_without_a_name_get_the_next_free_name(fresh_db):
    run = fresh_db.run("run 42: retry!", dim=DIM)  # not a valid branch name as it is
    persist_steps(run, [1, 2])
    names = [run.fork(at_step=2).branch for _ in range(3)]
    assert names == ["run-42:-retry-/fork-2", "run-42:-retry-/fork-2-2", "run-42:-retry-/fork-2-3"]


def test_fork_with_a_name_that_is_taken_raises_branch_exists(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1])
    assert run.fork(at_step=1, name="explore").branch == "explore"
    with pytest.raises(loomdb.BranchExistsError):
        run.fork(at_step=1, name="explore")


def test_fork_at_a_step_that_is_not_stored_raises_step_not_found(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1, 2])
    branches = len(fresh_db.branches())
    with pytest.raises(loomdb.StepNotFoundError, match="no step 3"):
        run.fork(at_step=3)
    assert len(fresh_db.branches()) == branches


def test_fork_finds_an_old_step_behind_many_later_commits(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1, 2, 3])
    noise = fresh_db.run("noise")
    for step in range(70):  # more commits than fork's first look at the log
        noise.persist(step)
    persist_steps(run, [4])
    fork = run.fork(at_step=2)
    assert step_numbers(fork) == [1, 2]
    assert step_numbers(fork.db.run("noise")) == []


def test_a_fork_of_a_fork_ends_at_its_step(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, range(1, 5))
    first = run.fork(at_step=3)
    persist_steps(first, [4, 5], "first")
    second = first.fork(at_step=4)
    assert [(s.step, s.action) for s in second.steps()] == [
        (1, "act 1"), (2, "act 2"), (3, "act 3"), (4, "first 4"),
    ]  # fmt: skip
    second_again = first.fork(at_step=2)
    assert step_numbers(second_again) == [1, 2]


def test_fork_at_a_step_that_came_with_later_steps_in_one_merge_drops_those_steps(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1])
    side = run.fork(at_step=1, name="side")
    persist_steps(side, [2, 3, 4], "side")
    run.db.merge("side", into="main")  # steps 2..4 reach main in one commit
    fork = run.fork(at_step=3)
    assert step_numbers(fork) == [1, 2, 3]
    assert fork.get(3).action == "side 3"
    assert step_numbers(run) == [1, 2, 3, 4]


def test_a_read_only_snapshot_run_reads_and_forks_but_does_not_persist(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1, 2])
    snapshot = fresh_db.as_of(fresh_db.head).run("run-42")
    persist_steps(run, [3])
    assert step_numbers(snapshot) == [1, 2]
    with pytest.raises(loomdb.ReadOnlyError):
        snapshot.persist(3, action="a")
    assert step_numbers(snapshot.fork(at_step=2)) == [1, 2]


# -- merge ------------------------------------------------------------------------------------


def test_a_fork_from_the_tip_merges_back_into_main_cleanly(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1, 2])
    fork = run.fork(at_step=2)
    persist_steps(fork, [3, 4], "fork")
    result = fork.merge(into="main")
    assert result.commit is not None and result.tables["iterations"].added == 2
    assert [s.action for s in run.steps()] == ["act 1", "act 2", "fork 3", "fork 4"]
    assert fresh_db.log(limit=1)[0].parents[1] == fork.db.head


def test_merging_a_fork_from_the_past_conflicts_on_the_steps_both_stored(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1, 2, 3, 4])
    fork = run.fork(at_step=2)
    persist_steps(fork, [3], "explore")
    head = fresh_db.head
    with pytest.raises(loomdb.MergeConflict) as info:
        fork.merge(into="main")
    assert [(c.key, c.kind) for c in info.value.conflicts] == [
        ({"run_id": "run-42", "step": 3}, "insert/insert")
    ]
    assert fresh_db.head == head
    fork.merge(into="main", on_conflict="theirs")
    assert [s.action for s in run.steps()] == ["act 1", "act 2", "explore 3", "act 4"]


def test_a_run_cannot_merge_into_its_own_branch(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1])
    with pytest.raises(loomdb.ProgrammingError, match="into itself"):
        run.merge(into="main")


def test_merge_into_a_branch_that_does_not_exist_raises_branch_not_found(fresh_db):
    run = fresh_db.run("run-42", dim=DIM)
    persist_steps(run, [1])
    fork = run.fork(at_step=1)
    with pytest.raises(loomdb.BranchNotFoundError):
        fork.merge(into="nowhere")
