"""``make demo``: the brief's scenario runs end to end and tells what happened."""

from __future__ import annotations

import re

import example_scripts
import pytest

import loomdb


def load_demo():
    """examples/demo.py as a module, for the script its expected numbers come from."""
    return example_scripts.load("demo.py")


def table_row(output: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r} in:\n{output}")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    return example_scripts.run("demo.py", env={"LOOMDB_DEMO_DIR": str(folder)}), folder


def test_demo_exits_0(demo_run):
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_kills_the_agent_mid_loop_and_resumes_after_the_last_step(demo_run):
    proc, _ = demo_run
    out = proc.stdout
    demo = load_demo()
    crash = demo.CRASH_AFTER + 1
    assert "SIGKILL" in out
    assert f"during step {crash}" in out
    assert f"last durable step: {demo.CRASH_AFTER}" in out
    assert f"resuming at step {crash}" in out


def test_demo_compares_both_branches_with_their_numbers(demo_run):
    proc, _ = demo_run
    demo = load_demo()
    diagnosis = len(demo.DIAGNOSIS)
    diagnosis_tokens = sum(s.tokens for s in demo.DIAGNOSIS.values())
    expected = {"main": [str(diagnosis), str(diagnosis_tokens), "(diagnosis only)"]}
    for name, (_, plan) in demo.APPROACHES.items():
        outcome = list(plan.values())[-1].outcome
        tokens = diagnosis_tokens + sum(s.tokens for s in plan.values())
        expected[name] = [str(diagnosis + len(plan)), str(tokens), outcome]
    assert set(expected) == {"main", "run-42/approach-a", "run-42/approach-b"}
    for name, cells in expected.items():
        assert table_row(proc.stdout, name)[:4] == [name, *cells]


def test_demo_leaves_a_store_with_each_step_once_on_each_branch(demo_run):
    proc, folder = demo_run
    assert proc.returncode == 0
    demo = load_demo()
    counts = {"main": len(demo.DIAGNOSIS) + len(demo.APPROACH_A)}  # after the merge
    for name, (_, plan) in demo.APPROACHES.items():
        counts[name] = len(demo.DIAGNOSIS) + len(plan)
    db = loomdb.connect(str(folder / demo.STORE_NAME))
    try:
        for name, n in counts.items():
            handle = db if name == "main" else db.checkout(name)
            steps = [r[0] for r in handle.execute("SELECT step FROM iterations ORDER BY step")]
            assert steps == list(range(1, n + 1)), name
    finally:
        db.close()


def test_demo_diffs_the_approaches(demo_run):
    proc, _ = demo_run
    demo = load_demo()
    out = proc.stdout
    assert 'db.diff("run-42/approach-a", "run-42/approach-b")' in out
    added, removed = len(demo.APPROACH_B), len(demo.APPROACH_A)
    assert f"iterations: +{added} added, −{removed} removed, ~0 modified" in out
    marked = [table_row(out, mark) for mark in ("+", "−")]
    assert [cells[2] for cells in marked] == [next(iter(demo.APPROACH_B)), next(iter(demo.APPROACH_A))]


def test_demo_merges_approach_a_into_main(demo_run):
    proc, folder = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    demo = load_demo()
    assert 'db.merge("run-42/approach-a", into="main")' in proc.stdout
    match = re.search(r"merge commit (\d+) on main \(parents (\d+), (\d+)\)", proc.stdout)
    assert match, proc.stdout
    commit = int(match.group(1))
    db = loomdb.connect(str(folder / demo.STORE_NAME))
    try:
        log = {c.id: c for c in db.log()}
        assert commit in log
        assert log[commit].branch == "main"
        a_head = db.checkout("run-42/approach-a").head
        assert log[commit].parents[1] == a_head
        actions = [r[0] for r in db.execute("SELECT action FROM iterations ORDER BY step")]
        assert actions == [*demo.DIAGNOSIS, *demo.APPROACH_A]
        assert not (set(demo.APPROACH_B) - set(demo.APPROACH_A)) & set(actions)
        assert not list(db.diff("main", "run-42/approach-a"))
    finally:
        db.close()
    steps = len(demo.DIAGNOSIS) + len(demo.APPROACH_A)
    tokens = sum(s.tokens for s in [*demo.DIAGNOSIS.values(), *demo.APPROACH_A.values()])
    outcome = list(demo.APPROACH_A.values())[-1].outcome
    main_after = [line for line in proc.stdout.splitlines() if line.startswith("  main now:")]
    assert main_after == [f"  main now: {steps} steps, {tokens} tokens, outcome {outcome}"]


@pytest.mark.slow
def test_demo_starts_fresh_each_run(tmp_path):
    for _ in range(2):
        proc = example_scripts.run("demo.py", env={"LOOMDB_DEMO_DIR": str(tmp_path)})
        assert proc.returncode == 0, proc.stdout + proc.stderr
