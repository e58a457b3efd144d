"""LoomSaver, the LangGraph checkpointer: what a LangGraph user and a SQL reader rely on.

Every test runs on both engines (``store_path`` is a SQLite file or a fresh
PostgreSQL schema). LangGraph's own contract is checked by the published
conformance suite in test_langgraph_conformance.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import operator
from typing import Annotated, Any, TypedDict

import numpy as np
import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

import loomdb
from loomdb.langgraph import LoomSaver

ITEM_TEXT = "observation " * 60  # ~720 bytes: an appended item large enough to be stored by hash


class LoopState(TypedDict):
    step: int
    note: str
    history: Annotated[list, operator.add]


def loop_graph(saver: LoomSaver, steps: int, fail_at: int | None = None):
    """One node looping ``steps`` times, appending one item per step (raising at ``fail_at``)."""

    def act(state: LoopState) -> dict[str, Any]:
        if state["step"] == fail_at:
            raise RuntimeError(f"tool failed at step {fail_at}")
        return {
            "step": state["step"] + 1,
            "note": f"did {state['step']}",
            "history": [{"step": state["step"], "text": ITEM_TEXT}],
        }

    graph = StateGraph(LoopState)
    graph.add_node("act", act)
    graph.add_edge(START, "act")
    graph.add_conditional_edges("act", lambda s: "act" if s["step"] < steps else END)
    return graph.compile(checkpointer=saver)


def thread(name: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": name}, "recursion_limit": 200}


START_STATE = {"step": 0, "note": "", "history": []}


@pytest.fixture
def saver(store_path):
    with LoomSaver.from_conn_string(store_path) as saver:
        yield saver


def stored_list_items(saver: LoomSaver, thread_id: str) -> int:
    """How many list items the thread's stored list values hold, whole copies and deltas together."""
    rows = saver.db.execute(
        "SELECT hash, type, blob, ref, base FROM checkpoint_values WHERE thread_id = %s", [thread_id]
    ).fetchall()
    by_hash = {r["hash"]: r for r in rows}
    parts = set()
    for r in rows:
        if r["type"] == "delta":
            parts.add(r["hash"] if r["ref"] is None else r["ref"])
            if r["base"] in by_hash and by_hash[r["base"]]["type"] != "delta":
                parts.add(r["base"])
    total = 0
    for h in parts:
        items = saver.serde.loads_typed(("msgpack", bytes(by_hash[h]["blob"])))
        total += len(items)
    return total


# -- SQL ----------------------------------------------------------------------------------------


def test_checkpoints_are_rows_sql_can_query(saver):
    loop_graph(saver, 3).invoke(START_STATE, thread(), durability="sync")
    rows = saver.db.execute(
        "SELECT step, source, metadata->>'source' AS meta_source, channel_values->>'note' AS note,"
        " (channel_values->>'step')::int AS state_step"
        " FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY step",
        ["t1"],
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        (-1, "input", "input", None, None),
        (0, "loop", "loop", "", 0),
        (1, "loop", "loop", "did 0", 1),
        (2, "loop", "loop", "did 1", 2),
        (3, "loop", "loop", "did 2", 3),
    ]
    parents = saver.db.execute(
        "SELECT count(*) AS n FROM checkpoints c JOIN checkpoints p ON p.thread_id = c.thread_id"
        " AND p.checkpoint_id = c.parent_checkpoint_id WHERE c.thread_id = %s",
        ["t1"],
    ).fetchone()
    assert parents["n"] == 4
    rows = saver.db.execute(
        "SELECT c.step, w.task_path, w.writes FROM checkpoint_writes w JOIN checkpoints c"
        " ON c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id"
        """ WHERE w.thread_id = %s AND w.writes @> '[{"channel": "note"}]' ORDER BY c.step""",
        ["t1"],
    ).fetchall()
    notes = [(r["step"], w["value"]) for r in rows for w in r["writes"] if w["channel"] == "note"]
    assert notes == [(-1, ""), (0, "did 0"), (1, "did 1"), (2, "did 2")]
    assert [w["channel"] for w in rows[1]["writes"]] == ["step", "note", "history", "branch:to:act"]


def test_a_large_value_written_by_a_node_is_stored_once(saver):
    class Doc(TypedDict):
        doc: str

    graph = StateGraph(Doc)
    graph.add_node("write", lambda s: {"doc": "x" * 5000})
    graph.add_edge(START, "write")
    graph.add_edge("write", END)
    graph.compile(checkpointer=saver).invoke({"doc": ""}, thread(), durability="sync")
    rows = saver.db.execute(
        "SELECT hash, type, value FROM checkpoint_values WHERE thread_id = %s AND type = 'json'", ["t1"]
    ).fetchall()
    assert [(r["type"], len(r["value"])) for r in rows] == [("json", 5000)]
    by_ref = [
        (w["channel"], w["ref"])
        for r in saver.db.execute("SELECT writes FROM checkpoint_writes").fetchall()
        for w in r["writes"]
        if "ref" in w
    ]
    assert by_ref == [("doc", rows[0]["hash"])]


def test_float_lists_are_stored_compactly_and_read_back_bit_for_bit(store_path):
    """An embedding that was a float32 array (``tolist()``) costs about 3.5 bytes a
    value; the few values float32 cannot hold bit for bit keep all 64 bits; a list
    of float64s costs about 7.3 (msgpack: 9); a list with ints among its floats
    is not a float list (it is compressed as a whole)."""

    class Doc(TypedDict):
        embedding: list
        odd: list
        wide: list
        mixed: list

    rng = np.random.default_rng(3)
    embedding = rng.standard_normal(1536).astype(np.float32).tolist()
    odd = list(embedding[:512])
    odd[0] = 123456789.0  # beyond float32's 24-bit integers
    odd[1] = 1e300  # beyond its range
    odd[2] = -0.0  # float32 holds these two
    odd[3] = float("nan")
    odd[4] = 0.1  # float32 has no exact 0.1
    wide = rng.standard_normal(1536).tolist()  # float64s
    mixed = [1, 2.5] * 150  # stored as msgpack has it (compressed)

    graph = StateGraph(Doc)
    graph.add_node("write", lambda s: {"embedding": embedding, "odd": odd, "wide": wide, "mixed": mixed})
    graph.add_edge(START, "write")
    graph.add_edge("write", END)
    with LoomSaver.from_conn_string(store_path) as saver:
        graph.compile(checkpointer=saver).invoke(
            {"embedding": [], "odd": [], "wide": [], "mixed": []}, thread()
        )
        rows = saver.db.execute(
            "SELECT type, octet_length(blob) AS n FROM checkpoint_values WHERE type LIKE '%+msgpack'"
        ).fetchall()
        sizes = {r["type"]: sorted(x["n"] for x in rows if x["type"] == r["type"]) for r in rows}
    assert sorted(sizes) == ["f32+msgpack", "f64z+msgpack", "zstd+msgpack"]
    (small_f32, big_f32), (f64,), (zipped,) = (
        sizes["f32+msgpack"],
        sizes["f64z+msgpack"],
        sizes["zstd+msgpack"],
    )
    assert zipped < len(saver.serde.dumps_typed(mixed)[1]) / 8
    assert 3 * len(embedding) < big_f32 < 4 * len(embedding)
    assert 3 * len(odd) + 3 * 12 < small_f32 < 4 * len(odd) + 3 * 12  # 3 values apart: position + float64
    assert 7 * len(wide) < f64 < 7.5 * len(wide)
    with LoomSaver.from_conn_string(store_path) as fresh:  # a new connection reads them back exactly
        values = graph.compile(checkpointer=fresh).get_state(thread()).values
        assert values["embedding"] == embedding and values["wide"] == wide and values["mixed"] == mixed
        got = values["odd"]
        assert got[:3] == odd[:3] and math.copysign(1.0, got[2]) == -1.0
        assert math.isnan(got[3]) and got[4:] == odd[4:]
        # The bytes the serde reads are exactly those it wrote.
        assert fresh.serde.dumps_typed(got)[1] == fresh.serde.dumps_typed(odd)[1]
        assert [type(x) for x in values["mixed"][:2]] == [int, float]
    # Bytes damaged behind the saver's back are reported as such, not as a serde crash.
    for kind in ("f32", "f64z", "zstd"):
        with LoomSaver.from_conn_string(store_path) as damaged:
            damaged.db.execute(
                "UPDATE checkpoint_values SET blob = %s WHERE type = %s",
                [b"\xff\xff\x00\x00\x01", f"{kind}+msgpack"],
            )
            with pytest.raises(loomdb.DataError, match="do not parse|does not decompress"):
                graph.compile(checkpointer=damaged).get_state(thread())


def test_values_json_cannot_carry_exactly_come_back_with_their_type(saver):
    values = {
        "nul": "a\x00b",
        "long_nul": "x\x00" * 400,
        "big_float": 1e16,
        "negative_zero": -0.0,
        "beyond_int64": 2**63,
        "float": 0.1,
        "flag": True,
        "nothing": None,
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    }
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = {ch: saver.get_next_version(None, None) for ch in values}
    config = saver.put(
        {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}},
        checkpoint,
        {"step": 0},
        dict(checkpoint["channel_versions"]),
    )
    got = saver.get_tuple(config).checkpoint["channel_values"]
    assert got == values
    assert {ch: type(v) for ch, v in got.items()} == {ch: type(v) for ch, v in values.items()}
    assert str(got["negative_zero"]) == "-0.0"
    inline = saver.db.execute("SELECT channel_values FROM checkpoints").fetchone()[0]
    assert inline == {"float": 0.1, "flag": True, "nothing": None}


# -- storage of growing lists ---------------------------------------------------------------------


def test_a_growing_list_stores_each_appended_item_once(saver):
    loop_graph(saver, 30).invoke(START_STATE, thread(), durability="sync")
    assert stored_list_items(saver, "t1") == 30
    deltas = saver.db.execute(
        "SELECT count(*) AS n FROM checkpoint_values WHERE thread_id = %s AND type = 'delta'", ["t1"]
    ).fetchone()
    assert deltas["n"] == 30
    value_bytes = sum(
        len(bytes(r["blob"]))
        for r in saver.db.execute("SELECT blob FROM checkpoint_values WHERE blob IS NOT NULL").fetchall()
    )
    assert value_bytes < 30 * (len(ITEM_TEXT) + 100)  # a whole list per step would be 15x this


def test_every_checkpoint_rebuilds_the_list_it_had(saver, store_path):
    loop_graph(saver, 12).invoke(START_STATE, thread(), durability="sync")
    with LoomSaver.from_conn_string(store_path) as fresh:
        seen = 0
        for tup in fresh.list(thread()):
            values = tup.checkpoint["channel_values"]
            if "step" in values:
                assert [item["step"] for item in values["history"]] == list(range(values["step"]))
                seen += 1
        assert seen == 13
        state = loop_graph(fresh, 12).get_state(thread())
        assert len(state.values["history"]) == 12
        assert state.values["history"][-1] == {"step": 11, "text": ITEM_TEXT}


def test_long_chains_are_cut_by_whole_copies_and_still_rebuild(store_path):
    with LoomSaver.from_conn_string(store_path, list_snapshot_after=3) as saver:
        loop_graph(saver, 20).invoke(START_STATE, thread(), durability="sync")
        whole_copies = saver.db.execute(
            "SELECT count(DISTINCT root) AS n FROM checkpoint_values WHERE thread_id = %s AND type = 'delta'",
            ["t1"],
        ).fetchone()
        assert whole_copies["n"] >= 3
        for tup in saver.list(thread()):
            values = tup.checkpoint["channel_values"]
            if "step" in values:
                assert [item["step"] for item in values["history"]] == list(range(values["step"]))


def test_a_list_that_is_edited_rather_than_appended_is_stored_whole(saver):
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
    lists = [[1, 2, 3], [1, 2, 3, 4], [9, 2, 3, 4], [9, 2], [9, 2, 5, 6, 7]]
    for i, value in enumerate(lists):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"xs": value}
        checkpoint["channel_versions"] = {"xs": saver.get_next_version(None if i == 0 else str(i), None)}
        config = saver.put(config, checkpoint, {"step": i}, dict(checkpoint["channel_versions"]))
    got = [t.checkpoint["channel_values"]["xs"] for t in saver.list({"configurable": {"thread_id": "t1"}})]
    assert got == list(reversed(lists))


# -- resuming --------------------------------------------------------------------------------------


def test_a_graph_resumes_from_its_last_checkpoint_in_a_new_connection(store_path):
    with LoomSaver.from_conn_string(store_path) as saver, pytest.raises(RuntimeError, match="at step 4"):
        loop_graph(saver, 8, fail_at=4).invoke(START_STATE, thread(), durability="sync")
    with LoomSaver.from_conn_string(store_path) as saver:
        graph = loop_graph(saver, 8)
        stuck = graph.get_state(thread())
        assert stuck.values["step"] == 4 and stuck.next == ("act",)
        final = graph.invoke(None, thread(), durability="sync")
    assert final["step"] == 8
    assert [item["step"] for item in final["history"]] == list(range(8))


def test_an_interrupted_graph_resumes_with_a_human_answer_in_a_new_connection(store_path):
    class Ask(TypedDict):
        answer: str

    def ask(state: Ask) -> dict[str, Any]:
        return {"answer": interrupt("approve?")}

    def build(saver: LoomSaver):
        graph = StateGraph(Ask)
        graph.add_node("ask", ask)
        graph.add_edge(START, "ask")
        graph.add_edge("ask", END)
        return graph.compile(checkpointer=saver)

    with LoomSaver.from_conn_string(store_path) as saver:
        out = build(saver).invoke({"answer": ""}, thread(), durability="sync")
        assert out["__interrupt__"][0].value == "approve?"
    with LoomSaver.from_conn_string(store_path) as saver:
        pending = saver.get_tuple(thread()).pending_writes
        assert [w[1] for w in pending] == [INTERRUPT]
        assert build(saver).invoke(Command(resume="yes"), thread(), durability="sync") == {"answer": "yes"}


def test_deferred_writes_commit_with_the_next_checkpoint_and_special_writes_at_once(store_path):
    with LoomSaver.from_conn_string(store_path) as saver:
        config = saver.put(
            {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}, empty_checkpoint(), {"step": -1}, {}
        )
        other = loomdb.connect(store_path)
        try:
            saver.put_writes(config, [("note", "hi")], "task-1")
            saver.put_writes(config, [(INTERRUPT, "stop")], "task-2")
            seen = other.execute(
                "SELECT task_id, writes->0->>'channel' AS channel FROM checkpoint_writes ORDER BY task_id"
            ).fetchall()
            assert [tuple(r) for r in seen] == [("task-1", "note"), ("task-2", INTERRUPT)]
            saver.put_writes(config, [("note", "later")], "task-3")
            assert other.execute("SELECT count(*) FROM checkpoint_writes").fetchone()[0] == 2
        finally:
            other.close()
    with LoomSaver.from_conn_string(store_path) as saver:  # the context manager flushed task-3
        assert [w[0] for w in saver.get_tuple(thread()).pending_writes] == ["task-1", "task-2", "task-3"]


def test_a_checkpoint_put_again_replaces_the_stored_one_whoever_stored_it(store_path):
    """A step's batch inserts its checkpoint unless the id is taken; an id this saver
    stored is upserted, and one another saver (or process) stored is replaced next."""
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    with LoomSaver.from_conn_string(store_path) as first:
        first.put(config, checkpoint, {"step": 1, "note": "first"}, {})
        first.put(config, checkpoint, {"step": 1, "note": "again"}, {})  # known to this saver
        assert first.get_tuple(thread()).metadata["note"] == "again"
    with LoomSaver.from_conn_string(store_path) as other:  # knows nothing of the id
        other.put_writes(
            {"configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}},
            [("x", 1)],
            "task",
        )
        other.put(config, checkpoint, {"step": 1, "note": "other"}, {})
        got = other.get_tuple(thread())
        assert got.metadata["note"] == "other" and [w[1:] for w in got.pending_writes] == [("x", 1)]
        rows = other.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        assert rows == 1


def test_writes_arriving_after_their_checkpoints_successor_commit_at_once(store_path):
    """LangGraph calls put_writes and the next put from background threads, in
    either order: writes against a checkpoint that already has a successor
    have no later put to ride with, and must not wait in memory."""
    with LoomSaver.from_conn_string(store_path) as saver:
        first = saver.put(
            {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}, empty_checkpoint(), {"step": -1}, {}
        )
        second = empty_checkpoint()
        saver.put(first, second, {"step": 0}, {})
        other = loomdb.connect(store_path)
        try:
            saver.put_writes(first, [("note", "late")], "task-1")  # its successor is already stored
            assert other.execute("SELECT count(*) FROM checkpoint_writes").fetchone()[0] == 1
        finally:
            other.close()


# -- pending writes: one row per task and put_writes call ----------------------------------------------


def first_checkpoint(saver: LoomSaver, thread_id: str = "t1") -> dict[str, Any]:
    return saver.put(
        {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, empty_checkpoint(), {"step": -1}, {}
    )


def write_rows(saver: LoomSaver) -> list[tuple[str, int, list[str]]]:
    rows = saver.db.execute(
        "SELECT task_id, idx, writes FROM checkpoint_writes ORDER BY task_id, idx"
    ).fetchall()
    return [(r["task_id"], r["idx"], [w["channel"] for w in r["writes"]]) for r in rows]


@pytest.mark.parametrize("defer", [True, False], ids=["deferred", "eager"])
def test_a_step_stores_one_write_row_per_task_and_reads_back_in_langgraph_order(store_path, defer):
    with LoomSaver.from_conn_string(store_path, defer_writes=defer) as saver:
        config = first_checkpoint(saver)
        saver.put_writes(config, [("b", 1), ("a", {"x": [1, 2]}), ("c", "y" * 300)], "task-2", "~p, n2")
        saver.put_writes(config, [("a", 2), ("d", b"raw")], "task-1", "~p, n1")
        saver.put_writes(config, [("z", 3)], "task-0", "~p, n3")
        saver.put_writes(config, [(ERROR, ValueError("boom"))], "task-1", "~p, n1")
        pending = saver.get_tuple(config).pending_writes
        # LangGraph's writes_sort_key: task_path, then task_id, then idx (special writes first)
        assert [(t, ch) for t, ch, _ in pending] == [
            ("task-1", ERROR),
            ("task-1", "a"),
            ("task-1", "d"),
            ("task-2", "b"),
            ("task-2", "a"),
            ("task-2", "c"),
            ("task-0", "z"),
        ]
        values = {(t, ch): v for t, ch, v in pending}
        assert values[("task-2", "a")] == {"x": [1, 2]} and values[("task-2", "c")] == "y" * 300
        assert values[("task-1", "d")] == b"raw" and "boom" in str(values[("task-1", ERROR)])
        assert write_rows(saver) == [
            ("task-0", 0, ["z"]),
            ("task-1", -1, [ERROR]),
            ("task-1", 0, ["a", "d"]),
            ("task-2", 0, ["b", "a", "c"]),
        ]


def test_a_loop_writes_one_row_per_step_holding_every_channel_the_node_wrote(saver):
    loop_graph(saver, 6).invoke(START_STATE, thread(), durability="sync")
    rows = saver.db.execute(
        "SELECT c.step, w.writes FROM checkpoint_writes w JOIN checkpoints c ON c.thread_id = w.thread_id"
        " AND c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id ORDER BY c.step"
    ).fetchall()
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) == list(range(-1, 6))  # one row per step: the step's one task
    assert [w["channel"] for w in rows[3]["writes"]] == ["step", "note", "history", "branch:to:act"]
    checkpoints = saver.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    assert checkpoints == len(rows) + 1  # the last checkpoint has no writes


def test_a_retried_task_keeps_its_first_writes_and_stores_only_what_was_missing(saver):
    config = first_checkpoint(saver)
    saver.put_writes(config, [("a", 1), ("b", 2)], "task-1")
    saver.flush()
    saver.put_writes(config, [("a", 10), ("b", 20)], "task-1")  # a retry: nothing changes
    saver.put_writes(config, [("a", 100), ("b", 200), ("c", 300)], "task-1")  # only idx 2 is new
    saver.put_writes(config, [("a", 1000)], "task-2")
    saver.put_writes(config, [("a", 2000), ("b", 2001)], "task-2")  # same batch, not yet committed
    pending = saver.get_tuple(config).pending_writes
    assert pending == [
        ("task-1", "a", 1),
        ("task-1", "b", 2),
        ("task-1", "c", 300),
        ("task-2", "a", 1000),
        ("task-2", "b", 2001),
    ]
    assert write_rows(saver) == [
        ("task-1", 0, ["a", "b"]),
        ("task-1", 2, ["c"]),
        ("task-2", 0, ["a"]),
        ("task-2", 1, ["b"]),
    ]
    saver.put_writes(config, [("a", 0), ("b", 0), ("c", 0), ("d", 4)], "task-1")
    assert [w[2] for w in saver.get_tuple(config).pending_writes if w[0] == "task-1"] == [1, 2, 300, 4]


def test_a_special_write_replaces_the_earlier_one_of_its_task(saver):
    config = first_checkpoint(saver)
    saver.put_writes(config, [("a", 1)], "task-1")
    saver.put_writes(config, [(INTERRUPT, "first")], "task-1")
    saver.put_writes(config, [(INTERRUPT, "second"), (INTERRUPT, "third")], "task-1")  # the last wins
    saver.put_writes(config, [(RESUME, "yes")], "task-1")
    # Mixed with ordinary writes, special writes are kept as first stored, like ordinary ones.
    saver.put_writes(config, [("b", 2), (INTERRUPT, "ignored"), (ERROR, "kept")], "task-2")
    saver.put_writes(config, [("b", 3), (ERROR, "ignored too")], "task-2")
    pending = saver.get_tuple(config).pending_writes
    assert pending == [
        ("task-1", RESUME, "yes"),
        ("task-1", INTERRUPT, "third"),
        ("task-1", "a", 1),
        ("task-2", INTERRUPT, "ignored"),
        ("task-2", ERROR, "kept"),
        ("task-2", "b", 2),
    ]
    rows = saver.db.execute("SELECT count(*) FROM checkpoint_writes WHERE task_id = 'task-1'").fetchone()[0]
    assert rows == 3  # the ordinary writes, the interrupt, the resume


def test_writes_are_copied_with_their_thread_deleted_with_their_run_and_kept_by_prune(saver):
    base = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
    first = saver.put(base, empty_checkpoint(), {"step": 0, "run_id": "run-a"}, {})
    saver.put_writes(first, [("note", "a"), ("big", "x" * 400)], "task-1")
    second = saver.put(first, empty_checkpoint(), {"step": 1, "run_id": "run-b"}, {})
    saver.put_writes(second, [("note", "b"), ("big", "y" * 400)], "task-2")
    saver.copy_thread("t1", "t2")
    listed = [t.pending_writes for t in saver.list(thread("t1"))]
    assert listed == [
        [("task-2", "note", "b"), ("task-2", "big", "y" * 400)],
        [
            ("task-1", "note", "a"),
            ("task-1", "big", "x" * 400),
        ],
    ]
    assert [t.pending_writes for t in saver.list(thread("t2"))] == listed
    saver.delete_for_runs(["run-a"])
    assert [t.pending_writes for t in saver.list(thread("t2"))] == listed[:1]
    assert (
        saver.db.execute("SELECT count(*) FROM checkpoint_values WHERE thread_id = 't1'").fetchone()[0] == 1
    )
    saver.put_writes(saver.get_tuple(thread("t1")).config, [("note", "c")], "task-3")
    saver.prune(["t1"], strategy="keep_latest")
    assert saver.get_tuple(thread("t1")).pending_writes == [*listed[0], ("task-3", "note", "c")]


def test_a_store_with_the_old_write_layout_is_refused_with_a_clear_error(store_path):
    db = loomdb.connect(store_path)
    try:
        db.execute(
            "CREATE TABLE checkpoint_writes (thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL,"
            " checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL, idx INT NOT NULL, channel TEXT NOT NULL,"
            " task_path TEXT NOT NULL, type TEXT NOT NULL, value JSONB, blob BYTEA, ref TEXT,"
            " PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx))"
        )
        with pytest.raises(loomdb.ProgrammingError, match="earlier LoomSaver"):
            LoomSaver(db).setup()
    finally:
        db.close()


def test_checkpoint_id_and_ts_are_stored_once_and_come_back_exactly(saver):
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
    for ts in ["2026-01-02T03:04:05.123456+00:00", "2026-01-02T03:04:05+02:00", "2026-01-02T03:04:05Z"]:
        checkpoint = empty_checkpoint()
        checkpoint["ts"] = ts
        config = saver.put(config, checkpoint, {"step": 0}, {})
        got = saver.get_tuple(config).checkpoint
        assert (got["id"], got["ts"]) == (checkpoint["id"], ts)
        body = saver.db.execute(
            "SELECT checkpoint FROM checkpoints WHERE checkpoint_id = %s", [checkpoint["id"]]
        ).fetchone()[0]
        assert "id" not in body and ("ts" in body) == (ts != "2026-01-02T03:04:05.123456+00:00")


# -- DeltaChannel -----------------------------------------------------------------------------------


def _extend(state: list, writes: list) -> list:
    out = list(state)
    for w in writes:
        out.extend(w)
    return out


class DeltaState(TypedDict):
    step: int
    log: Annotated[list, DeltaChannel(_extend, snapshot_frequency=3)]


def delta_graph(saver: LoomSaver, steps: int):
    graph = StateGraph(DeltaState)
    graph.add_node("act", lambda s: {"step": s["step"] + 1, "log": [s["step"]]})
    graph.add_edge(START, "act")
    graph.add_conditional_edges("act", lambda s: "act" if s["step"] < steps else END)
    return graph.compile(checkpointer=saver)


def test_a_delta_channel_is_rebuilt_from_ancestor_writes_and_its_snapshot(store_path):
    with LoomSaver.from_conn_string(store_path) as saver:
        delta_graph(saver, 8).invoke({"step": 0, "log": []}, thread(), durability="sync")
    with LoomSaver.from_conn_string(store_path) as saver:
        assert delta_graph(saver, 8).get_state(thread()).values["log"] == list(range(8))
        history = saver.get_delta_channel_history(config=thread(), channels=["log"])["log"]
        assert "seed" in history
        assert list(history["seed"].value) + [v for w in history["writes"] for v in w[2]] == list(range(8))


def test_pruning_a_delta_channel_thread_keeps_its_state(saver):
    graph = delta_graph(saver, 8)
    graph.invoke({"step": 0, "log": []}, thread(), durability="sync")
    before = len(list(saver.list(thread())))
    saver.prune(["t1"], strategy="keep_latest")
    assert len(list(saver.list(thread()))) < before
    assert graph.get_state(thread()).values["log"] == list(range(8))


def test_prune_keep_latest_keeps_the_latest_state_and_drops_unused_values(saver):
    graph = loop_graph(saver, 6)
    graph.invoke(START_STATE, thread(), durability="sync")
    saver.prune(["t1"], strategy="keep_latest")
    [latest] = list(saver.list(thread()))
    assert latest.parent_config is None
    assert [item["step"] for item in graph.get_state(thread()).values["history"]] == list(range(6))
    saver.delete_thread("t1")
    assert saver.db.execute("SELECT count(*) FROM checkpoint_values").fetchone()[0] == 0


# -- forks, branches, merges -------------------------------------------------------------------------


def test_a_fork_continues_on_its_branch_and_merges_back_into_main(saver):
    graph = loop_graph(saver, 3)
    graph.invoke(START_STATE, thread(), durability="sync")
    explore, at = saver.fork(thread(), branch="explore")
    assert (
        at["configurable"]["checkpoint_id"]
        == saver.get_tuple(thread()).config["configurable"]["checkpoint_id"]
    )

    loop_graph(explore, 6).invoke({"step": 3, "note": "explore"}, thread(), durability="sync")
    loop_graph(saver, 5).invoke({"step": 3, "note": "main"}, thread(), durability="sync")
    assert len(explore.get_tuple(thread()).checkpoint["channel_values"]["history"]) == 6
    assert len(saver.get_tuple(thread()).checkpoint["channel_values"]["history"]) == 5
    main_ids = {t.config["configurable"]["checkpoint_id"] for t in saver.list(thread())}
    explore_ids = {t.config["configurable"]["checkpoint_id"] for t in explore.list(thread())}

    result = saver.merge("explore")
    assert result.commit is not None
    merged = {t.config["configurable"]["checkpoint_id"] for t in saver.list(thread())}
    assert merged == main_ids | explore_ids
    explore_head = explore.get_tuple(thread()).config
    assert len(saver.get_tuple(explore_head).checkpoint["channel_values"]["history"]) == 6


def test_conflicting_edits_of_a_fork_are_reported_and_can_be_settled(saver):
    config = saver.put(
        {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}, empty_checkpoint(), {"step": 0}, {}
    )
    branch, at = saver.fork(config, branch="other")
    saver.put_writes(at, [("answer", "ours")], "task-1")
    branch.put_writes(at, [("answer", "theirs")], "task-1")
    with pytest.raises(loomdb.MergeConflict) as caught:
        saver.merge("other")
    assert {c.table for c in caught.value.conflicts} == {"checkpoint_writes"}
    assert saver.get_tuple(at).pending_writes == [("task-1", "answer", "ours")]
    saver.merge("other", on_conflict="theirs")
    assert saver.get_tuple(at).pending_writes == [("task-1", "answer", "theirs")]


def test_forking_an_unknown_thread_is_refused_and_creates_no_branch(saver):
    with pytest.raises(loomdb.ProgrammingError, match="no checkpoint"):
        saver.fork(thread("nobody"), branch="b")
    assert [b.name for b in saver.db.branches()] == ["main"]


# -- async -----------------------------------------------------------------------------------------


def test_async_methods_give_what_the_sync_ones_give(saver):
    async def scenario() -> None:
        graph = loop_graph(saver, 4)
        await graph.ainvoke(START_STATE, thread(), durability="sync")
        latest = await saver.aget_tuple(thread())
        assert latest == saver.get_tuple(thread())
        listed = [t async for t in saver.alist(thread(), limit=2)]
        assert listed == list(saver.list(thread(), limit=2))
        await saver.aput_writes(latest.config, [("note", "async")], "task-9")
        assert (await saver.aget_tuple(latest.config)).pending_writes[-1] == ("task-9", "note", "async")
        await saver.acopy_thread("t1", "t2")
        assert len([t async for t in saver.alist(thread("t2"))]) == 6
        await saver.adelete_thread("t1")
        assert await saver.aget_tuple(thread()) is None

    asyncio.run(scenario())


# -- bad input ---------------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors_and_leaves_the_store_intact(saver):
    loop_graph(saver, 2).invoke(START_STATE, thread(), durability="sync")
    before = saver.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    with pytest.raises(loomdb.ProgrammingError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(loomdb.ProgrammingError, match="checkpoint_id"):
        saver.put_writes({"configurable": {"thread_id": "t1"}}, [("a", 1)], "task")
    with pytest.raises(loomdb.IntegrityError, match="already has checkpoints"):
        saver.copy_thread("t1", "t1")
    with pytest.raises(ValueError, match="unknown prune strategy"):
        saver.prune(["t1"], strategy="everything")
    with pytest.raises(TypeError):
        saver.prune("t1")
    with pytest.raises(loomdb.ProgrammingError):
        LoomSaver("not a database")  # type: ignore[arg-type]
    assert saver.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == before
    assert loop_graph(saver, 2).get_state(thread()).values["step"] == 2
