"""loomdb demo: durable, queryable, branchable memory for an agent loop.

Runs the scenario of the product brief on an embedded store (one file under
``.demo/`` in the repository root, or under ``$LOOMDB_DEMO_DIR``):

1. a scripted agent persists every plan-act-observe step (an embedding and a
   JSONB state snapshot) with the brief's ``persist_step``;
2. the agent runs in a child process that is killed with SIGKILL mid-loop;
3. a new process finds the last step with the brief's recovery query,
   restores the agent's state and finishes the run;
4. two branches, ``run-42/approach-a`` and ``run-42/approach-b``, continue the
   run with two different fixes, independently;
5. the same SQL runs on each branch and the results are compared side by side;
6. ``db.diff`` shows the rows that differ between the two approaches, and the
   winner is merged into main with ``db.merge``.

The agent is a deterministic stand-in for an LLM (no network, no model): its
actions come from a script and its embeddings from a hash of the action text.

    make demo            # or: .venv/bin/python examples/demo.py
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

import loomdb

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = "run-42"
DIM = 1536
STORE_NAME = "agent-runs.loom"
CRASH_AFTER = 3  # steps the first process persists before it is killed
CHILD_FLAG = "--agent-child"

# ---------------------------------------------------------------------------
# The brief's code, with only the import and the connection string changed.

SCHEMA = """
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

RECOVERY_SQL = """
SELECT step, state_snapshot FROM iterations
WHERE run_id = %s ORDER BY step DESC LIMIT 1
"""


def persist_step(db, run_id, step, action, observation, embedding, state):
    db.execute("""
INSERT INTO iterations (run_id, step, action, observation, embedding, state_snapshot, tokens_used)
VALUES (%s, %s, %s, %s, %s, %s, %s)
""", [run_id, step, action, observation, embedding, state, state["tokens_used"]])  # fmt: skip


# The comparison: one statement, run unchanged on each branch's handle.
COMPARE_SQL = """
SELECT count(*) AS steps,
       max(tokens_used) AS tokens_used,
       (SELECT state_snapshot ->> 'outcome' FROM iterations
         WHERE run_id = %(run)s ORDER BY step DESC LIMIT 1) AS outcome
FROM iterations
WHERE run_id = %(run)s
"""

# ---------------------------------------------------------------------------
# A scripted, deterministic agent.


@dataclass(frozen=True)
class Scripted:
    """What the fake model 'does' for an action: its observation and cost."""

    observation: str
    tokens: int
    outcome: str | None = None


TASK = "Fix issue #1187: test_refund_rounding is flaky on CI"

DIAGNOSIS = {
    "read issue #1187": Scripted("test_refund_rounding fails about 1 CI run in 7", 812),
    "run the test suite": Scripted("211 passed, 1 failed: test_refund_rounding", 1304),
    "open payments/refund.py": Scripted("refund = round(amount * ratio, 2) on floats", 957),
    "log amounts of failing runs": Scripted("fails when amount*ratio ends in 5 at 3 dp", 1121),
    "rerun the test 50 times": Scripted("7/50 fail: 0.005 rounds down in binary floats", 688),
    "list candidate fixes": Scripted(
        "(a) Decimal with ROUND_HALF_UP in refund.py; (b) integer cents everywhere", 1530
    ),
}

APPROACH_A = {
    "use Decimal + ROUND_HALF_UP in refund.py": Scripted("3-line change in one file", 1410),
    "rerun the test 200 times": Scripted("200/200 pass", 702),
    "run the full suite": Scripted("212 passed", 1296, outcome="fixed: 212 passed"),
}

APPROACH_B = {
    "store amounts as integer cents": Scripted("Money type changed in models.py", 2210),
    "update 14 call sites to cents": Scripted("14 files changed", 3985),
    "run the full suite": Scripted("203 passed, 9 failed in invoices/", 1302),
    "convert invoice totals to cents": Scripted("6 files changed", 2770),
    "run the suite again": Scripted(
        "209 passed, 3 failed: currency formatting", 1318, outcome="not fixed: 3 failing"
    ),
}

APPROACHES = {
    "run-42/approach-a": ("decimal-rounding", APPROACH_A),
    "run-42/approach-b": ("integer-cents", APPROACH_B),
}

# What the fake model does, by the agent's current approach and action.
SCRIPTS: dict[str, dict[str, Scripted]] = {
    "diagnose": DIAGNOSIS,
    "decimal-rounding": APPROACH_A,
    "integer-cents": APPROACH_B,
}


def embed(text: str) -> np.ndarray:
    """A deterministic unit vector of dimension 1536 derived from a hash of ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vec / np.linalg.norm(vec)


class ScriptedAgent:
    """A stand-in for an LLM agent. Its whole memory is ``state``, a JSON document."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {
            "task": TASK,
            "approach": "diagnose",
            "plan": list(DIAGNOSIS),
            "done": [],
            "tokens_used": 0,
            "outcome": None,
        }
        self.step = 1

    def restore(self, state: dict[str, Any]) -> None:
        self.state = copy.deepcopy(state)

    def resume(self, from_step: int) -> None:
        self.step = from_step

    def adopt(self, approach: str, plan: list[str]) -> None:
        """Switch strategy: a new plan after the diagnosis."""
        self.state["approach"] = approach
        self.state["plan"] = list(plan)

    @property
    def finished(self) -> bool:
        return not self.state["plan"]

    def next_action(self) -> str:
        """Plan: what to do at this step."""
        return self.state["plan"][0]

    def act(self, action: str) -> tuple[int, str, str, np.ndarray, dict[str, Any]]:
        """Act and observe: the (step, action, observation, embedding, state) to persist."""
        outcome = SCRIPTS[self.state["approach"]][action]
        state = copy.deepcopy(self.state)
        state["plan"] = state["plan"][1:]
        state["done"].append(action)
        state["tokens_used"] += outcome.tokens
        state["outcome"] = outcome.outcome
        step, self.step, self.state = self.step, self.step + 1, state
        return step, action, outcome.observation, embed(action), state


# ---------------------------------------------------------------------------
# The child process: the agent's first life, killed mid-loop by the parent.


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def child_main(store: str) -> None:
    """Run the loop; before each step's 'model call' wait for the parent's go-ahead.

    The parent answers for the model, so it can kill this process at a known
    point: while a model call is in flight, after some steps were persisted.
    """
    db = loomdb.connect(store)
    agent = ScriptedAgent()
    while not agent.finished:
        action = agent.next_action()
        emit("thinking", step=agent.step, action=action, pid=os.getpid())
        if sys.stdin.readline().strip() != "go":  # the model call
            return
        step, action, observation, embedding, state = agent.act(action)
        persist_step(db, RUN_ID, step, action, observation, embedding, state)
        emit("persisted", step=step, action=action, tokens_used=state["tokens_used"])
    db.close()


# ---------------------------------------------------------------------------
# Display helpers.


def sql_block(sql: str) -> Syntax:
    return Syntax(sql.strip(), "sql", theme="ansi_dark", background_color="default")


def python_block(code: str) -> Syntax:
    return Syntax(code.strip(), "python", theme="ansi_dark", background_color="default")


def abbrev(vec: np.ndarray) -> str:
    return f"[{vec[0]:.2g}, {vec[1]:.2g}, … {len(vec)} dims]"


def steps_table(title: str, rows: list[Any]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("step", justify="right")
    table.add_column("action")
    table.add_column("tokens_used", justify="right")
    table.add_column("embedding", style="cyan", no_wrap=True)
    for r in rows:
        table.add_row(
            str(r["step"]), r["action"], str(r["tokens_used"]), abbrev(r["embedding"]),
        )  # fmt: skip
    return table


STEPS_SQL = """
SELECT step, action, tokens_used, embedding FROM iterations
WHERE run_id = %s AND step > %s ORDER BY step
"""


def diff_table(title: str, changes: list[Any]) -> Table:
    """The rows of ``db.diff(a, b)``: + rows only b has, − rows only a has, ~ rows that changed."""
    marks = {"added": ("+", "green"), "removed": ("−", "red"), "modified": ("~", "yellow")}
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("")
    table.add_column("step", justify="right")
    table.add_column("action")
    table.add_column("tokens_used", justify="right")
    table.add_column("outcome")
    for change in changes:
        mark, style = marks[change.kind]
        row = change.after if change.after is not None else change.before
        table.add_row(
            f"[bold {style}]{mark}[/]", str(row["step"]), escape(row["action"]),
            str(row["tokens_used"]), escape(row["state_snapshot"]["outcome"] or ""),
            style=None if change.kind == "modified" else style,
        )  # fmt: skip
    return table


def pick_winner(results: dict[str, Any]) -> str:
    """The approach that fixed the issue, with the fewest tokens."""
    fixed = [name for name, row in results.items() if (row["outcome"] or "").startswith("fixed")]
    return min(fixed, key=lambda name: results[name]["tokens_used"])


def run_loop(console: Console, db: loomdb.Database, agent: ScriptedAgent, label: str) -> None:
    while not agent.finished:
        step, action, observation, embedding, state = agent.act(agent.next_action())
        persist_step(db, RUN_ID, step, action, observation, embedding, state)
        console.print(
            f"  [dim]{label}[/] step {step}: {escape(action)} [dim]→[/] {escape(observation)} "
            f"[dim](commit {db.head})[/]"
        )


# ---------------------------------------------------------------------------
# The scenario.


def demo_dir() -> Path:
    return Path(os.environ.get("LOOMDB_DEMO_DIR") or ROOT / ".demo")


def fresh_store() -> Path:
    folder = demo_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(STORE_NAME + "*"):  # the store and its -wal/-shm files
        old.unlink()
    return folder / STORE_NAME


def crash_run(console: Console, store: Path) -> int:
    """Run the agent in a child process and SIGKILL it mid-loop; returns the lost step."""
    child = subprocess.Popen(
        [sys.executable, __file__, CHILD_FLAG, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert child.stdin is not None and child.stdout is not None
    lost = None
    for line in child.stdout:
        event = json.loads(line)
        if event["event"] == "persisted":
            console.print(
                f"  [dim]pid {child.pid}[/] step {event['step']}: {escape(event['action'])} "
                f"[green]persisted[/] [dim](tokens_used {event['tokens_used']})[/]"
            )
        elif event["step"] > CRASH_AFTER:
            lost = event["step"]
            console.print(
                f"  [dim]pid {child.pid}[/] step {lost}: {escape(event['action'])} "
                "[yellow]model call in flight…[/]"
            )
            os.kill(child.pid, signal.SIGKILL)
            break
        else:
            child.stdin.write("go\n")
            child.stdin.flush()
    code = child.wait()
    child.stdout.close()
    child.stdin.close()
    if lost is None:
        raise SystemExit(f"demo: the agent process ended before the crash (exit {code})")
    console.print(
        f"  [bold red]💥 crash:[/] process {child.pid} killed with SIGKILL "
        f"(exit status {code}) during step {lost}"
    )
    return lost


def main() -> None:
    console = Console()
    started = time.perf_counter()
    store = fresh_store()
    console.print()
    console.rule("[bold]loomdb demo: durable, branchable memory for an agent loop")
    console.print(f"store: [cyan]{escape(str(store))}[/]   run: [cyan]{RUN_ID}[/]   task: {TASK}\n")

    with loomdb.connect(str(store)) as db:
        db.execute(SCHEMA)

    # 1-2. The first life of the agent, in a child process, killed mid-loop.
    console.print()
    console.rule("1. agent loop in a child process, killed with SIGKILL", align="left")
    lost = crash_run(console, store)

    # 3. A new process recovers with the brief's query and finishes the run.
    console.print()
    console.rule("2. resume after the crash", align="left")
    db = loomdb.connect(str(store))
    console.print(sql_block(RECOVERY_SQL))
    last = db.execute(RECOVERY_SQL, [RUN_ID]).fetchone()
    survived = db.execute("SELECT count(*) FROM iterations WHERE run_id = %s", [RUN_ID]).fetchone()
    console.print(
        Panel(
            f"last durable step: [bold]{last['step']}[/] "
            f"(steps on disk: {survived[0]}, step {lost} was lost with the process)\n"
            f"state_snapshot['plan']: {escape(str(last['state_snapshot']['plan']))}\n"
            f"state_snapshot['tokens_used']: {last['state_snapshot']['tokens_used']}\n"
            f"→ agent.restore(state_snapshot); agent.resume(from_step={last['step'] + 1})",
            title="recovered",
            title_align="left",
            border_style="green",
        )
    )
    agent = ScriptedAgent()
    agent.restore(last["state_snapshot"])
    agent.resume(from_step=last["step"] + 1)
    console.print(f"  [bold]resuming at step {last['step'] + 1}[/]")
    run_loop(console, db, agent, "main")
    fork_step = agent.step - 1
    rows = db.execute(STEPS_SQL, [RUN_ID, 0]).fetchall()
    console.print(steps_table(f"main: {RUN_ID} after the diagnosis", rows))

    # 4. Two branches explore two fixes independently.
    console.print()
    console.rule("3. two branches, two approaches", align="left")
    handles = {"main": db}
    for name, (approach, plan) in APPROACHES.items():
        handle = db.branch(name)  # O(1): forks from main's head
        handles[name] = handle
        last = handle.execute(RECOVERY_SQL, [RUN_ID]).fetchone()
        agent = ScriptedAgent()
        agent.restore(last["state_snapshot"])
        agent.resume(from_step=last["step"] + 1)
        agent.adopt(approach, list(plan))
        console.print(f"  [bold]{name}[/] forks at step {last['step']}: approach {approach}")
        run_loop(console, handle, agent, name)
    for name in APPROACHES:
        rows = handles[name].execute(STEPS_SQL, [RUN_ID, fork_step]).fetchall()
        console.print(steps_table(f"{name}: steps after the fork", rows))

    # 5. The same SQL on each branch, side by side.
    console.print()
    console.rule("4. compare the branches", align="left")
    console.print(sql_block(COMPARE_SQL))
    compare = Table(title="same query, one row per branch", title_justify="left")
    compare.add_column("branch", style="bold")
    compare.add_column("steps", justify="right")
    compare.add_column("tokens_used", justify="right")
    compare.add_column("outcome")
    results = {}
    for name, handle in handles.items():
        row = handle.execute(COMPARE_SQL, {"run": RUN_ID}).fetchone()
        results[name] = row
        outcome = row["outcome"] or "(diagnosis only)"
        compare.add_row(name, str(row["steps"]), str(row["tokens_used"]), outcome)
    console.print(compare)

    branches = Table(title="db.branches()", title_justify="left")
    for col in ("name", "parent", "fork", "head"):
        branches.add_column(col)
    for b in db.branches():
        branches.add_row(b.name, b.parent or "", str(b.fork or ""), str(b.head or ""))
    console.print(branches)

    # 6. What differs between the approaches; the winner goes into main.
    console.print()
    console.rule("5. diff the approaches, merge the winner into main", align="left")
    a_name, b_name = APPROACHES
    console.print(
        python_block(f'db.diff_stat("{a_name}", "{b_name}")\nlist(db.diff("{a_name}", "{b_name}"))')
    )
    for table, stat in db.diff_stat(a_name, b_name).items():
        console.print(
            f"  {table}: [green]+{stat.added}[/] added, [red]−{stat.removed}[/] removed, "
            f"[yellow]~{stat.modified}[/] modified"
        )
    console.print(diff_table(f"rows that differ: {a_name} → {b_name}", list(db.diff(a_name, b_name))))
    winner = pick_winner({name: results[name] for name in APPROACHES})
    console.print(
        f"  winner: [bold]{winner}[/] ({escape(results[winner]['outcome'])}, "
        f"{results[winner]['tokens_used']} tokens)"
    )
    console.print(python_block(f'result = db.merge("{winner}", into="main")'))
    result = db.merge(winner, into="main")
    merge_commit = db.log(limit=1)[0]
    per_table = ", ".join(
        f"{name}: +{t.added} ~{t.modified} −{t.deleted}" for name, t in result.tables.items()
    )
    console.print(
        f"  merge commit {result.commit} on main "
        f"(parents {', '.join(map(str, merge_commit.parents))}): {per_table}"
    )
    rows = db.execute(STEPS_SQL, [RUN_ID, 0]).fetchall()
    console.print(steps_table(f"main after the merge: {RUN_ID}", rows))
    row = db.execute(COMPARE_SQL, {"run": RUN_ID}).fetchone()
    console.print(
        f"  main now: {row['steps']} steps, {row['tokens_used']} tokens, outcome {escape(row['outcome'])}"
    )
    db.close()

    elapsed = time.perf_counter() - started
    rel = os.path.relpath(store)
    rel = str(store) if rel.startswith("..") else rel
    console.print(
        f"\ndone in {elapsed:.1f} s. Explore the store:\n"
        f'  loomdb sql {rel} "SELECT step, action, tokens_used FROM iterations '
        f'ORDER BY step" --branch run-42/approach-b\n'
        f"  loomdb log {rel} --limit 5\n"
        f"  loomdb diff {rel} run-42/approach-a run-42/approach-b",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child_main(sys.argv[2])
    else:
        main()
