"""Model-based test of db.merge against a plain-Python three-way merge.

Hypothesis forks two or three branches from main, runs random INSERT /
UPDATE / DELETE statements on ``kv (k INT PRIMARY KEY, a INT, b INT)`` on
them, merges one branch into another with a random policy ("fail", "ours",
"theirs"), then does more edits and merges the same pair again. The store
must agree with the model below, conflicts included:

per key, with base/ours/theirs the row (None = absent) at the merge base, on
the target and on the source:

* theirs == base -> ours; ours == base -> theirs; ours == theirs -> ours;
* all three present -> per column: take the side that differs from base; a
  column both sides changed to different values is a conflict (resolved by
  ours' / theirs' cell);
* otherwise (deleted on one side and changed on the other, or inserted on
  both sides with different values) -> a whole-row conflict (resolved by
  taking ours' / theirs' row, absent included).

With "fail" and any conflict, MergeConflict names exactly the model's
conflicting keys and nothing changes on any branch. The base of the second
merge is the source's state at the first merge (when that merge made a
commit).

Two variants: one where a key deleted on a branch is never inserted again
on it (rows keep their identity), and one where it may be (delete + insert
of the same key between merges), which the contract also covers: in a
table with a PRIMARY KEY, rows are matched by their key.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

import loomdb

KEYS = range(6)
VALUES = st.integers(0, 2)
POLICIES = ("fail", "ours", "theirs")
OPS = ("insert", "set_a", "set_b", "set_ab", "delete")

Table = dict[int, tuple[int, int]]  # k -> (a, b)


# -- the model --------------------------------------------------------------------------------


def merge_model(base: Table, ours: Table, theirs: Table, policy: str):
    """(merged table, {k: (kind, columns)} conflicts) for ``policy`` in "ours"/"theirs"/"fail"."""
    merged: Table = {}
    conflicts = {}
    for k in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(k), ours.get(k), theirs.get(k)
        if t == b:
            row = o
        elif o == b:
            row = t
        elif o == t:
            row = o
        elif b is not None and o is not None and t is not None:
            cells, clash = [], []
            for i, name in enumerate(("a", "b")):
                if o[i] == b[i]:
                    cells.append(t[i])
                elif t[i] == b[i] or o[i] == t[i]:
                    cells.append(o[i])
                else:
                    clash.append(name)
                    cells.append(t[i] if policy == "theirs" else o[i])
            row = tuple(cells)
            if clash:
                conflicts[k] = ("update/update", tuple(clash))
        else:
            kind = "insert/insert" if b is None else ("delete/update" if o is None else "update/delete")
            conflicts[k] = (kind, None)
            row = t if policy == "theirs" else o
        if row is not None:
            merged[k] = row
    return merged, conflicts


# -- driving the store ------------------------------------------------------------------------


def read(handle) -> Table:
    return {r[0]: (r[1], r[2]) for r in handle.execute("SELECT k, a, b FROM kv ORDER BY k").fetchall()}


def apply_op(handle, table: Table, deleted: set[int], op, k, a, b, mode: str, owner: int) -> None:
    """Run one statement on the branch and mirror it in ``table``.

    ``mode``: "disjoint" (branch i only inserts keys k with k % n == i, never
    again after a delete: no key is ever inserted on two branches),
    "no-reinsert" (a branch never inserts a key it deleted), "reinsert"
    (anything goes). ``owner`` is True when this branch may insert ``k``
    in "disjoint" mode.
    """
    if op == "insert":
        if k in table or (k in deleted and mode != "reinsert") or (mode == "disjoint" and not owner):
            return
        handle.execute("INSERT INTO kv (k, a, b) VALUES (%s, %s, %s)", [k, a, b])
        table[k] = (a, b)
    elif op == "delete":
        if k not in table:
            return
        cur = handle.execute("DELETE FROM kv WHERE k = %s", [k])
        assert cur.rowcount == 1
        del table[k]
        deleted.add(k)
    else:
        if k not in table:
            return
        old_a, old_b = table[k]
        new = (a if op in ("set_a", "set_ab") else old_a, b if op in ("set_b", "set_ab") else old_b)
        handle.execute("UPDATE kv SET a = %s, b = %s WHERE k = %s", [new[0], new[1], k])
        table[k] = new


OP = st.tuples(st.sampled_from(OPS), st.sampled_from(list(KEYS)), VALUES, VALUES)


@st.composite
def scenarios(draw):
    n = draw(st.integers(2, 3), label="branches")
    initial = draw(st.dictionaries(st.sampled_from(list(KEYS)), st.tuples(VALUES, VALUES), max_size=5))
    source, target = draw(st.permutations(range(n)), label="source/target")[:2]
    rounds = []
    for _ in range(2):
        edits = draw(st.lists(st.tuples(st.integers(0, n - 1), OP), max_size=14), label="edits")
        policy = draw(st.sampled_from(POLICIES), label="policy")
        rounds.append((edits, policy))
    return n, initial, source, target, rounds


def run_scenario(new_store, scenario, mode: str) -> None:
    """One example on a fresh store from ``new_store`` (a conftest StoreFactory)."""
    n, initial, si, ti, rounds = scenario
    db = loomdb.connect(new_store(), durability="normal")
    try:
        db.execute("CREATE TABLE kv (k INT PRIMARY KEY, a INT, b INT)")
        if initial:
            db.executemany(
                "INSERT INTO kv (k, a, b) VALUES (%s, %s, %s)", [(k, a, b) for k, (a, b) in initial.items()]
            )
        names = [f"run-{i}/branch" if i % 2 else f"b{i}" for i in range(n)]
        handles = [db.branch(name) for name in names]
        tables = [dict(initial) for _ in range(n)]
        deleted = [set() for _ in range(n)]
        source, target = names[si], names[ti]
        base = dict(initial)

        for round_no, (edits, policy) in enumerate(rounds):
            for bi, (op, k, a, b) in edits:
                apply_op(handles[bi], tables[bi], deleted[bi], op, k, a, b, mode, k % n == bi)
            for h, t in zip(handles, tables, strict=True):
                assert read(h) == t
            ours, theirs = tables[ti], tables[si]
            merged, conflicts = merge_model(base, ours, theirs, policy)
            note(f"round {round_no}: merge {source} into {target} with {policy!r}")
            note(f"  base={base}\n  ours={ours}\n  theirs={theirs}\n  model={merged} conflicts={conflicts}")
            heads = [h.head for h in handles]
            main_before = (db.head, read(db))

            if policy == "fail" and conflicts:
                with pytest.raises(loomdb.MergeConflict) as info:
                    db.merge(source, into=target, on_conflict=policy)
                got = {}
                for c in info.value.conflicts:
                    assert c.table == "kv"
                    assert set(c.key) == {"k"}
                    got[c.key["k"]] = c
                assert set(got) == set(conflicts), (
                    f"conflicting keys {sorted(got)} != model {sorted(conflicts)}"
                )
                for k, (kind, cols) in conflicts.items():
                    c = got[k]
                    assert c.kind == kind, (k, c)
                    assert (c.base, c.ours, c.theirs) == tuple(
                        None if side.get(k) is None else {"k": k, "a": side[k][0], "b": side[k][1]}
                        for side in (base, ours, theirs)
                    ), (k, c)
                    if cols is not None:
                        assert tuple(c.columns) == cols, (k, c)
                # nothing changed anywhere
                assert [h.head for h in handles] == heads
                for h, t in zip(handles, tables, strict=True):
                    assert read(h) == t
            else:
                before_target = dict(ours)
                result = db.merge(source, into=target, on_conflict=policy)
                got = read(handles[ti])
                assert got == merged, f"merged {got} != model {merged}"
                assert result.conflicts_resolved == len(conflicts)
                # every other branch is unchanged
                for i, (h, t) in enumerate(zip(handles, tables, strict=True)):
                    if i != ti:
                        assert read(h) == t and h.head == heads[i]
                if result.commit is None:
                    assert got == before_target and handles[ti].head == heads[ti]
                else:
                    assert handles[ti].head == result.commit
                    assert db.checkout(target).log(limit=1)[0].parents == (heads[ti], heads[si])
                    base = dict(theirs)  # the next merge starts from the source at this merge
                # counts: what happened to the target's rows
                added = len(set(merged) - set(before_target))
                deleted_n = len(set(before_target) - set(merged))
                modified = sum(1 for k in set(merged) & set(before_target) if merged[k] != before_target[k])
                assert (result.added, result.deleted, result.modified) == (added, deleted_n, modified)
                tables[ti] = merged
                deleted[ti] |= set(before_target) - set(merged)
            assert (db.head, read(db)) == main_before
    finally:
        db.close()


MAX_EXAMPLES = int(os.environ.get("LOOMDB_MERGE_MODEL_EXAMPLES", "60"))


def model_settings(engine: str):
    # On PostgreSQL every example is a new schema and every statement a round
    # trip: run half as many examples there.
    return settings(
        max_examples=MAX_EXAMPLES if engine == "sqlite" else max(1, MAX_EXAMPLES // 2),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        deadline=None,
        # shrink one failure, not every distinct one: keeps a failing run near a minute
        report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


def check_model(new_store, engine: str, mode: str) -> None:
    """Run the property for ``mode``: each example on a fresh store of the engine."""

    @model_settings(engine)
    @given(scenario=scenarios())
    def merge_matches_model(scenario):
        run_scenario(new_store, scenario, mode=mode)

    merge_matches_model()


def test_merge_matches_three_way_model_disjoint_inserts(new_store, engine):
    """No key is ever inserted on two branches: updates, deletes, one-sided inserts."""
    check_model(new_store, engine, mode="disjoint")


def test_merge_matches_three_way_model(new_store, engine):
    """Both sides may insert the same key; a branch never re-inserts a key it deleted."""
    check_model(new_store, engine, mode="no-reinsert")


def test_merge_matches_three_way_model_with_reinserted_keys(new_store, engine):
    """A key may be deleted and inserted again on the same branch between merges."""
    check_model(new_store, engine, mode="reinsert")


def test_model_rules_themselves():
    """The model is the spec: pin its rules on hand-made cases."""
    base = {1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (0, 0)}
    ours = {1: (1, 0), 2: (1, 0), 3: (0, 0), 5: (1, 1), 6: (2, 2)}
    theirs = {1: (0, 1), 2: (2, 0), 4: (0, 9), 5: (1, 1), 6: (3, 3)}
    merged, conflicts = merge_model(base, ours, theirs, "ours")
    assert conflicts == {
        2: ("update/update", ("a",)),
        4: ("delete/update", None),
        6: ("insert/insert", None),
    }
    assert merged == {1: (1, 1), 2: (1, 0), 5: (1, 1), 6: (2, 2)}  # 3: unchanged on ours, deleted on theirs
    ours[3] = (0, 5)
    merged, conflicts = merge_model(base, ours, theirs, "theirs")
    assert conflicts[3] == ("update/delete", None)
    assert merged == {1: (1, 1), 2: (2, 0), 4: (0, 9), 5: (1, 1), 6: (3, 3)}
