"""A LangGraph agent on loomdb's LoomSaver: crash and resume, fork, SQL, merge.

The graph is a small tool-using agent: a ``model`` node (a scripted stand-in
for an LLM: deterministic, offline, no API keys) picks the next tool call,
a ``tool`` node runs it, and a conditional edge loops model → tool → model
until the model says it is done. The state holds a transcript (``messages``,
a list channel with an ``operator.add`` reducer, which LoomSaver stores as
the messages each step appends) and scalar fields (``approach``,
``tokens_used``, ``outcome``, ...), which SQL can read straight from the
``checkpoints`` table. The graph is compiled with
``checkpointer=LoomSaver(db)`` on ``loomdb.connect(path)`` and invoked with
``durability="sync"``: each step's checkpoint is durable before the next
step starts. The scenario:

1. the graph runs in a child process that dies (SIGKILL) inside the tool
   node at step 8, after the tool did its work and before the node returned;
2. a new process opens the same store: ``graph.get_state(config)`` gives the
   last durable checkpoint (step 7, ``next`` is the tool node), and
   ``graph.invoke(None, config)`` runs the interrupted node again and
   finishes the run;
3. the fix the model chose does not work: ``graph.get_state_history()``
   finds the checkpoint before the model chose it, ``saver.fork()`` puts that
   checkpoint on a new loomdb branch, and there ``graph.update_state()``
   tells the model to avoid that fix, and the graph goes on with the other;
   main does not see the branch's checkpoints;
4. SQL over the saver's tables: the runs that wrote the thread (the
   ``run_id`` each invoke put in its config's metadata), the latest
   checkpoint of each branch, and the ``delta`` rows that hold the transcript
   as the messages each step appended;
5. ``saver.merge(branch)`` brings the branch's checkpoints to main: main's
   history holds both continuations and its latest state is the fork's.
   The branches share nothing written after the fork (``update_state`` made
   a checkpoint of its own), so nothing clashes; had both branches run the
   fork checkpoint's next task with different results, the merge would
   raise ``loomdb.MergeConflict`` and change nothing.

    .venv/bin/python examples/langgraph_agent.py               # a store in a temporary directory
    .venv/bin/python examples/langgraph_agent.py agent.loom    # keep the store (a new path)
"""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NamedTuple, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import loomdb
from loomdb.langgraph import LoomSaver

THREAD_ID = "issue-1187"
CONFIG: RunnableConfig = {"configurable": {"thread_id": THREAD_ID}}
# A run id in the config's metadata goes into each checkpoint's metadata (the ``run_id`` column).
RUNS = {"killed": "run-1", "resumed": "run-2", "fork": "run-3"}
BRANCH = f"{THREAD_ID}/no-retries"
CRASH_AT = 8  # the child process dies inside the tool node at this LangGraph step
CHILD_FLAG = "--agent-child"
TASK = "Fix issue #1187: test_refund_rounding is flaky on CI"


class AgentState(TypedDict):
    task: str
    messages: Annotated[list[AnyMessage], operator.add]  # the transcript: each step appends to it
    action: str | None  # the tool call the model chose last (None once it is done)
    approach: str | None  # the fix the model committed to
    avoid: str | None  # a fix the model must not choose (set on the fork with update_state)
    tokens_used: int
    outcome: str | None


class Turn(NamedTuple):
    """What the scripted model answers on one turn."""

    thought: str
    action: str | None  # the tool call it makes; None: it is done
    tokens: int
    approach: str | None = None  # the fix this turn commits to
    outcome: str | None = None


# The scripted model, turn by turn: four turns of diagnosis, then the turns of the fix it chose.
DIAGNOSIS = (
    Turn("start from the report", "read issue #1187", 812),
    Turn("reproduce it", "run the test suite", 1304),
    Turn("look at the code under test", "open payments/refund.py", 957),
    Turn("floats? measure how flaky it is", "rerun the test 50 times", 688),
)
FIXES = {
    # The decision point: the model retries the flaky test, unless told to avoid that.
    "retry": (
        Turn("retrying the flaky test is the smallest change", "mark the test @flaky(reruns=3)", 1530, "retry"),
        Turn("check that it holds", "rerun the test 200 times", 640),
        Turn("reruns hide the failures, they do not fix them", None, 702, outcome="not fixed"),
    ),
    "decimal": (
        Turn("retries hide the bug: round with Decimal", "use Decimal + ROUND_HALF_UP in refund.py", 1610, "decimal"),
        Turn("check that it holds", "rerun the test 200 times", 1410),
        Turn("and the whole suite", "run the full suite", 702),
        Turn("the rounding is exact now", None, 1296, outcome="fixed: 212 passed"),
    ),
}  # fmt: skip
TOOL_RESULTS = {  # what each tool call observes; the same call observes different results under each fix
    "read issue #1187": "test_refund_rounding fails about 1 CI run in 7",
    "run the test suite": "211 passed, 1 failed: test_refund_rounding",
    "open payments/refund.py": "refund = round(amount * ratio, 2) on floats",
    "rerun the test 50 times": "7/50 fail: 0.005 rounds down in binary floats",
    "mark the test @flaky(reruns=3)": "1 file changed",
    ("retry", "rerun the test 200 times"): "still 3/200 failing: reruns hide, not fix",
    "use Decimal + ROUND_HALF_UP in refund.py": "3-line change in one file",
    ("decimal", "rerun the test 200 times"): "200/200 pass",
    "run the full suite": "212 passed",
}


def scripted_model(state: AgentState) -> Turn:
    """The stand-in for the LLM call: the next turn of the script, given the transcript so far."""
    turn = sum(isinstance(m, AIMessage) for m in state["messages"])
    if turn < len(DIAGNOSIS):
        return DIAGNOSIS[turn]
    approach = state["approach"] or ("decimal" if state["avoid"] == "retry" else "retry")
    return FIXES[approach][turn - len(DIAGNOSIS)]


def build_graph(
    saver: LoomSaver, say: Callable[[str], None], crash_at: int | None = None
) -> CompiledStateGraph:
    """The agent: model → tool → model … until the model is done, checkpointed by ``saver``."""
    branch = saver.db.branch_name

    def model(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        step = config["metadata"]["langgraph_step"]
        turn = scripted_model(state)
        calls = (
            [{"name": "shell", "args": {"command": turn.action}, "id": f"call-{step}"}] if turn.action else []
        )
        say(
            f"  [dim]{branch}[/] step {step} model: {escape(turn.thought)} [dim]→[/] {escape(turn.action or 'done')}"
        )
        return {
            "messages": [AIMessage(turn.thought, tool_calls=calls)],
            "action": turn.action,
            "approach": turn.approach or state["approach"],
            "tokens_used": state["tokens_used"] + turn.tokens,
            "outcome": turn.outcome,
        }

    def tool(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        step = config["metadata"]["langgraph_step"]
        action = state["action"]
        result = TOOL_RESULTS.get((state["approach"], action)) or TOOL_RESULTS[action]
        if step == crash_at:
            say(
                f"  step {step} tool: {escape(action)} [yellow]ran… the process dies before the node returns[/]"
            )
            os.kill(os.getpid(), signal.SIGKILL)
        say(f"  [dim]{branch}[/] step {step} tool: {escape(action)} [dim]→[/] {escape(result)}")
        return {"messages": [ToolMessage(result, tool_call_id=f"call-{step - 1}")]}

    graph = StateGraph(AgentState)
    graph.add_node("model", model)
    graph.add_node("tool", tool)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", lambda s: "tool" if s["action"] else END, ["tool", END])
    graph.add_edge("tool", "model")
    return graph.compile(checkpointer=saver)


def first_state() -> AgentState:
    return {
        "task": TASK,
        "messages": [],
        "action": None,
        "approach": None,
        "avoid": None,
        "tokens_used": 0,
        "outcome": None,
    }


def with_run(config: RunnableConfig, run_id: str) -> RunnableConfig:
    return {**config, "metadata": {"run_id": run_id}}


def checkpoint_ids(saver: LoomSaver) -> set[str]:
    return {t.config["configurable"]["checkpoint_id"] for t in saver.list(CONFIG)}


def describe(snapshot: StateSnapshot) -> str:
    """What a checkpoint added: the step's message, or the update made with update_state."""
    if snapshot.metadata["source"] == "update":
        return f"update_state: avoid = {snapshot.values['avoid']!r}"
    last = snapshot.values["messages"][-1]
    if isinstance(last, ToolMessage):
        return f"tool → {last.content}"
    return f"model → {last.tool_calls[0]['args']['command'] if last.tool_calls else 'done: ' + last.content}"


def continuations_table(graph: CompiledStateGraph, fork_step: int, heads: dict[str, RunnableConfig]) -> Table:
    """The checkpoints after the fork point, one column per continuation (walked from its head)."""
    columns: dict[str, dict[int, str]] = {}
    for title, head in heads.items():
        cells, snapshot = {}, graph.get_state(head)
        while snapshot.metadata["step"] > fork_step:
            cells[snapshot.metadata["step"]] = describe(snapshot)
            snapshot = graph.get_state(snapshot.parent_config)
        columns[title] = cells
    table = Table(title=f"main: {THREAD_ID} after the merge, from step {fork_step}", title_justify="left")
    table.title_style = "bold"
    table.add_column("step", justify="right")
    for title in columns:
        table.add_column(escape(title))
    for step in sorted({s for cells in columns.values() for s in cells}):
        table.add_row(str(step), *(escape(cells.get(step, "")) for cells in columns.values()))
    return table


def child_main(store: str) -> None:
    """The agent's first life: a fresh thread, killed mid-step inside its own tool node."""
    with loomdb.connect(store) as db:
        graph = build_graph(LoomSaver(db), print_plain, crash_at=CRASH_AT)
        graph.invoke(first_state(), with_run(CONFIG, RUNS["killed"]), durability="sync")


def print_plain(text: str) -> None:
    Console(highlight=False).print(text)


def main(store: str) -> None:
    console = Console(highlight=False)
    say = console.print
    say(f"store: [cyan]{escape(store)}[/]   thread: [cyan]{THREAD_ID}[/]   task: {TASK}")

    console.rule("1. the LangGraph agent, in a child process that dies mid-step", align="left")
    sys.stdout.flush()
    child = subprocess.run([sys.executable, __file__, CHILD_FLAG, store], check=False)
    if child.returncode != -signal.SIGKILL:
        raise SystemExit(
            f"langgraph_agent: the child process ended with status {child.returncode}, not SIGKILL"
        )
    say(f"  [bold red]crash:[/] agent process killed by SIGKILL in the tool node during step {CRASH_AT}")

    console.rule("2. a new process resumes the thread", align="left")
    db = loomdb.connect(store)
    saver = LoomSaver(db)
    graph = build_graph(saver, say)
    stuck = graph.get_state(CONFIG)
    say(
        f"  graph.get_state(): last durable step {stuck.metadata['step']}, next {stuck.next},"
        f" {len(stuck.values['messages'])} messages, {stuck.values['tokens_used']} tokens"
    )
    final = graph.invoke(None, with_run(CONFIG, RUNS["resumed"]), durability="sync")
    say(f"  outcome on main: [bold]{final['outcome']}[/] after {final['tokens_used']} tokens")

    console.rule("3. fork before the bad decision and steer the model there", align="left")
    history = list(graph.get_state_history(CONFIG))
    choice = min(
        (s for s in history if s.values.get("approach") == "retry"), key=lambda s: s.metadata["step"]
    )
    before = graph.get_state(choice.parent_config)
    fork_step = before.metadata["step"]
    say(
        f"  graph.get_state_history(): the model chose 'retry' at step {choice.metadata['step']};"
        f" the checkpoint before it: step {fork_step}, next {before.next}"
    )
    explore, at = saver.fork(before.config, branch=BRANCH)
    say(f"  saver.fork(<step {fork_step}>, branch={BRANCH!r}) → a saver on branch [bold]{BRANCH}[/]")
    forked = build_graph(explore, say)
    steered = forked.update_state(at, {"avoid": "retry"})
    update = forked.get_state(steered)
    say(
        f"  forked.update_state(at, {{'avoid': 'retry'}}): a checkpoint on {BRANCH} at step"
        f" {update.metadata['step']}, next {update.next}"
    )
    fork_final = forked.invoke(None, with_run(steered, RUNS["fork"]), durability="sync")
    say(f"  outcome on {BRANCH}: [bold]{fork_final['outcome']}[/] after {fork_final['tokens_used']} tokens")
    only_on_fork = checkpoint_ids(explore) - checkpoint_ids(saver)
    fork_head = forked.get_state(CONFIG).config
    say(
        f"  {len(only_on_fork)} checkpoints only on {BRANCH}; on main, get_tuple(the fork's latest)"
        f" → {saver.get_tuple(fork_head)}, outcome still {graph.get_state(CONFIG).values['outcome']}"
    )

    console.rule("4. SQL over the saver's tables", align="left")
    runs = db.execute(
        "SELECT run_id, count(*) AS checkpoints, min(step) AS first, max(step) AS last FROM checkpoints"
        " WHERE thread_id = %s AND checkpoint_ns = '' GROUP BY run_id ORDER BY min(checkpoint_id)",
        [THREAD_ID],
    ).fetchall()
    for row in runs:
        say(
            f"  main, run_id {row['run_id']}: {row['checkpoints']} checkpoints, steps {row['first']} to {row['last']}"
        )
    table = Table(title="the latest checkpoint of each branch", title_justify="left", title_style="bold")
    for name, justify in (("branch", "left"), ("checkpoints", "right"), ("step", "right"), ("approach", "left"),
                          ("tokens", "right"), ("outcome", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=name == "branch")  # type: ignore[arg-type]
    for handle in (db, explore.db):
        row = handle.execute(
            "SELECT step, channel_values->>'approach' AS approach, channel_values->>'tokens_used' AS tokens,"
            " channel_values->>'outcome' AS outcome, (SELECT count(*) FROM checkpoints WHERE thread_id = %s)"
            " AS checkpoints FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_id DESC LIMIT 1",
            [THREAD_ID, THREAD_ID],
        ).fetchone()
        table.add_row(
            handle.branch_name,
            str(row["checkpoints"]),
            str(row["step"]),
            row["approach"],
            row["tokens"],
            row["outcome"],
        )
    say(table)
    deltas = db.execute(
        "SELECT count(*) AS n, max(items) AS longest FROM checkpoint_values WHERE thread_id = %s AND type = 'delta'",
        [THREAD_ID],
    ).fetchone()
    say(
        f"  main's checkpoint_values: {deltas['n']} 'delta' rows for {deltas['longest']} messages"
        " (each step's list stores only the message it appended)"
    )

    console.rule("5. merge the fork into main", align="left")
    result = saver.merge(BRANCH)
    say(
        f"  saver.merge({BRANCH!r}): no conflicts, {result.tables['checkpoints'].added} checkpoints added,"
        f" {result.modified} rows changed"
    )
    heads = {"main's own continuation": history[0].config, f"from {BRANCH}": fork_head}
    say(continuations_table(graph, fork_step, heads))
    now = graph.get_state(CONFIG)
    say(
        f"main now: {len(checkpoint_ids(saver))} checkpoints, both continuations;"
        f" latest: step {now.metadata['step']}, outcome {now.values['outcome']}"
    )
    db.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child_main(sys.argv[2])
    elif len(sys.argv) == 2:
        if "://" not in sys.argv[1] and Path(sys.argv[1]).exists():
            raise SystemExit(f"langgraph_agent: {sys.argv[1]} exists; give a new path")
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory(prefix="loomdb-langgraph-agent-") as folder:
            main(str(Path(folder) / "agent-runs.loom"))
