"""A plain-Python agent loop on loomdb's Run API: crash and resume, fork, merge.

The agent is a scripted stand-in for an LLM (deterministic, offline, no API
keys): its replies come from a table and its embeddings from a hash of the
action text. The scenario:

1. the agent runs in a child process that dies (SIGKILL) in the middle of
   step 4, after the model replied and before the step was persisted;
2. a new process opens the same run, ``run.resume()`` gives the last durable
   state and the next step number, and the loop goes on where it stopped;
3. the fix it chose does not work: ``run.similar()`` finds the step where it
   chose, ``run.fork(at_step=...)`` rolls back to the step before it on a new
   branch, and the agent explores the other fix there;
4. ``fork.merge(into="main")`` reports the steps both branches wrote
   (a MergeConflict that changes nothing); merging with
   ``on_conflict="theirs"`` makes the fork's steps main's.

    .venv/bin/python examples/agent_loop.py            # a store in a temporary directory
    .venv/bin/python examples/agent_loop.py runs.loom  # keep the store (a new path)
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import loomdb

RUN_ID = "run-7"
DIM = 64  # small embeddings keep the example quick; real models give 768-3072
CRASH_AT = 4  # the child process dies in the middle of this step
CHILD_FLAG = "--agent-child"
TASK = "Fix issue #1187: test_refund_rounding is flaky on CI"


class Reply(NamedTuple):
    """What the scripted model answers for one action."""

    observation: str
    tokens: int
    plan: tuple[str, ...] = ()  # actions the reply adds to the plan
    approach: str | None = None  # the fix the reply commits to
    outcome: str | None = None


DIAGNOSIS = ("read issue #1187", "run the test suite", "open payments/refund.py", "rerun the test 50 times")
REPLIES: dict[str, Reply] = {
    "read issue #1187": Reply("test_refund_rounding fails about 1 CI run in 7", 812),
    "run the test suite": Reply("211 passed, 1 failed: test_refund_rounding", 1304),
    "open payments/refund.py": Reply("refund = round(amount * ratio, 2) on floats", 957),
    "rerun the test 50 times": Reply("7/50 fail: 0.005 rounds down in binary floats", 688),
    # The decision point: the first choice retries the flaky test, the second fixes the rounding.
    "choose a fix": Reply(
        "retrying the flaky test is the smallest change",
        1530,
        ("mark the test @flaky(reruns=3)", "rerun the test 200 times"),
        "retry",
    ),  # fmt: skip
    "choose a fix again": Reply(
        "retries hide the bug: round with Decimal instead",
        1610,
        ("use Decimal + ROUND_HALF_UP in refund.py", "rerun the test 200 times", "run the full suite"),
        "decimal",
    ),  # fmt: skip
    "mark the test @flaky(reruns=3)": Reply("1 file changed", 640),
    "use Decimal + ROUND_HALF_UP in refund.py": Reply("3-line change in one file", 1410),
}
RESULTS = {  # the same action observes different results under each fix
    ("retry", "rerun the test 200 times"): Reply(
        "still 3/200 failing: reruns hide, not fix", 702, outcome="not fixed"
    ),
    ("decimal", "rerun the test 200 times"): Reply("200/200 pass", 702),
    ("decimal", "run the full suite"): Reply("212 passed", 1296, outcome="fixed: 212 passed"),
}


def model(state: dict[str, Any], action: str) -> Reply:
    """The stand-in for the LLM call of one step."""
    if action == "choose a fix" and "retry" in state["rejected"]:
        action = "choose a fix again"
    return RESULTS.get((state["approach"], action)) or REPLIES[action]


def embed(text: str) -> np.ndarray:
    """A deterministic unit vector for ``text`` (the stand-in for an embedding model)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vec / np.linalg.norm(vec)


def first_state() -> dict[str, Any]:
    plan = [*DIAGNOSIS, "choose a fix"]
    return {"task": TASK, "plan": plan, "done": [], "approach": None, "rejected": [], "tokens_used": 0}


def agent_loop(run: loomdb.Run, state: dict[str, Any], step: int, say, crash_at: int | None = None) -> dict:
    """Plan, act, observe, persist; until the plan is empty. Returns the last state."""
    while state["plan"]:
        action = state["plan"][0]
        reply = model(state, action)  # the model call
        if step == crash_at:
            say(f"  step {step}: {escape(action)} [yellow]model replied… the process dies now[/]")
            os.kill(os.getpid(), signal.SIGKILL)
        state = {
            **state,
            "plan": [*state["plan"][1:], *reply.plan],
            "done": [*state["done"], action],
            "approach": reply.approach or state["approach"],
            "tokens_used": state["tokens_used"] + reply.tokens,
            "outcome": reply.outcome,
        }
        run.persist(
            step,
            action=action,
            observation=reply.observation,
            state=state,
            embedding=embed(action),
            tokens_used=state["tokens_used"],
        )
        say(f"  [dim]{run.branch}[/] step {step}: {escape(action)} [dim]→[/] {escape(reply.observation)}")
        step += 1
    return state


def steps_table(title: str, run: loomdb.Run) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for name, justify in (
        ("step", "right"),
        ("action", "left"),
        ("observation", "left"),
        ("tokens", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in run.steps():
        table.add_row(str(s.step), escape(s.action or ""), escape(s.observation or ""), str(s.tokens_used))
    return table


def child_main(store: str) -> None:
    """The agent's first life: a fresh run, killed mid-step by its own 'model'."""
    with loomdb.connect(store) as db:
        agent_loop(db.run(RUN_ID, dim=DIM), first_state(), 1, print_plain, crash_at=CRASH_AT)


def print_plain(text: str) -> None:
    Console(highlight=False).print(text)


def main(store: str) -> None:
    console = Console(highlight=False)
    say = console.print
    say(f"store: [cyan]{escape(store)}[/]   run: [cyan]{RUN_ID}[/]   task: {TASK}")

    console.rule("1. the agent loop, in a child process that dies mid-step", align="left")
    sys.stdout.flush()
    child = subprocess.run([sys.executable, __file__, CHILD_FLAG, store], check=False)
    if child.returncode != -signal.SIGKILL:
        raise SystemExit(f"agent_loop: the child process ended with status {child.returncode}, not SIGKILL")
    say(f"  [bold red]crash:[/] agent process killed by SIGKILL during step {CRASH_AT}")

    console.rule("2. a new process resumes the run", align="left")
    db = loomdb.connect(store)
    run = db.run(RUN_ID)
    state, next_step, last = run.resume()
    say(f"  run.resume(): last durable step {last.step}, next step {next_step}, plan {state['plan']}")
    say(f"  resumed at step {next_step}")
    state = agent_loop(run, state, next_step, say)
    say(f"  outcome on main: [bold]{state['outcome']}[/] after {state['tokens_used']} tokens")

    console.rule("3. roll back to before the bad decision and explore on a fork", align="left")
    choice = run.similar(embed("choose a fix"), k=1)[0]
    say(f"  run.similar(embed('choose a fix')): step {choice.step} (distance {choice.distance:.3f})")
    fork = run.fork(at_step=choice.step - 1)
    say(
        f"  run.fork(at_step={choice.step - 1}) → branch [bold]{fork.branch}[/] (its run ends at step {fork.last().step})"
    )
    state, next_step, _ = fork.resume()
    state = agent_loop(fork, {**state, "rejected": ["retry"]}, next_step, say)
    say(f"  outcome on {fork.branch}: [bold]{state['outcome']}[/] after {state['tokens_used']} tokens")

    console.rule("4. merge the fork into main", align="left")
    try:
        fork.merge(into="main")
    except loomdb.MergeConflict as conflict:
        clashing = ", ".join(str(c.key["step"]) for c in conflict.conflicts)
        say(f"  fork.merge(into='main'): merge conflict on steps {clashing} (nothing changed)")
    result = fork.merge(into="main", on_conflict="theirs")
    changes = result.tables["iterations"]
    say(
        f"  fork.merge(into='main', on_conflict='theirs'): merge commit {result.commit},"
        f" {changes.added} step(s) added, {changes.modified} replaced"
    )
    final = run.last()
    say(steps_table(f"main: {RUN_ID} after the merge", run))
    say(f"main now: {final.step} steps, outcome {final.state['outcome']}")
    db.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child_main(sys.argv[2])
    elif len(sys.argv) == 2:
        if "://" not in sys.argv[1] and Path(sys.argv[1]).exists():
            raise SystemExit(f"agent_loop: {sys.argv[1]} exists; give a new path")
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory(prefix="loomdb-agent-loop-") as folder:
            main(str(Path(folder) / "agent-runs.loom"))
