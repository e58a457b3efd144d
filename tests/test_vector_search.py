"""Exact vector search: loomdb's top-k against NumPy brute force.

``ORDER BY <vector column> <op> %s LIMIT k`` is documented as exact (the k
nearest rows visible on the handle's branch and snapshot that pass the WHERE
filters), on SQLite from an in-memory copy of the column with ties broken by
insertion order, on PostgreSQL by pgvector in the server with ties in the
server's order. Every answer here is checked against a plain-Python model of
each branch's rows and NumPy (float64 arithmetic on float32-cast vectors),
on both engines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import loomdb

OPS = ("<->", "<=>", "<#>")
TOL = 1e-5  # absolute, and relative for distances larger than 1


# --------------------------------------------------------------------------- reference


def ref_distances(op: str, vecs: np.ndarray, q: np.ndarray) -> np.ndarray:
    """pgvector's distance of each row of ``vecs`` to ``q``, in float64 on float32 values."""
    m = np.asarray(vecs, dtype=np.float32).astype(np.float64)
    x = np.asarray(q, dtype=np.float32).astype(np.float64)
    if op == "<->":
        return np.sqrt(((m - x) ** 2).sum(axis=1))
    if op == "<=>":
        return 1.0 - (m @ x) / (np.linalg.norm(m, axis=1) * np.linalg.norm(x))
    if op == "<#>":
        return -(m @ x)
    raise AssertionError(op)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def filter_sql(kind: str | None) -> str:
    return {None: "", "eq": " WHERE g = %s", "lt": " WHERE g < %s"}[kind]


def passes(kind: str | None, g: int, value: int | None) -> bool:
    return kind is None or (g == value if kind == "eq" else g < value)


def topk_query(op: str, k: int, kind: str | None) -> str:
    return f"SELECT id, embedding {op} %s AS d FROM t{filter_sql(kind)} ORDER BY embedding {op} %s LIMIT {k}"


def topk_params(q, kind: str | None, value: int | None) -> list:
    return [q, value, q] if kind is not None else [q, q]


def brute_force(
    rows: dict[int, tuple[int, np.ndarray]],
    q: np.ndarray,
    op: str,
    k: int,
    kind: str | None = None,
    value: int | None = None,
) -> tuple[list[int], list[float]]:
    """The k nearest (id, distance) among ``rows``; ties by ascending id (= insertion order)."""
    ids = sorted(i for i, (g, _) in rows.items() if passes(kind, g, value))
    if not ids:
        return [], []
    d = ref_distances(op, np.stack([rows[i][1] for i in ids]), q)
    order = np.lexsort((np.asarray(ids), d))[:k]
    return [ids[j] for j in order], [float(d[j]) for j in order]


def has_near_tie(rows, q, op, k, kind, value) -> bool:
    """True if two of the k+1 nearest rows are closer than float32 rounding can separate."""
    _, d = brute_force(rows, q, op, k + 1, kind, value)
    return any(abs(b - a) <= 1e-4 * max(1.0, abs(a)) for a, b in zip(d, d[1:], strict=False))


def check_topk(handle, rows, q, op, k, kind=None, value=None) -> None:
    got = handle.execute(topk_query(op, k, kind), topk_params(q, kind, value)).fetchall()
    want_ids, want_d = brute_force(rows, q, op, k, kind, value)
    got_ids = [r["id"] for r in got]
    assert got_ids == want_ids, (op, k, kind, value, got_ids, want_ids)
    for r, w in zip(got, want_d, strict=True):
        assert close(r["d"], w), (op, r["id"], r["d"], w)


def open_store(new_store, dim: int = 8):
    """A fresh store from ``new_store`` (a conftest StoreFactory) with table t."""
    db = loomdb.connect(new_store(), durability="normal")
    db.execute(f"CREATE TABLE t (id INT PRIMARY KEY, g INT, name TEXT, embedding VECTOR({dim}))")
    return db


INSERT = "INSERT INTO t (id, g, name, embedding) VALUES (%s, %s, %s, %s)"


# --------------------------------------------------------------------------- property test


MAX_EXAMPLES = 60


def test_topk_matches_numpy_on_branches_and_snapshots(new_store, engine):
    # Each example on a fresh store of the engine; on PostgreSQL (a new schema
    # per example, a round trip per statement) half as many examples.
    @settings(max_examples=MAX_EXAMPLES if engine == "sqlite" else MAX_EXAMPLES // 2)
    @given(data=st.data())
    def topk_matches_numpy(data):
        check_topk_on_branches_and_snapshots(new_store, data)

    topk_matches_numpy()


def check_topk_on_branches_and_snapshots(new_store, data) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    dim = data.draw(st.integers(8, 32), label="dim")
    rng = np.random.default_rng(seed)

    def vec() -> np.ndarray:
        return rng.standard_normal(dim).astype(np.float32)

    db = open_store(new_store, dim=dim)
    try:
        # Per branch: handle and model {id: (g, float32 vector)}.
        handles = {"main": db}
        models: dict[str, dict[int, tuple[int, np.ndarray]]] = {"main": {}}
        # (branch, commit id, frozen model) for as_of checks.
        snapshots: list[tuple[str, int, dict]] = []
        next_id = [0]

        def record(branch: str) -> None:
            snapshots.append((branch, handles[branch].head, dict(models[branch])))

        def insert(branch: str, n: int) -> None:
            params = []
            for _ in range(n):
                i = next_id[0]
                next_id[0] += 1
                g = int(rng.integers(0, 5))
                v = vec()
                params.append([i, g, f"r{i}", v])
                models[branch][i] = (g, v)
            if n == 1:
                handles[branch].execute(INSERT, params[0])
            else:
                handles[branch].executemany(INSERT, params)
            record(branch)

        def query(branch: str, snapshot: tuple | None = None) -> None:
            op = data.draw(st.sampled_from(OPS), label="op")
            k = data.draw(st.integers(1, 10), label="k")
            kind = data.draw(st.sampled_from([None, "eq", "lt"]), label="filter")
            value = data.draw(st.integers(0, 5), label="value") if kind else None
            q = vec()
            if snapshot is None:
                handle, rows = handles[branch], models[branch]
            else:
                _, commit, rows = snapshot
                handle = handles[snapshot[0]].as_of(commit)
            assume(not has_near_tie(rows, q, op, k, kind, value))
            # Sometimes pass the query as a plain list instead of an array.
            qp = q.tolist() if data.draw(st.booleans(), label="as_list") else q
            check_topk(handle, rows, qp, op, k, kind, value)

        insert("main", data.draw(st.integers(1, 30), label="initial rows"))
        steps = data.draw(st.integers(1, 25), label="steps")
        for _ in range(steps):
            action = data.draw(
                st.sampled_from(
                    [
                        "insert",
                        "insert_many",
                        "update_vec",
                        "update_g",
                        "delete",
                        "fork",
                        "query",
                        "query",
                    ]
                ),
                label="action",
            )
            branch = data.draw(st.sampled_from(sorted(handles)), label="branch")
            h, rows = handles[branch], models[branch]
            if action == "insert":
                insert(branch, 1)
            elif action == "insert_many":
                insert(branch, data.draw(st.integers(2, 8), label="n"))
            elif action in ("update_vec", "update_g", "delete") and rows:
                i = data.draw(st.sampled_from(sorted(rows)), label="row")
                g, v = rows[i]
                if action == "update_vec":
                    v = vec()
                    h.execute("UPDATE t SET embedding = %s WHERE id = %s", [v, i])
                    rows[i] = (g, v)
                elif action == "update_g":
                    g = int(rng.integers(0, 5))
                    h.execute("UPDATE t SET g = %s WHERE id = %s", [g, i])
                    rows[i] = (g, v)
                else:
                    h.execute("DELETE FROM t WHERE id = %s", [i])
                    del rows[i]
                record(branch)
            elif action == "fork" and len(handles) < 4:
                name = f"b{len(handles)}"
                handles[name] = h.branch(name)
                models[name] = dict(rows)
            elif action == "query":
                query(branch)

        # Every branch, then a few snapshots.
        for branch in sorted(handles):
            query(branch)
        for _ in range(data.draw(st.integers(0, 3), label="snapshot queries")):
            if snapshots:
                query("", data.draw(st.sampled_from(snapshots), label="snapshot"))
    finally:
        db.close()


# --------------------------------------------------------------------------- ties


def assert_tie_order(engine: str, got: list[int], want: list[int], tied: list[int]) -> None:
    """Top-k ids with ties, per engine (docs/api.md, "Vector search").

    SQLite breaks ties by insertion order, so ``got`` is exactly ``want``.
    On PostgreSQL pgvector ranks in the server and ties come in the server's
    order: ``got`` holds as many rows as ``want``, all drawn from ``tied``
    (the rows at the same distance), and the whole tie group when ``want``
    covers it.
    """
    if engine == "sqlite":
        assert got == want
    else:
        assert len(got) == len(want) and len(set(got)) == len(got), got
        assert set(got) <= set(tied), (got, tied)
        if set(want) == set(tied):
            assert set(got) == set(tied)


@pytest.mark.parametrize("op", OPS)
def test_ties_broken_by_insertion_order(new_store, engine, op):
    db = open_store(new_store, dim=4)
    rng = np.random.default_rng(7)
    same = np.array([0.5, -1.0, 2.0, 0.25], dtype=np.float32)
    # Ids do not increase with insertion: the order must come from insertion, not id.
    ids = [40, 10, 30, 20, 50]
    # Far from the query under every op: opposite direction, large norm.
    far = [(-5 * same + rng.standard_normal(4) * 0.1).astype(np.float32) for _ in range(3)]
    db.execute(INSERT, [100, 0, "far0", far[0]])
    for i in ids:
        db.execute(INSERT, [i, 0, f"same{i}", same])
    db.executemany(INSERT, [[101 + j, 0, f"far{j}", f] for j, f in enumerate(far[1:])])
    q = same * 0.9 + 0.01
    rows = db.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 3", [q]).fetchall()
    assert_tie_order(engine, [r["id"] for r in rows], ids[:3], ids)
    rows = db.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 5", [q]).fetchall()
    assert_tie_order(engine, [r["id"] for r in rows], ids, ids)

    # On a branch: rows inherited from main come first (inserted earlier), then
    # the branch's own identical rows in insertion order.
    br = db.branch("ties")
    br.execute(INSERT, [5, 0, "same5", same])
    br.execute(INSERT, [1, 0, "same1", same])
    rows = br.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 7", [q]).fetchall()
    assert_tie_order(engine, [r["id"] for r in rows], [*ids, 5, 1], [*ids, 5, 1])
    # The tie group is complete, and the far rows come after it.
    rows = br.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 10", [q]).fetchall()
    assert set(r["id"] for r in rows[:7]) == {*ids, 5, 1}
    assert set(r["id"] for r in rows[7:]) == {100, 101, 102}
    db.close()


def test_ties_keep_insertion_order_after_update(new_store, engine):
    """An UPDATE of another column keeps a row's place (its identity) among ties."""
    db = open_store(new_store, dim=4)
    same = [1.0, 2.0, 3.0, 4.0]
    for i in (3, 1, 2):
        db.execute(INSERT, [i, 0, "s", same])
    db.execute("UPDATE t SET g = 9 WHERE id = 3")
    rows = db.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 3", [same]).fetchall()
    assert_tie_order(engine, [r["id"] for r in rows], [3, 1, 2], [3, 1, 2])
    rows = db.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 2", [same]).fetchall()
    assert_tie_order(engine, [r["id"] for r in rows], [3, 1], [3, 1, 2])
    db.close()


def test_near_duplicates_ranked_exactly(new_store):
    """Near duplicates (an agent revisiting a state) are ranked by their true distance.

    Distances of 1e-4..1e-1 around a vector of norm ~4 are far above float32's
    resolution when computed as sum((x - q)**2), but below it when computed as
    |x|^2 - 2 x.q + |q|^2, so this catches an L2 ranking that loses precision.
    """
    dim = 16
    rng = np.random.default_rng(21)
    db = open_store(new_store, dim=dim)
    q = rng.standard_normal(dim).astype(np.float32)
    model = {i: (0, rng.standard_normal(dim).astype(np.float32)) for i in range(20)}
    scales = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4]
    for j, scale in enumerate(scales):  # inserted farthest first
        model[100 + j] = (0, (q + rng.standard_normal(dim) * scale).astype(np.float32))
    model[200] = (0, q.copy())  # the exact duplicate comes last
    db.executemany(INSERT, [[i, g, "r", v] for i, (g, v) in model.items()])
    got = db.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 8", [q]).fetchall()
    assert [r["id"] for r in got] == [200, *range(106, 99, -1)]
    check_topk(db, model, q, "<->", 8)
    db.close()


# --------------------------------------------------------------------------- functions and operators


@pytest.fixture
def small(new_store):
    rng = np.random.default_rng(3)
    db = open_store(new_store, dim=16)
    vecs = rng.standard_normal((40, 16)).astype(np.float32)
    db.executemany(INSERT, [[i, i % 4, f"r{i}", v] for i, v in enumerate(vecs)])
    yield db, vecs, rng
    db.close()


def test_functions_and_operators_in_select(small):
    db, vecs, rng = small
    q = rng.standard_normal(16).astype(np.float32)
    rows = db.execute(
        "SELECT id, embedding <-> %s AS l2, embedding <=> %s AS cos, embedding <#> %s AS nip,"
        " l2_distance(embedding, %s) AS f_l2, cosine_distance(embedding, %s) AS f_cos,"
        " inner_product(embedding, %s) AS f_ip, vector_dims(embedding) AS dims,"
        " vector_norm(embedding) AS norm FROM t ORDER BY id",
        [q] * 6,
    ).fetchall()
    assert [r["id"] for r in rows] == list(range(40))
    l2, cos, nip = (ref_distances(op, vecs, q) for op in OPS)
    norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
    for r in rows:
        i = r["id"]
        assert close(r["l2"], l2[i]) and close(r["f_l2"], l2[i])
        assert close(r["cos"], cos[i]) and close(r["f_cos"], cos[i])
        assert close(r["nip"], nip[i]) and close(r["f_ip"], -nip[i])
        assert r["dims"] == 16
        assert close(r["norm"], norms[i])


def test_operators_in_where(small):
    db, vecs, rng = small
    q = vecs[5] + rng.standard_normal(16).astype(np.float32) * 0.3
    for op, fn in (("<->", "l2_distance"), ("<=>", "cosine_distance")):
        d = ref_distances(op, vecs, q)
        limit = float(np.sort(d)[7] + np.sort(d)[8]) / 2  # between the 8th and 9th nearest
        want = sorted(int(i) for i in np.nonzero(d < limit)[0])
        for expr in (f"embedding {op} %s", f"{fn}(embedding, %s)"):
            rows = db.execute(f"SELECT id FROM t WHERE {expr} < %s ORDER BY id", [q, limit]).fetchall()
            assert [r["id"] for r in rows] == want, expr
    ip = -ref_distances("<#>", vecs, q)
    rows = db.execute("SELECT id FROM t WHERE inner_product(embedding, %s) > 0 ORDER BY id", [q]).fetchall()
    assert [r["id"] for r in rows] == sorted(int(i) for i in np.nonzero(ip > 0)[0])
    rows = db.execute("SELECT id FROM t WHERE embedding <#> %s < 0 ORDER BY id", [q]).fetchall()
    assert [r["id"] for r in rows] == sorted(int(i) for i in np.nonzero(ip > 0)[0])
    # A distance threshold combined with ORDER BY ... LIMIT.
    d = ref_distances("<->", vecs, q)
    limit = float(np.sort(d)[3] + np.sort(d)[4]) / 2
    rows = db.execute(
        "SELECT id FROM t WHERE embedding <-> %s < %s ORDER BY embedding <-> %s LIMIT 10",
        [q, limit, q],
    ).fetchall()
    assert [r["id"] for r in rows] == [int(i) for i in np.argsort(d)[:4]]


def test_topk_with_other_filters_and_projection(small):
    db, vecs, rng = small
    rows = {i: (i % 4, v) for i, v in enumerate(vecs)}
    q = rng.standard_normal(16).astype(np.float32)
    for op in OPS:
        want, _ = brute_force(rows, q, op, 5, "eq", 2)
        got = db.execute(
            f"SELECT id, name, embedding FROM t WHERE g = %s ORDER BY embedding {op} %s LIMIT 5", [2, q]
        ).fetchall()
        assert [r["id"] for r in got] == want
        for r in got:
            assert r["name"] == f"r{r['id']}"
            np.testing.assert_array_equal(r["embedding"], vecs[r["id"]])
        # A filter that matches nothing, and k larger than the table.
        assert (
            db.execute(f"SELECT id FROM t WHERE g = 99 ORDER BY embedding {op} %s LIMIT 5", [q]).fetchall()
            == []
        )
        got = db.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 100", [q]).fetchall()
        assert [r["id"] for r in got] == brute_force(rows, q, op, 100)[0]


# --------------------------------------------------------------------------- errors


def _assert_usable(db, vecs) -> None:
    rows = db.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 1", [vecs[0]]).fetchall()
    assert [r["id"] for r in rows] == [0]
    db.execute(INSERT, [1000, 0, "after", vecs[1]])
    assert db.execute("SELECT count(*) AS n FROM t").fetchone()["n"] == 41


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param([1.0] * 15, id="short"),
        pytest.param([1.0] * 17, id="long"),
        pytest.param([1.0] * 15 + [float("nan")], id="nan"),
        pytest.param([1.0] * 15 + [float("inf")], id="inf"),
        pytest.param(["a", "b"], id="strings"),
        pytest.param(["a"] * 16, id="strings-right-length"),
    ],
)
@pytest.mark.parametrize("op", OPS)
def test_bad_query_vector_raises_data_error(small, bad, op):
    db, vecs, _ = small
    with pytest.raises(loomdb.DataError):
        db.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 3", [bad]).fetchall()
    with pytest.raises(loomdb.DataError):
        db.execute(f"SELECT id, embedding {op} %s AS d FROM t WHERE g = 1", [bad]).fetchall()
    if bad is not None and all(isinstance(x, float) for x in bad):
        with pytest.raises(loomdb.DataError):
            db.execute(f"SELECT id FROM t ORDER BY embedding {op} %s LIMIT 3", [np.asarray(bad)]).fetchall()
    _assert_usable(db, vecs)


@pytest.mark.parametrize("op", OPS)
def test_wrong_dimension_is_reported_even_when_no_row_is_compared(small, op):
    """The column's type decides, not the rows: an empty result is no excuse."""
    db, vecs, _ = small
    for sql in (
        f"SELECT id FROM t WHERE g = -1 ORDER BY embedding {op} %s LIMIT 3",
        f"SELECT id FROM t WHERE g = -1 ORDER BY %s {op} embedding LIMIT 3",
    ):
        with pytest.raises(loomdb.DataError, match="has 15 dimensions; the column is VECTOR\\(16\\)"):
            db.execute(sql, [[1.0] * 15]).fetchall()
    assert (
        db.execute(f"SELECT id FROM t WHERE g = -1 ORDER BY embedding {op} %s", [[1.0] * 16]).fetchall() == []
    )
    _assert_usable(db, vecs)


@pytest.mark.parametrize("column", ["name", "g"])
def test_vector_operator_on_non_vector_column(small, column):
    db, vecs, _ = small
    with pytest.raises((loomdb.ProgrammingError, loomdb.DataError)) as info:
        db.execute(f"SELECT id FROM t ORDER BY {column} <-> %s LIMIT 3", [vecs[0]]).fetchall()
    assert isinstance(info.value, loomdb.Error)
    assert "vector" in str(info.value).lower(), str(info.value)
    _assert_usable(db, vecs)


def test_bad_vector_on_write_raises_and_leaves_store_unchanged(small):
    db, vecs, _ = small
    for bad in ([1.0] * 3, [float("nan")] * 16, ["x"] * 16):
        with pytest.raises(loomdb.DataError):
            db.execute(INSERT, [500, 0, "bad", bad])
        with pytest.raises(loomdb.DataError):
            db.execute("UPDATE t SET embedding = %s WHERE id = 1", [bad])
    got = db.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 1", [vecs[1]]).fetchall()
    assert [r["id"] for r in got] == [1]
    _assert_usable(db, vecs)


# --------------------------------------------------------------------------- freshness


def test_topk_is_never_stale(new_store):
    dim = 12
    rng = np.random.default_rng(11)
    db = open_store(new_store, dim=dim)
    model = {}
    for i in range(30):
        v = rng.standard_normal(dim).astype(np.float32)
        model[i] = (i % 3, v)
    db.executemany(INSERT, [[i, g, "r", v] for i, (g, v) in model.items()])
    br = db.branch("fresh")
    bmodel = dict(model)

    def check_all() -> None:
        q = rng.standard_normal(dim).astype(np.float32)
        for h, m in ((db, model), (br, bmodel)):
            for op in OPS:
                check_topk(h, m, q, op, 5)
                check_topk(h, m, q, op, 3, "eq", 1)

    check_all()  # warm any cache on both handles
    next_id = 100
    for handle, m in ((db, model), (br, bmodel)):
        for _ in range(3):
            # Insert a row that is the nearest to a known query.
            q = rng.standard_normal(dim).astype(np.float32)
            handle.execute(INSERT, [next_id, 1, "new", q])
            m[next_id] = (1, q)
            got = handle.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 1", [q]).fetchone()
            assert got["id"] == next_id
            got = handle.execute(
                "SELECT id FROM t WHERE g = 1 ORDER BY embedding <=> %s LIMIT 1", [q]
            ).fetchone()
            assert got["id"] == next_id
            check_all()
            # Move another row onto the query: it must win at once.
            # (A near duplicate, 1e-3 away: the agent's "have I seen this step?" case.)
            victim = next(i for i in sorted(m) if i != next_id)
            near = (q + rng.standard_normal(dim) * 1e-3).astype(np.float32)
            handle.execute("UPDATE t SET embedding = %s WHERE id = %s", [near, victim])
            m[victim] = (m[victim][0], near)
            got = handle.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 2", [q]).fetchall()
            assert [r["id"] for r in got] == [next_id, victim]
            # Change its group: the filtered query follows.
            handle.execute("UPDATE t SET g = 1 WHERE id = %s", [victim])
            m[victim] = (1, m[victim][1])
            got = handle.execute(
                "SELECT id FROM t WHERE g = 1 ORDER BY embedding <-> %s LIMIT 2", [q]
            ).fetchall()
            assert [r["id"] for r in got] == [next_id, victim]
            handle.execute("UPDATE t SET g = 2 WHERE id = %s", [victim])
            m[victim] = (2, m[victim][1])
            got = handle.execute(
                "SELECT id FROM t WHERE g = 1 ORDER BY embedding <-> %s LIMIT 2", [q]
            ).fetchall()
            assert got[0]["id"] == next_id and victim not in [r["id"] for r in got]
            # Delete the winner: it disappears at once.
            handle.execute("DELETE FROM t WHERE id = %s", [next_id])
            del m[next_id]
            got = handle.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 1", [q]).fetchone()
            assert got["id"] == victim
            check_all()
            next_id += 1
    check_all()
    db.close()


def test_topk_fresh_inside_and_after_transaction(new_store):
    dim = 8
    rng = np.random.default_rng(5)
    db = open_store(new_store, dim=dim)
    model = {i: (i % 2, rng.standard_normal(dim).astype(np.float32)) for i in range(20)}
    db.executemany(INSERT, [[i, g, "r", v] for i, (g, v) in model.items()])
    br = db.branch("txn")
    bmodel = dict(model)
    q = rng.standard_normal(dim).astype(np.float32)
    for h, m in ((db, model), (br, bmodel)):
        for op in OPS:
            check_topk(h, m, q, op, 4)  # warm

    for h, m, base in ((db, model, 100), (br, bmodel, 200)):
        with h.transaction(message="vectors"):
            h.execute(INSERT, [base, 0, "t", q])
            m[base] = (0, q)
            got = h.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 1", [q]).fetchone()
            assert got["id"] == base  # reads its own write inside the block
            for op in OPS:
                check_topk(h, m, q, op, 4)
            h.execute("DELETE FROM t WHERE id = %s", [base])
            del m[base]
            h.execute("UPDATE t SET embedding = %s WHERE id = 3", [q])
            m[3] = (m[3][0], q)
            for op in OPS:
                check_topk(h, m, q, op, 4)
                check_topk(h, m, q, op, 4, "eq", 1)
        for op in OPS:  # after the commit
            check_topk(h, m, q, op, 4)
            check_topk(h, m, q, op, 4, "lt", 1)

    # A rolled-back block leaves no trace in the answers.
    q2 = rng.standard_normal(dim).astype(np.float32)
    with pytest.raises(RuntimeError), db.transaction():
        db.execute(INSERT, [300, 0, "rolled back", q2])
        assert db.execute("SELECT id FROM t ORDER BY embedding <-> %s LIMIT 1", [q2]).fetchone()["id"] == 300
        raise RuntimeError("roll back")
    for op in OPS:
        for x in (q, q2):
            check_topk(db, model, x, op, 4)
            check_topk(br, bmodel, x, op, 4)
    db.close()


def test_as_of_snapshot_unaffected_by_later_writes(new_store):
    dim = 8
    rng = np.random.default_rng(9)
    db = open_store(new_store, dim=dim)
    model = {i: (0, rng.standard_normal(dim).astype(np.float32)) for i in range(15)}
    db.executemany(INSERT, [[i, g, "r", v] for i, (g, v) in model.items()])
    commit = db.head
    snap = db.as_of(commit)
    frozen = dict(model)
    q = rng.standard_normal(dim).astype(np.float32)
    check_topk(snap, frozen, q, "<->", 5)
    db.execute(INSERT, [50, 0, "new", q])
    db.execute("DELETE FROM t WHERE id = 0")
    near = (q + rng.standard_normal(dim) * 1e-3).astype(np.float32)
    db.execute("UPDATE t SET embedding = %s WHERE id = 1", [near])
    model[50] = (0, q)
    del model[0]
    model[1] = (0, near)
    for op in OPS:
        check_topk(snap, frozen, q, op, 5)
        check_topk(db.as_of(commit), frozen, q, op, 5)
        check_topk(db, model, q, op, 5)
    with pytest.raises(loomdb.ReadOnlyError):
        snap.execute(INSERT, [51, 0, "x", q])
    db.close()
