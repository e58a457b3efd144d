"""examples/langgraph_agent.py runs offline and does what it says: crash, resume, fork, SQL, merge."""

from __future__ import annotations

import subprocess

import example_scripts
import pytest
from durability.common import integrity_check
from langchain_core.messages import ToolMessage

import loomdb
from loomdb.langgraph import LoomSaver


def load_example():
    """examples/langgraph_agent.py as a module, for the script its expected values come from."""
    return example_scripts.load("langgraph_agent.py")


def run_example(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return example_scripts.run("langgraph_agent.py", *args, env=env)


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    store = tmp_path_factory.mktemp("langgraph-agent") / "agent.loom"
    proc = run_example(str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, str(store)


def checkpoints(db: loomdb.Database, thread_id: str) -> dict[str, dict]:
    """The thread's checkpoint rows on ``db``'s branch (or snapshot), by checkpoint id."""
    rows = db.execute(
        "SELECT checkpoint_id, parent_checkpoint_id, run_id, step, source, channel_values FROM checkpoints"
        " WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id",
        [thread_id],
    ).fetchall()
    return {r["checkpoint_id"]: dict(r) for r in rows}


def test_the_agent_process_dies_mid_step_and_the_next_one_resumes_from_the_last_durable_checkpoint(kept):
    out, store = kept
    ex = load_example()
    crash = ex.CRASH_AT
    assert f"killed by SIGKILL in the tool node during step {crash}" in out
    assert f"last durable step {crash - 1}, next ('tool',)" in out
    assert f"main step {crash} tool: rerun the test 50 times → 7/50 fail" in out  # the node ran again
    assert "outcome on main: not fixed after 6633 tokens" in out
    db = loomdb.connect(store)
    try:
        rows = checkpoints(db, ex.THREAD_ID)
        killed = sorted(
            (r for r in rows.values() if r["run_id"] == ex.RUNS["killed"]), key=lambda r: r["step"]
        )
        resumed = sorted(
            (r for r in rows.values() if r["run_id"] == ex.RUNS["resumed"]), key=lambda r: r["step"]
        )
        assert [r["step"] for r in killed] == list(range(-1, crash))  # nothing of the killed step is stored
        assert resumed[0]["step"] == crash
        assert resumed[0]["parent_checkpoint_id"] == killed[-1]["checkpoint_id"]
        for parent, child in zip(resumed, resumed[1:], strict=False):
            assert child["parent_checkpoint_id"] == parent["checkpoint_id"]
        assert resumed[-1]["channel_values"]["outcome"] == "not fixed"
        # The interrupted tool call's result is in the transcript once: the rerun appended it, nothing else did.
        transcript = LoomSaver(db).get_tuple(
            {"configurable": {"thread_id": ex.THREAD_ID, "checkpoint_id": resumed[-1]["checkpoint_id"]}}
        )
        results = [
            m.content
            for m in transcript.checkpoint["channel_values"]["messages"]
            if isinstance(m, ToolMessage)
        ]
        assert results == [
            "test_refund_rounding fails about 1 CI run in 7",
            "211 passed, 1 failed: test_refund_rounding",
            "refund = round(amount * ratio, 2) on floats",
            "7/50 fail: 0.005 rounds down in binary floats",
            "1 file changed",
            "still 3/200 failing: reruns hide, not fix",
        ]
    finally:
        db.close()


def test_the_fork_starts_before_the_bad_decision_and_main_does_not_see_it_before_the_merge(kept):
    out, store = kept
    ex = load_example()
    db = loomdb.connect(store)
    try:
        assert ex.BRANCH in {b.name for b in db.branches()}
        merge = db.log(limit=1)[0]
        before_merge = checkpoints(db.as_of(merge.parents[0]), ex.THREAD_ID)
        on_fork = checkpoints(db.checkout(ex.BRANCH), ex.THREAD_ID)
        only_on_fork = {cid: r for cid, r in on_fork.items() if cid not in before_merge}
        assert len(only_on_fork) == 8 and set(before_merge) < set(on_fork)
        assert f"{len(only_on_fork)} checkpoints only on {ex.BRANCH}" in out
        assert all(r["channel_values"].get("approach") != "decimal" for r in before_merge.values())

        # The branch's first checkpoint is the update, on the checkpoint before main chose 'retry'.
        update = min(only_on_fork.values(), key=lambda r: r["step"])
        assert update["source"] == "update" and update["channel_values"]["avoid"] == "retry"
        fork_point = before_merge[update["parent_checkpoint_id"]]
        assert fork_point["channel_values"]["approach"] is None
        main_next = [
            r for r in before_merge.values() if r["parent_checkpoint_id"] == fork_point["checkpoint_id"]
        ]
        assert [r["channel_values"]["approach"] for r in main_next] == ["retry"]
        assert f"the model chose 'retry' at step {main_next[0]['step']}" in out
        assert {r["run_id"] for r in only_on_fork.values() if r is not update} == {ex.RUNS["fork"]}
        assert "outcome on issue-1187/no-retries: fixed: 212 passed after 8779 tokens" in out
        assert "get_tuple(the fork's latest) → None, outcome still not fixed" in out
    finally:
        db.close()


def test_after_the_merge_main_lists_both_continuations_and_its_latest_is_the_forks(kept):
    out, store = kept
    ex = load_example()
    with LoomSaver.from_conn_string(store) as saver:
        db = saver.db
        merge = db.log(limit=1)[0]
        assert merge.parents[1] == db.checkout(ex.BRANCH).head
        listed = list(saver.list(ex.CONFIG))
        ids = {t.config["configurable"]["checkpoint_id"] for t in listed}
        before_merge = checkpoints(db.as_of(merge.parents[0]), ex.THREAD_ID)
        on_fork = checkpoints(db.checkout(ex.BRANCH), ex.THREAD_ID)
        assert ids == set(before_merge) | set(on_fork) and len(ids) > len(before_merge)

        parents = {t.parent_config["configurable"]["checkpoint_id"] for t in listed if t.parent_config}
        leaves = [t for t in listed if t.config["configurable"]["checkpoint_id"] not in parents]
        outcomes = sorted(t.checkpoint["channel_values"]["outcome"] for t in leaves)
        assert outcomes == ["fixed: 212 passed", "not fixed"]
        latest = saver.get_tuple(ex.CONFIG)
        assert latest.checkpoint["channel_values"]["outcome"] == "fixed: 212 passed"
        assert latest.checkpoint["channel_values"]["tokens_used"] == 8779
    assert (
        f"main now: {len(ids)} checkpoints, both continuations; latest: step 16, outcome fixed: 212 passed"
        in out
    )
    assert "update_state: avoid = 'retry'" in out


def test_the_sql_section_reads_the_runs_and_branches_from_the_checkpoints_table(kept):
    out, _ = kept
    assert "main, run_id run-1: 9 checkpoints, steps -1 to 7" in out
    assert "main, run_id run-2: 6 checkpoints, steps 8 to 13" in out
    assert "13 'delta' rows for 13 messages" in out


def test_the_kept_store_passes_the_integrity_check(kept):
    _, store = kept
    assert integrity_check(store) == ["ok"]


def test_by_default_the_example_uses_a_temporary_store_and_removes_it(tmp_path):
    proc = run_example(env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "outcome fixed: 212 passed" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_example_refuses_to_reuse_an_existing_path(tmp_path):
    existing = tmp_path / "old.loom"
    existing.write_text("mine")
    proc = run_example(str(existing))
    assert proc.returncode != 0 and "exists" in proc.stderr
    assert existing.read_text() == "mine"
