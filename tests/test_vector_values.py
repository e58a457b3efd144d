"""pgvector's values on both engines: distances to the bit, NULLs, text, casts,
comparisons, arithmetic and aggregates.

The distances are checked three ways: the NumPy implementation against a
plain loop written from the order pgvector's compiled loops add in
(``backend/pgvector_math.py``); loomdb on SQLite against the test server's
pgvector (raw psycopg), bit for bit, for small and large dimensions; and the
same statements on both engines. The pgvector build the tests run against is
x86-64 with AVX and FMA; another build may round the last bit of a sum
differently.
"""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest

import loomdb
from loomdb.backend import pgvector_math

F32 = np.float32


# --------------------------------------------------------------------------- the model


def _loop_sum(xs, ys, fused_main: bool, fused_tail: bool) -> float:
    """pgvector's float32 sum of x*y (of x when ys is None), one element at a time."""

    def add(acc, i, fused):
        if ys is None:
            return F32(acc + xs[i])
        if fused:
            return F32(float(acc) + float(xs[i]) * float(ys[i]))
        return F32(acc + F32(xs[i] * ys[i]))

    n = len(xs)
    main = n - n % 8
    lanes = [F32(0)] * 8
    for start in range(0, main, 8):
        lanes = [add(lanes[k], start + k, fused_main) for k in range(8)]
    fold = [F32(lanes[k] + lanes[k + 4]) for k in range(4)]
    done = main
    if n - main >= 4:
        fold = [add(fold[k], main + k, True) for k in range(4)]
        done += 4
    acc = F32(F32(fold[0] + fold[2]) + F32(fold[1] + fold[3])) if done else F32(0)
    for i in range(done, n):
        acc = add(acc, i, fused_tail)
    return float(acc)


def _model(op: str, x: np.ndarray, y: np.ndarray) -> float:
    if op == "l2":
        d = x - y
        return math.sqrt(_loop_sum(d, d, False, False))
    if op == "ip":
        return -_loop_sum(x, y, False, False)
    if op == "l1":
        return _loop_sum(np.abs(x - y), None, False, False)
    dot, na, nb = (_loop_sum(a, b, True, True) for a, b in ((x, y), (x, x), (y, y)))
    if na * nb == 0:
        return math.nan
    return 1.0 - max(-1.0, min(1.0, dot / math.sqrt(na * nb)))


DIMS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 31, 100)


@pytest.mark.parametrize("op", pgvector_math.OPS)
def test_numpy_and_plain_python_follow_the_loop_model(op):
    rng = np.random.default_rng(5)
    for dim in DIMS:
        rows = rng.standard_normal((6, dim)).astype(F32)
        query = rng.standard_normal(dim).astype(F32)
        got = pgvector_math.distances(op, rows, query)
        for row, value in zip(rows, got, strict=True):
            assert value == _model(op, row, query), (op, dim)
            if dim < pgvector_math.SMALL:
                assert pgvector_math.small(op, row.tolist(), query.tolist()) == value


# --------------------------------------------------------------------------- against pgvector


def _text(v: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


@pytest.mark.parametrize("dim", [3, 6, 8, 13, 100, 1536])
def test_distances_are_pgvectors_to_the_bit(dim, sqlite_path, pg_url):
    rng = np.random.default_rng(dim)
    rows = rng.standard_normal((8, dim)).astype(F32)
    rows[0] = np.round(rows[0], 1)  # decimal-looking values, like 0.1, that float32 cannot hold
    query = rng.standard_normal(dim).astype(F32)
    db = loomdb.connect(sqlite_path)
    db.execute(f"CREATE TABLE t (id INT PRIMARY KEY, e VECTOR({dim}))")
    db.executemany("INSERT INTO t (id, e) VALUES (%s, %s)", [[i, v] for i, v in enumerate(rows)])
    sql = (
        "SELECT id, e <-> %s, e <#> %s, e <=> %s, e <+> %s, inner_product(e, %s), vector_norm(e)"
        " FROM t ORDER BY id"
    )
    ours = [tuple(r) for r in db.execute(sql, [query] * 5).fetchall()]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        raw = []
        for i, v in enumerate(rows):
            a, q = _text(v), _text(query)
            row = conn.execute(
                "SELECT %s::vector <-> %s::vector, %s::vector <#> %s::vector, %s::vector <=> %s::vector,"
                " %s::vector <+> %s::vector, inner_product(%s::vector, %s::vector), vector_norm(%s::vector)",
                [a, q] * 5 + [a],
            ).fetchone()
            raw.append((i, *row))
    for mine, theirs in zip(ours, raw, strict=True):
        assert mine[:6] == theirs[:6]
        # vector_norm sums in double: its lanes beyond 8 dimensions may differ in the last bit.
        assert mine[6] == pytest.approx(theirs[6], rel=1e-15, abs=0)


# --------------------------------------------------------------------------- both engines


@pytest.fixture
def vdb(store_path):
    db = loomdb.connect(store_path)
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, e VECTOR(3))")
    db.executemany(
        "INSERT INTO t (id, e) VALUES (%s, %s)",
        [[1, [1, 0, 0]], [2, [0, 0, 0]], [3, None], [4, [0.5, 0.5, 0]], [5, [0.1, -0.2, 0.3]]],
    )
    yield db
    db.close()


def test_a_null_side_gives_null(vdb):
    rows = vdb.execute(
        "SELECT e <-> %s, l2_distance(e, NULL), vector_dims(e), vector_norm(e), e::text FROM t WHERE id = 3",
        [[1, 2, 3]],
    ).fetchall()
    assert list(rows[0]) == [None, None, None, None, None]


def test_distances_with_parameters(vdb):
    q = np.array([0.1, 0.2, 0.3], dtype=F32)
    rows = vdb.execute(
        "SELECT id, e <-> %s, e <#> %s, e <+> %s FROM t WHERE id IN (1, 4) ORDER BY id", [q] * 3
    )
    assert [tuple(r) for r in rows.fetchall()] == [
        (1, 0.9695359395149669, -0.10000000149011612, 1.4000000953674316),
        (4, 0.5830951925511637, -0.15000000596046448, 1.0),
    ]


def test_zero_vector_cosine(vdb, engine):
    sql = "SELECT e <=> %s FROM t WHERE id = 2"
    if engine == "sqlite":
        with pytest.raises(loomdb.NotSupportedError, match="cosine distance of a zero vector"):
            vdb.execute(sql, [[1, 0, 0]]).fetchall()
    else:
        assert math.isnan(vdb.execute(sql, [[1, 0, 0]]).fetchall()[0][0])


@pytest.mark.parametrize("k", [2, 5])
def test_top_k_sorts_nan_after_numbers_and_null_last(vdb, k):
    # The zero vector's NaN sorts after every distance, the NULL vector after it.
    sql = f"SELECT id FROM t ORDER BY e <=> %s LIMIT {k}"
    assert [r[0] for r in vdb.execute(sql, [[1, 0.1, 0]]).fetchall()] == [1, 4, 5, 2, 3][:k]
    literal = f"SELECT id FROM t ORDER BY e <=> '[1,0.1,0]' LIMIT {k}"
    assert [r[0] for r in vdb.execute(literal).fetchall()] == [1, 4, 5, 2, 3][:k]


def test_top_k_returns_the_exact_distances(vdb):
    q = [0.3, -0.7, 0.2]
    top = vdb.execute("SELECT id, e <=> %s FROM t WHERE id <> 2 ORDER BY e <=> %s LIMIT 3", [q, q]).fetchall()
    every = dict(vdb.execute("SELECT id, e <=> %s FROM t WHERE id <> 2 AND e IS NOT NULL", [q]).fetchall())
    assert [tuple(r) for r in top] == sorted(every.items(), key=lambda kv: kv[1])[:3]


def test_vector_text_and_casts(vdb):
    assert vdb.execute("SELECT e::text FROM t WHERE id = 5").fetchall()[0][0] == "[0.1,-0.2,0.3]"
    text = vdb.execute("SELECT '[0.00001,1e20,123456789,-0.0,100000,1e7]'::vector::text").fetchall()[0][0]
    assert text == "[1e-05,1e+20,1.2345679e+08,-0,100000,1e+07]"
    with pytest.raises(loomdb.DataError, match="expected 3 dimensions, not 2") as info:
        vdb.execute("SELECT '[1,2]'::vector(3)").fetchall()
    assert info.value.sqlstate == "22000"


def test_comparisons_and_order(vdb):
    assert vdb.execute("SELECT id FROM t WHERE e = %s", [[0.5, 0.5, 0]]).fetchall()[0][0] == 4
    assert [r[0] for r in vdb.execute("SELECT id FROM t WHERE e IN ('[1,0,0]', '[0,0,0]') ORDER BY id")] == [
        1,
        2,
    ]
    ordered = vdb.execute("SELECT id FROM t WHERE e IS NOT NULL ORDER BY e, id").fetchall()
    assert [r[0] for r in ordered] == [2, 5, 4, 1]
    row = vdb.execute("SELECT '[1,2]'::vector < '[1,2,3]'::vector, '[-0.0,1]'::vector = '[0,1]'::vector")
    assert list(row.fetchall()[0]) == [True, True]


def test_arithmetic_and_aggregates(vdb):
    row = vdb.execute("SELECT e + %s, e - '[1,1,1]', e * e FROM t WHERE id = 4", [[1, 1, 1]]).fetchall()[0]
    assert [list(v) for v in row] == [[1.5, 1.5, 1.0], [-0.5, -0.5, -1.0], [0.25, 0.25, 0.0]]
    with pytest.raises(loomdb.DataError, match="different vector dimensions 3 and 2"):
        vdb.execute("SELECT e + '[1,1]' FROM t").fetchall()
    avg, total = vdb.execute("SELECT avg(e), sum(e) FROM t").fetchall()[0]
    assert avg.dtype == F32 and total.dtype == F32
    stored = np.array([[1, 0, 0], [0, 0, 0], [0.5, 0.5, 0], [0.1, -0.2, 0.3]], dtype=F32)
    # avg sums in double and divides, then rounds to float32; sum adds in float32, row by row.
    assert list(avg) == list((stored.astype(np.float64).sum(axis=0) / 4).astype(F32))
    assert list(total) == list(((stored[0] + stored[1]) + stored[2]) + stored[3])
    assert vdb.execute("SELECT avg(e) FROM t WHERE id > 100").fetchall()[0][0] is None


def test_vector_functions(vdb):
    row = vdb.execute(
        "SELECT l2_normalize(e), subvector(e, 2, 2), vector_dims(e), vector_norm(e) FROM t WHERE id = 4"
    ).fetchall()[0]
    assert list(row[0]) == [np.float32(0.70710677), np.float32(0.70710677), 0.0]
    assert list(row[1]) == [0.5, 0.0]
    assert tuple(row)[2:] == (3, 0.7071067811865476)
    with pytest.raises(loomdb.ProgrammingError) as info:
        vdb.execute("SELECT l2_norm(e) FROM t").fetchall()
    assert info.value.sqlstate == "42725"
    with pytest.raises(loomdb.ProgrammingError) as info:
        vdb.execute("SELECT max(e) FROM t").fetchall()
    assert info.value.sqlstate == "42883"


def test_list_parameters_bind_as_vectors_in_pgvectors_functions(vdb):
    row = vdb.execute(
        "SELECT l1_distance(e, %s), cosine_distance(e, %s), l2_normalize(%s), subvector(e, %s, 2)"
        " FROM t WHERE id = 4",
        [[1, 2, 3], [1, 2, 3], [3, 4, 0], 2],
    ).fetchall()[0]
    assert row[0] == 5.0 and row[1] == 0.43305329048615915
    assert list(row[2]) == [np.float32(0.6), np.float32(0.8), 0.0] and list(row[3]) == [0.5, 0.0]


def test_top_k_with_a_literal_query_vector(vdb):
    # Answered from the in-memory copy on SQLite, like a parameter; same rows and values.
    literal = vdb.execute(
        "SELECT id, e <-> '[0.1,0.2,0.3]' AS d FROM t ORDER BY e <-> '[0.1,0.2,0.3]' LIMIT 3"
    ).fetchall()
    param = vdb.execute(
        "SELECT id, e <-> %s AS d FROM t ORDER BY e <-> %s LIMIT 3", [[0.1, 0.2, 0.3]] * 2
    ).fetchall()
    assert [tuple(r) for r in literal] == [tuple(r) for r in param]
    assert [r[0] for r in literal] == [2, 5, 4]
    with pytest.raises(loomdb.DataError) as info:
        vdb.execute("SELECT id FROM t ORDER BY e <=> '[1,0.1]'::vector LIMIT 5").fetchall()
    assert info.value.sqlstate == "22000"
