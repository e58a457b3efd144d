"""Export: Cursor.numpy() / arrow() / df() and loomdb.torch.dataset (docs/api.md, "Vector search and export")."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import uuid
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

import loomdb
import loomdb.torch
from loomdb.cursor import Cursor
from loomdb.types import VECTOR_ANY, ColumnType, to_storage

UTC = dt.UTC

COLUMNS = [
    ("name", "TEXT"),
    ("n", "INT"),
    ("big", "BIGINT"),
    ("x", "DOUBLE PRECISION"),
    ("price", "NUMERIC(10,2)"),
    ("ok", "BOOLEAN"),
    ("meta", "JSONB"),
    ("ts", "TIMESTAMPTZ"),
    ("d", "DATE"),
    ("blob", "BYTEA"),
    ("u", "UUID"),
    ("emb", "VECTOR(4)"),
]
NAMES = [name for name, _ in COLUMNS]
SELECT_ALL = "SELECT id, " + ", ".join(NAMES) + " FROM t ORDER BY id"


def sample_rows():
    """Rows for table t: id, then one value per COLUMNS entry; rows 3 and 6 are all NULL."""
    out = []
    for i in range(1, 8):
        if i in (3, 6):
            out.append([i] + [None] * len(COLUMNS))
            continue
        out.append(
            [
                i,
                f"row {i} é",
                i * 7 - 20,
                2**40 + i if i != 5 else -(2**50),
                i / 3,
                Decimal(f"{i}.{i:02d}"),
                i % 2 == 0,
                {"step": i, "tags": ["a", "b"], "nested": {"ok": True, "v": None}, "pi": 3.25},
                dt.datetime(2024, 1, i, 12, 30, 15, 123456 + i, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                dt.date(2023, 12, i),
                bytes([i, 0, 255, i]),
                uuid.UUID(int=i * 12345678901234567),
                [0.1 * i, -1.5, 1e-7, 3.0 + i],
            ]
        )
    return out


@pytest.fixture
def db(fresh_db):
    """fresh_db with table t holding every column type, including all-NULL rows."""
    columns = ", ".join(f"{name} {sql}" for name, sql in COLUMNS)
    fresh_db.execute(f"CREATE TABLE t (id INT PRIMARY KEY, {columns})")
    marks = ", ".join(["%s"] * (len(COLUMNS) + 1))
    fresh_db.executemany(f"INSERT INTO t (id, {', '.join(NAMES)}) VALUES ({marks})", sample_rows())
    return fresh_db


def fetched(db, sql=SELECT_ALL, params=None):
    return db.execute(sql, params).fetchall()


def naive_utc(value):
    return value.astimezone(UTC).replace(tzinfo=None)


# -- numpy -----------------------------------------------------------------------------------


def test_numpy_matches_fetched_rows(db):
    rows = fetched(db)
    out = db.execute(SELECT_ALL).numpy()
    assert list(out) == ["id", *NAMES]
    n = len(rows)
    assert all(len(array) == n for array in out.values())

    emb = out["emb"]
    assert emb.dtype == np.float32 and emb.shape == (n, 4) and emb.flags.c_contiguous
    for i, row in enumerate(rows):
        if row["emb"] is None:
            assert np.isnan(emb[i]).all()
        else:
            assert np.array_equal(emb[i], row["emb"])  # exact float32 bits

    assert out["id"].dtype == np.int64
    assert out["id"].tolist() == [row["id"] for row in rows]
    for name in ("n", "big", "x"):  # numeric columns with NULLs: float64, NaN for NULL
        assert out[name].dtype == np.float64
        for value, row in zip(out[name], rows, strict=True):
            assert math.isnan(value) if row[name] is None else value == row[name]
    assert out["ok"].dtype == object  # NULLs present
    assert out["ok"].tolist() == [row["ok"] for row in rows]

    ts = out["ts"]
    assert ts.dtype == np.dtype("datetime64[us]")
    for value, row in zip(ts, rows, strict=True):
        if row["ts"] is None:
            assert np.isnat(value)
        else:
            assert value == np.datetime64(naive_utc(row["ts"]), "us")

    for name in ("name", "price", "meta", "d", "blob", "u"):
        assert out[name].dtype == object and out[name].ndim == 1
        assert out[name].tolist() == [row[name] for row in rows]
    assert isinstance(out["meta"][0], dict) and isinstance(out["price"][0], Decimal)


def test_numpy_without_nulls_uses_native_dtypes(db):
    sql = "SELECT n, big, x, ok, ts, emb FROM t WHERE emb IS NOT NULL ORDER BY id"
    rows = fetched(db, sql)
    out = db.execute(sql).numpy()
    assert out["n"].dtype == np.int64 and out["n"].tolist() == [r["n"] for r in rows]
    assert out["big"].dtype == np.int64 and out["big"].tolist() == [r["big"] for r in rows]
    assert out["x"].dtype == np.float64
    assert out["ok"].dtype == np.bool_ and out["ok"].tolist() == [r["ok"] for r in rows]
    assert not np.isnat(out["ts"]).any()
    assert np.array_equal(out["emb"], np.stack([r["emb"] for r in rows]))


def test_numpy_int_with_nulls_beyond_float_precision_stays_exact():
    cur = Cursor(iter([(2**60 + 1,), (None,)]), ["k"], [ColumnType.parse("BIGINT")])
    out = cur.numpy()["k"]
    assert out.dtype == object and out.tolist() == [2**60 + 1, None]


def test_numpy_expressions_are_typed_from_values(db):
    sql = "SELECT id + 1 AS next, x * 2 AS dbl, 'lit' AS l, meta->'tags' AS tags FROM t ORDER BY id"
    rows = fetched(db, sql)
    out = db.execute(sql).numpy()
    assert out["next"].dtype == np.int64 and out["next"].tolist() == [r["next"] for r in rows]
    assert out["dbl"].dtype == np.float64
    assert out["l"].tolist() == ["lit"] * len(rows)
    assert out["tags"].dtype == object and out["tags"].tolist() == [r["tags"] for r in rows]


def test_numpy_duplicate_column_names_are_kept(db):
    # ORDER BY t.id, not ORDER BY id: with two different output columns named
    # id, PostgreSQL rightly rejects the bare name as ambiguous.
    out = db.execute("SELECT id, id, n AS id FROM t ORDER BY t.id").numpy()
    assert list(out) == ["id", "id_1", "id_2"]
    assert out["id"].tolist() == out["id_1"].tolist()


# -- arrow -----------------------------------------------------------------------------------


def test_arrow_matches_fetched_rows(db):
    rows = fetched(db)
    table = db.execute(SELECT_ALL).arrow()
    assert isinstance(table, pa.Table)
    assert table.column_names == ["id", *NAMES]
    assert table.num_rows == len(rows)
    schema = table.schema
    assert schema.field("emb").type == pa.list_(pa.float32(), 4)
    assert schema.field("id").type == pa.int64()
    assert schema.field("n").type == pa.int64()
    assert schema.field("big").type == pa.int64()
    assert schema.field("x").type == pa.float64()
    assert schema.field("ok").type == pa.bool_()
    assert schema.field("name").type == pa.string()
    assert schema.field("meta").type == pa.string()
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("d").type == pa.date32()
    assert schema.field("blob").type == pa.binary()
    assert schema.field("u").type == pa.string()
    assert schema.field("price").type in (pa.decimal128(10, 2), pa.string())

    data = table.to_pydict()
    for i, row in enumerate(rows):
        for name in ("id", "n", "big", "x", "ok", "name", "d", "blob"):
            assert data[name][i] == row[name], name
        if row["emb"] is None:
            assert all(data[k][i] is None for k in NAMES)
            continue
        assert np.array_equal(np.asarray(data["emb"][i], dtype=np.float32), row["emb"])
        assert json.loads(data["meta"][i]) == row["meta"]
        assert data["ts"][i] == row["ts"]
        assert Decimal(str(data["price"][i])) == row["price"]
        assert uuid.UUID(data["u"][i]) == row["u"]

    # The vector column is one contiguous float32 buffer, NULL rows marked null.
    emb = table.column("emb").combine_chunks()
    assert emb.null_count == sum(row["emb"] is None for row in rows)
    flat = emb.values.to_numpy().reshape(-1, 4)
    for i, row in enumerate(rows):
        if row["emb"] is not None:
            assert np.array_equal(flat[i], row["emb"])


def test_arrow_json_is_compact_text(db):
    """docs: JSON/JSONB -> string holding compact JSON text (the same text on both engines)."""
    rows = fetched(db)
    meta = db.execute(SELECT_ALL).arrow().column("meta").to_pylist()
    for text, row in zip(meta, rows, strict=True):
        if row["meta"] is None:
            assert text is None
            continue
        assert json.loads(text) == row["meta"]
        assert text == json.dumps(json.loads(text), separators=(",", ":")), text  # compact


def test_arrow_with_declared_types():
    types = [ColumnType.parse(t) for t in ("INT", "TEXT", "NUMERIC(10,2)", "NUMERIC", "VECTOR(2)", "SERIAL")]
    values = [(5, "a", Decimal("1.25"), Decimal("1e-30"), [1, 2], 1), (None, None, None, None, None, 2)]
    raw = [
        tuple(None if v is None else to_storage(v, t, "c") for v, t in zip(row, types, strict=True))
        for row in values
    ]
    table = Cursor(iter(raw), ["i", "s", "p", "q", "v", "k"], types).arrow()
    assert table.schema.types == [
        pa.int64(),
        pa.string(),
        pa.decimal128(10, 2),
        pa.string(),
        pa.list_(pa.float32(), 2),
        pa.int64(),
    ]
    assert table.to_pydict() == {
        "i": [5, None],
        "s": ["a", None],
        "p": [Decimal("1.25"), None],
        "q": ["1E-30", None],
        "v": [[1.0, 2.0], None],
        "k": [1, 2],
    }


def test_arrow_numeric_with_more_digits_than_declared_keeps_the_value():
    ctype = ColumnType.parse("NUMERIC(6,2)")
    # to_storage rounds to the declared scale now; a store written before kept every digit.
    cur = Cursor(iter([("3.14159",)]), ["p"], [ctype])
    assert cur.arrow().column("p").to_pylist() == [Decimal("3.14159")]


def test_arrow_expressions_are_inferred(db):
    table = db.execute("SELECT id * 10 AS big, 'x' AS s, x / 2 AS half FROM t ORDER BY id").arrow()
    assert table.schema.field("big").type == pa.int64()
    assert table.schema.field("s").type == pa.string()
    assert table.schema.field("half").type == pa.float64()


# -- pandas ----------------------------------------------------------------------------------


def test_df_matches_fetched_rows(db):
    rows = fetched(db)
    frame = db.execute(SELECT_ALL).df()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["id", *NAMES]
    assert frame["ts"].dtype == pd.DatetimeTZDtype("us", "UTC")
    assert frame["x"].dtype == np.float64
    assert frame["id"].dtype == np.int64
    for i, (record, row) in enumerate(zip(frame.to_dict("records"), rows, strict=True)):
        for name in ["id", *NAMES]:
            got, want = record[name], row[name]
            if want is None:
                assert got is None or got is pd.NA or pd.isna(got), (i, name, got)
            elif name == "emb":
                assert got.dtype == np.float32 and np.array_equal(got, want)
            else:
                assert got == want, (i, name, got, want)


def test_df_nullable_ints_stay_exact():
    cur = Cursor(
        iter([(2**60 + 1, True), (None, None)]),
        ["k", "b"],
        [ColumnType.parse("BIGINT"), ColumnType.parse("BOOLEAN")],
    )
    frame = cur.df()
    assert str(frame["k"].dtype) == "Int64" and frame["k"][0] == 2**60 + 1 and frame["k"][1] is pd.NA
    assert str(frame["b"].dtype) == "boolean"


# -- shared behaviour --------------------------------------------------------------------------


def test_empty_result_keeps_shapes_and_types(db):
    sql = "SELECT id, x, ok, ts, emb, meta FROM t WHERE id < 0"
    out = db.execute(sql).numpy()
    assert out["emb"].shape == (0, 4) and out["emb"].dtype == np.float32
    assert out["x"].dtype == np.float64 and out["x"].shape == (0,)
    assert out["ok"].dtype == np.bool_
    assert out["ts"].dtype == np.dtype("datetime64[us]")
    assert out["meta"].dtype == object and out["id"].shape == (0,)

    table = db.execute(sql).arrow()
    assert table.num_rows == 0
    assert table.schema.field("emb").type == pa.list_(pa.float32(), 4)
    assert table.schema.field("x").type == pa.float64()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("meta").type == pa.string()

    frame = db.execute(sql).df()
    assert len(frame) == 0 and list(frame.columns) == ["id", "x", "ok", "ts", "emb", "meta"]


def test_empty_result_with_declared_types():
    types = [*(ColumnType.parse(t) for t in ("INT", "TEXT", "VECTOR(8)")), VECTOR_ANY]
    out = Cursor(iter([]), ["i", "s", "v", "w"], types).numpy()
    assert out["i"].dtype == np.int64 and out["s"].dtype == object
    assert out["v"].shape == (0, 8) and out["w"].shape == (0, 0)
    table = Cursor(iter([]), ["i", "s", "v", "w"], types).arrow()
    assert table.schema.types[:3] == [pa.int64(), pa.string(), pa.list_(pa.float32(), 8)]


def test_cursor_without_result_set_exports_nothing(db):
    cur = db.execute("UPDATE t SET n = 1 WHERE id = 1")
    assert cur.numpy() == {}
    assert cur.arrow().num_columns == 0
    assert cur.df().empty


def test_export_consumes_only_the_rest(db):
    rows = fetched(db)
    for method in ("numpy", "arrow", "df"):
        cur = db.execute(SELECT_ALL)
        assert cur.fetchone()["id"] == rows[0]["id"]
        assert cur.fetchone()["id"] == rows[1]["id"]
        out = getattr(cur, method)()
        ids = out["id"].tolist() if method != "arrow" else out.column("id").to_pylist()
        assert ids == [row["id"] for row in rows[2:]]
        assert cur.fetchone() is None
        assert len(getattr(cur, method)()["id"]) == 0  # nothing left


def test_export_on_branch_sees_the_branchs_rows(db):
    feature = db.branch("feature")
    feature.execute("INSERT INTO t (id, emb) VALUES (100, %s)", [[9, 8, 7, 6]])
    feature.execute("DELETE FROM t WHERE id = 1")
    out = feature.execute("SELECT id, emb FROM t ORDER BY id").numpy()
    assert out["id"].tolist() == [2, 3, 4, 5, 6, 7, 100]
    assert out["emb"][-1].tolist() == [9, 8, 7, 6]
    assert db.execute("SELECT id FROM t ORDER BY id").arrow().column("id").to_pylist() == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]
    assert feature.execute("SELECT id FROM t ORDER BY id").df()["id"].tolist() == [2, 3, 4, 5, 6, 7, 100]


def test_large_vector_export_is_exact(fresh_db):
    fresh_db.execute("CREATE TABLE v (id INT PRIMARY KEY, e VECTOR(64))")
    data = np.random.default_rng(7).standard_normal((500, 64)).astype(np.float32)
    fresh_db.executemany("INSERT INTO v (id, e) VALUES (%s, %s)", [(i, data[i]) for i in range(len(data))])
    sql = "SELECT e FROM v ORDER BY id"
    assert np.array_equal(fresh_db.execute(sql).numpy()["e"], data)
    column = fresh_db.execute(sql).arrow().column("e").combine_chunks()
    assert np.array_equal(column.values.to_numpy().reshape(-1, 64), data)


@pytest.mark.parametrize(("module", "method"), [("pyarrow", "arrow"), ("pandas", "df")])
def test_missing_dependency_is_an_interface_error(db, monkeypatch, module, method):
    monkeypatch.setitem(sys.modules, module, None)  # makes "import module" raise ImportError
    cur = db.execute(SELECT_ALL)
    with pytest.raises(loomdb.InterfaceError, match=r"pip install loomdb\[export\]"):
        getattr(cur, method)()
    assert cur.fetchone()["id"] == 1  # nothing was consumed


# -- torch -----------------------------------------------------------------------------------


def assert_same_as_row(item, row, device="cpu"):
    names = row.keys()
    assert list(item) == names
    for name in names:
        got, want = item[name], row[name]
        if want is None:
            assert got is None
        elif name == "emb":
            assert got.dtype == torch.float32 and got.device.type == device
            assert torch.equal(got.cpu(), torch.from_numpy(want))
        elif name in ("id", "n", "big"):
            assert got.dtype == torch.int64 and got.shape == () and got.device.type == device
            assert torch.equal(got.cpu(), torch.tensor(want, dtype=torch.int64))
        elif name == "x":
            assert got.dtype == torch.float64 and got.item() == want
        elif name == "ok":
            assert got.dtype == torch.bool and got.item() is want
        else:
            assert not isinstance(got, torch.Tensor) and got == want, name


def test_torch_dataset_yields_the_fetched_rows(db):
    rows = fetched(db)
    ds = loomdb.torch.dataset(db, SELECT_ALL)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    items = list(ds)
    assert len(items) == len(rows)
    for item, row in zip(items, rows, strict=True):
        assert_same_as_row(item, row)


def test_torch_dataset_with_dataloader(db):
    rows = fetched(db)
    loader = torch.utils.data.DataLoader(loomdb.torch.dataset(db, SELECT_ALL), batch_size=None, num_workers=0)
    items = list(loader)
    assert len(items) == len(rows)
    for item, row in zip(items, rows, strict=True):
        assert_same_as_row(item, row)


def test_torch_dataset_batches_vectors(db):
    sql = "SELECT id, emb FROM t WHERE emb IS NOT NULL ORDER BY id"
    rows = fetched(db, sql)
    batch = next(iter(torch.utils.data.DataLoader(loomdb.torch.dataset(db, sql), batch_size=len(rows))))
    assert batch["emb"].shape == (len(rows), 4)
    assert torch.equal(batch["emb"], torch.from_numpy(np.stack([r["emb"] for r in rows])))
    assert batch["id"].tolist() == [r["id"] for r in rows]


def test_torch_dataset_reruns_the_query_and_takes_params(db):
    ds = loomdb.torch.dataset(db, "SELECT id FROM t WHERE id >= %s ORDER BY id", [6])
    assert [item["id"].item() for item in ds] == [6, 7]
    db.execute("INSERT INTO t (id) VALUES (8)")
    assert [item["id"].item() for item in ds] == [6, 7, 8]


def test_torch_dataset_on_branch_and_snapshot(db):
    snapshot = db.as_of(db.head)
    feature = db.branch("feature")
    feature.execute("INSERT INTO t (id) VALUES (50)")
    db.execute("DELETE FROM t WHERE id = 7")
    sql = "SELECT id FROM t ORDER BY id"
    assert [i["id"].item() for i in loomdb.torch.dataset(feature, sql)] == [1, 2, 3, 4, 5, 6, 7, 50]
    assert [i["id"].item() for i in loomdb.torch.dataset(snapshot, sql)] == [1, 2, 3, 4, 5, 6, 7]
    assert [i["id"].item() for i in loomdb.torch.dataset(db, sql)] == [1, 2, 3, 4, 5, 6]


def test_torch_dataset_shards_rows_across_workers(db, monkeypatch):
    ds = loomdb.torch.dataset(db, "SELECT id FROM t ORDER BY id")
    seen = []
    for worker in range(3):
        info = SimpleNamespace(num_workers=3, id=worker)
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        seen.append([item["id"].item() for item in ds])
    assert seen == [[1, 4, 7], [2, 5], [3, 6]]


def test_torch_dataset_with_worker_processes(db):
    sql = "SELECT id, emb FROM t ORDER BY id"
    loader = torch.utils.data.DataLoader(loomdb.torch.dataset(db, sql), batch_size=None, num_workers=2)
    ids = sorted(item["id"].item() for item in loader)
    assert ids == [1, 2, 3, 4, 5, 6, 7]


def test_torch_missing_is_an_interface_error(db, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(loomdb.InterfaceError, match=r"pip install loomdb\[torch\]"):
        loomdb.torch.dataset(db, SELECT_ALL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_torch_dataset_on_cuda(db):
    rows = fetched(db)
    items = list(loomdb.torch.dataset(db, SELECT_ALL, device="cuda"))
    for item, row in zip(items, rows, strict=True):
        assert_same_as_row(item, row, device="cuda")


def test_a_timestamp_without_time_zone_exports_naive(fresh_db):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("pandas")
    fresh_db.execute("CREATE TABLE s (id INT PRIMARY KEY, at TIMESTAMP)")
    fresh_db.execute("INSERT INTO s VALUES (1, '2024-03-01 12:00:00.5'), (2, NULL)")
    sql = "SELECT at FROM s ORDER BY id"
    table = fresh_db.execute(sql).arrow()
    assert table.schema.field("at").type == pa.timestamp("us")
    assert table.to_pydict()["at"] == [dt.datetime(2024, 3, 1, 12, 0, 0, 500000), None]
    frame = fresh_db.execute(sql).df()
    assert frame["at"].dtype == np.dtype("datetime64[us]")
    assert frame["at"][0].to_pydatetime() == dt.datetime(2024, 3, 1, 12, 0, 0, 500000)
