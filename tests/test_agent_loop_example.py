"""examples/agent_loop.py runs offline and does what it says: crash, resume, fork, merge."""

from __future__ import annotations

import subprocess

import example_scripts
import pytest

import loomdb


def load_example():
    """examples/agent_loop.py as a module, for the script its expected values come from."""
    return example_scripts.load("agent_loop.py")


def run_example(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return example_scripts.run("agent_loop.py", *args, env=env)


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    store = tmp_path_factory.mktemp("agent-loop") / "runs.loom"
    proc = run_example(str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, str(store)


def test_the_agent_process_dies_mid_step_and_the_next_one_resumes_after_the_last_durable_step(kept):
    out, _ = kept
    example = load_example()
    crash = example.CRASH_AT
    assert f"killed by SIGKILL during step {crash}" in out
    assert f"last durable step {crash - 1}, next step {crash}" in out
    assert f"main step {crash}: {example.DIAGNOSIS[crash - 1]}" in out


def test_the_fork_ends_before_the_bad_decision_and_explores_the_other_fix(kept):
    out, store = kept
    db = loomdb.connect(store)
    try:
        decision = next(s.step for s in db.run("run-7").steps() if s.action == "choose a fix")
        fork_name = f"run-7/fork-{decision - 1}"
        assert f"→ branch {fork_name} (its run ends at step {decision - 1})" in out
        assert fork_name in {b.name for b in db.branches()}
        assert "outcome on main: not fixed" in out
        assert f"outcome on {fork_name}: fixed: 212 passed" in out
    finally:
        db.close()


def test_the_merge_reports_the_clashing_steps_then_makes_the_forks_run_mains(kept):
    out, store = kept
    assert "merge conflict on steps 5, 6, 7 (nothing changed)" in out
    db = loomdb.connect(store)
    try:
        main, fork = db.run("run-7"), db.checkout("run-7/fork-4").run("run-7")
        assert [(s.step, s.action, s.observation) for s in main.steps()] == [
            (s.step, s.action, s.observation) for s in fork.steps()
        ]
        assert main.last().state["outcome"] == "fixed: 212 passed"
        merge = db.log(limit=1)[0]
        assert merge.parents[1] == fork.db.head
    finally:
        db.close()
    assert "main now: 8 steps, outcome fixed: 212 passed" in out


def test_by_default_the_example_uses_a_temporary_store_and_removes_it(tmp_path):
    proc = run_example(env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "main now: 8 steps" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_example_refuses_to_reuse_an_existing_path(tmp_path):
    existing = tmp_path / "old.loom"
    existing.write_text("mine")
    proc = run_example(str(existing))
    assert proc.returncode != 0 and "exists" in proc.stderr
    assert existing.read_text() == "mine"
