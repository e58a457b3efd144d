"""LoomStore, LangGraph's BaseStore on loomdb: the behaviour an agent's long-term memory relies on.

Every test runs on both engines (``store_path`` is a SQLite file or a fresh
PostgreSQL schema). Semantic search is checked against NumPy's cosine
similarity; TTL expiry is simulated by moving ``expires_at`` into the past
with SQL, so no test waits for a clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import numpy as np
import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp

import loomdb
from loomdb.langgraph import LoomStore
from loomdb.langgraph.store import StoreInputError

DIMS = 8


class Embedder:
    """A deterministic embedding function: each text gets a fixed random vector."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.table: dict[str, np.ndarray] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def vector(self, text: str) -> np.ndarray:
        with self.lock:
            if text not in self.table:
                self.table[text] = self.rng.normal(size=DIMS).astype(np.float32)
            return self.table[text]

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self.vector(t).tolist() for t in texts]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


@pytest.fixture
def db(fresh_db):
    return fresh_db


@pytest.fixture
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def store(db) -> LoomStore:
    return LoomStore(db)


@pytest.fixture
def vstore(db, embedder) -> LoomStore:
    return LoomStore(db, index={"dims": DIMS, "embed": embedder, "fields": ["text"]})


def keys(items) -> list[str]:
    return [item.key for item in items]


def expire(db, key: str) -> None:
    """Move an item's expiry into the past, as if its TTL had run out."""
    db.execute(
        "UPDATE langgraph_store SET expires_at = %s WHERE key = %s",
        [dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), key],
    )


# --------------------------------------------------------------------------- put / get / delete


def test_put_then_get_returns_the_value_with_its_namespace_key_and_utc_times(store):
    store.put(("users", "42"), "prefs", {"theme": "dark", "sizes": [1, 2.5], "nested": {"a": None}})
    item = store.get(("users", "42"), "prefs")
    assert item.value == {"theme": "dark", "sizes": [1, 2.5], "nested": {"a": None}}
    assert (item.namespace, item.key) == (("users", "42"), "prefs")
    assert item.created_at.tzinfo is not None and item.created_at == item.updated_at


def test_get_of_a_missing_item_or_namespace_is_none(store):
    store.put(("users", "42"), "prefs", {"x": 1})
    assert store.get(("users", "42"), "other") is None
    assert store.get(("users", "43"), "prefs") is None


def test_a_second_put_replaces_the_value_keeps_created_at_and_moves_updated_at(store):
    store.put(("docs",), "a", {"v": 1, "old": True})
    first = store.get(("docs",), "a")
    store.put(("docs",), "a", {"v": 2})
    second = store.get(("docs",), "a")
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


def test_delete_removes_the_item_and_deleting_a_missing_item_is_a_no_op(store):
    store.put(("docs",), "a", {"v": 1})
    store.delete(("docs",), "a")
    store.delete(("docs",), "never-there")
    assert store.get(("docs",), "a") is None
    assert store.search(("docs",)) == []


def test_items_persist_across_reconnects_with_their_vectors(store_path, embedder):
    index = {"dims": DIMS, "embed": embedder, "fields": ["text"]}
    with LoomStore.from_conn_string(store_path, index=index) as store:
        store.put(("docs",), "a", {"text": "alpha"})
        store.put(("docs",), "b", {"text": "beta"})
    with LoomStore.from_conn_string(store_path, index=index) as store:
        assert store.get(("docs",), "a").value == {"text": "alpha"}
        found = store.search(("docs",), query="beta", limit=1)
        assert keys(found) == ["b"] and found[0].score == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------- namespaces


def test_search_by_namespace_prefix_matches_whole_labels_only(store):
    store.put(("a",), "1", {})
    store.put(("a", "b"), "2", {})
    store.put(("a", "b", "c"), "3", {})
    store.put(("ab",), "4", {})
    store.put(("a-b",), "5", {})
    assert sorted(keys(store.search(("a",)))) == ["1", "2", "3"]
    assert sorted(keys(store.search(("a", "b")))) == ["2", "3"]
    assert sorted(keys(store.search(()))) == ["1", "2", "3", "4", "5"]


def test_namespace_labels_with_sql_wildcards_match_literally(store):
    store.put(("tenant", "a_%"), "k", {})
    store.put(("tenant", "ab%x"), "k", {})
    assert [i.namespace for i in store.search(("tenant", "a_%"))] == [("tenant", "a_%")]
    assert store.list_namespaces(prefix=("tenant", "a_%")) == [("tenant", "a_%")]


def test_list_namespaces_filters_by_prefix_suffix_and_wildcards_sorted_and_paged(store):
    for i, ns in enumerate(
        [
            ("a", "b", "c"),
            ("a", "b", "d", "e"),
            ("a", "b", "f"),
            ("a", "c", "f"),
            ("b", "a", "f"),
            ("users", "1"),
        ]
    ):
        store.put(ns, f"k{i}", {})
    assert store.list_namespaces(prefix=("a", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("a",), suffix=("*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "c"), ("b", "a"), ("users", "1")]
    assert store.list_namespaces(prefix=("a",), limit=2, offset=1) == [("a", "b", "d", "e"), ("a", "b", "f")]
    assert store.list_namespaces(prefix=("nope",)) == []


def test_a_namespace_disappears_from_listings_with_its_last_item(store):
    store.put(("a",), "1", {})
    store.put(("b",), "1", {})
    store.delete(("a",), "1")
    assert store.list_namespaces() == [("b",)]


@pytest.mark.parametrize("namespace", [("foo.bar",), ("foo", ""), ("foo\x00",), (7,)])
def test_invalid_namespace_labels_raise_invalid_namespace_error_and_write_nothing(db, store, namespace):
    store.setup()
    head = db.head
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("ok",), "k", {"v": 1}), PutOp(namespace, "k", {"v": 1})])
    with pytest.raises(InvalidNamespaceError):
        store.put(namespace, "k", {"v": 1})
    assert db.head == head and store.search(()) == []


def test_put_with_an_empty_namespace_is_refused_even_through_batch(store):
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp((), "k", {"v": 1})])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "op",
    [
        SearchOp(("docs",), filter={"n": {"$regex": "x"}}),
        SearchOp(("docs",), filter={"n": {"$gt": None}}),
        SearchOp(("docs",), filter={"when": dt.datetime(2024, 1, 1)}),
        SearchOp(("docs",), limit=-1),
        PutOp(("docs",), "k", {"when": dt.datetime(2024, 1, 1)}),
        PutOp(("docs",), "k", {"x": float("nan")}),
        PutOp(("docs",), "k", {1: "int key"}),
        PutOp(("docs",), "k", {"v": 1}, ttl=-1),
        PutOp(("docs",), "k", ["not", "a", "dict"]),
        ListNamespacesOp(max_depth=0),
    ],
    ids=[
        "operator",
        "operand",
        "filter-datetime",
        "limit",
        "datetime",
        "nan",
        "int-key",
        "ttl",
        "list-value",
        "max-depth",
    ],
)
def test_bad_ops_raise_store_input_error_and_leave_the_store_unchanged(db, store, op):
    store.put(("docs",), "keep", {"v": 1})
    head = db.head
    with pytest.raises(StoreInputError) as raised:
        store.batch([PutOp(("docs",), "new", {"v": 2}), op])
    assert isinstance(raised.value, loomdb.ProgrammingError) and isinstance(raised.value, ValueError)
    assert db.head == head
    assert keys(store.search(("docs",))) == ["keep"]


def test_an_index_config_needs_positive_dims_and_an_embedder(db, embedder):
    with pytest.raises(StoreInputError):
        LoomStore(db, index={"dims": 0, "embed": embedder})
    with pytest.raises(StoreInputError):
        LoomStore(db, index={"dims": DIMS})


def test_opening_a_store_with_other_dims_than_its_vectors_fails_clearly(db, embedder):
    LoomStore(db, index={"dims": DIMS, "embed": embedder}).setup()
    with pytest.raises(StoreInputError, match=f"VECTOR\\({DIMS}\\)"):
        LoomStore(db, index={"dims": DIMS + 1, "embed": embedder}).setup()


def test_an_embedder_returning_the_wrong_dimension_raises_data_error_and_writes_nothing(db):
    bad = LoomStore(db, index={"dims": DIMS, "embed": lambda texts: [[1.0, 2.0] for _ in texts]})
    bad.setup()
    head = db.head
    with pytest.raises(loomdb.DataError, match="2 dimensions"):
        bad.put(("docs",), "a", {"text": "x"})
    assert db.head == head and bad.get(("docs",), "a") is None


# --------------------------------------------------------------------------- filters


@pytest.fixture
def catalog(store) -> LoomStore:
    rows = {
        "a": {"color": "red", "score": 4.5, "n": 1, "tags": ["x", "y"], "meta": {"lang": "en", "v": 2}},
        "b": {"color": "red", "score": 3.0, "n": 1.0, "flag": True},
        "c": {"color": "green", "score": 10, "n": "1", "meta": {"lang": "fr"}},
        "d": {"color": "blue", "score": "high", "flag": 1},
        "e": {"size": 3},
    }
    for key, value in rows.items():
        store.put(("shop",), key, value)
    return store


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"color": "red"}, "ab"),
        ({"color": {"$eq": "red"}, "score": {"$gte": 4}}, "a"),
        ({"n": 1}, "ab"),  # numbers by value: 1 == 1.0, never the string "1"
        ({"flag": True}, "b"),  # booleans are not numbers
        ({"score": {"$gt": 3.2}}, "ac"),  # numbers compare with numbers only, 10 > 3.2 numerically
        ({"score": {"$lt": "z"}}, "d"),  # strings with strings
        ({"color": {"$ne": "red"}}, "cde"),  # a missing key is not equal either
        ({"tags": ["x", "y"]}, "a"),
        ({"tags": ["y", "x"]}, ""),
        ({"meta": {"lang": "en"}}, "a"),  # nested dicts match the keys they name
        ({"meta": {"v": {"$gt": 1}}}, "a"),
        ({"color": None}, "e"),
        ({"score": {"$gte": 3, "$lte": 4.5}}, "ab"),
    ],
)
def test_filters_select_items_by_json_equality_and_comparisons(catalog, flt, expected):
    assert sorted(keys(catalog.search(("shop",), filter=flt))) == list(expected)


def test_filtered_search_pages_through_the_matches_in_order(catalog):
    everything = keys(catalog.search(("shop",), filter={"color": {"$ne": "blue"}}, limit=100))
    assert len(everything) == 4
    pages = [
        keys(catalog.search(("shop",), filter={"color": {"$ne": "blue"}}, limit=2, offset=o)) for o in (0, 2)
    ]
    assert pages[0] + pages[1] == everything


def test_plain_search_lists_the_most_recently_updated_items_first(store):
    for key in ("a", "b", "c"):
        store.put(("docs",), key, {})
    store.put(("docs",), "a", {"touched": True})
    assert keys(store.search(("docs",))) == ["a", "c", "b"]
    assert keys(store.search(("docs",), limit=1, offset=1)) == ["c"]


# --------------------------------------------------------------------------- semantic search


def test_semantic_search_ranks_by_cosine_similarity_like_numpy(vstore, embedder):
    texts = [f"doc {i}" for i in range(25)]
    vstore.batch([PutOp(("docs", f"u{i % 3}"), f"k{i}", {"text": t}) for i, t in enumerate(texts)])
    query = embedder.vector("what")
    expected = sorted(
        ((cosine(query, embedder.vector(t)), f"k{i}") for i, t in enumerate(texts)), reverse=True
    )
    found = vstore.search(("docs",), query="what", limit=25)
    assert keys(found) == [k for _, k in expected]
    assert [r.score for r in found] == pytest.approx([s for s, _ in expected], abs=1e-5)
    page = vstore.search(("docs",), query="what", limit=5, offset=10)
    assert keys(page) == [k for _, k in expected[10:15]]


def test_an_item_scores_by_its_closest_embedded_field(db, embedder):
    store = LoomStore(db, index={"dims": DIMS, "embed": embedder, "fields": ["title", "chunks[*]"]})
    store.put(("docs",), "a", {"title": "t-a", "chunks": ["c1", "c2", "c3"]})
    store.put(("docs",), "b", {"title": "t-b", "body": "c2"})
    found = store.search(("docs",), query="c2")
    assert keys(found)[0] == "a" and found[0].score == pytest.approx(1.0, abs=1e-5)
    assert found[1].score == pytest.approx(cosine(embedder.vector("c2"), embedder.vector("t-b")), abs=1e-5)
    fields = db.execute("SELECT field FROM langgraph_store_vectors WHERE key = 'a' ORDER BY field").fetchall()
    assert [r["field"] for r in fields] == ["chunks[*].0", "chunks[*].1", "chunks[*].2", "title"]


def test_items_without_vectors_follow_the_ranked_items_with_score_none(vstore):
    vstore.put(("docs",), "ranked", {"text": "alpha"})
    vstore.put(("docs",), "unindexed", {"text": "alpha"}, index=False)
    vstore.put(("docs",), "no-field", {"other": "alpha"})
    found = vstore.search(("docs",), query="alpha")
    assert keys(found)[0] == "ranked" and found[0].score == pytest.approx(1.0, abs=1e-5)
    assert sorted(keys(found[1:])) == ["no-field", "unindexed"] and {r.score for r in found[1:]} == {None}
    assert keys(vstore.search(("docs",), query="alpha", limit=1)) == ["ranked"]


def test_semantic_search_combines_with_filters_and_namespaces(vstore, embedder):
    for i in range(12):
        vstore.put(("docs", "red" if i % 2 else "blue"), f"k{i}", {"text": f"t{i}", "i": i})
    query = embedder.vector("q")
    red_above_4 = [i for i in range(12) if i % 2 and i > 4]
    expected = sorted(red_above_4, key=lambda i: -cosine(query, embedder.vector(f"t{i}")))
    found = vstore.search(("docs", "red"), query="q", filter={"i": {"$gt": 4}}, limit=10)
    assert keys(found) == [f"k{i}" for i in expected]
    everywhere = sorted(range(5, 12), key=lambda i: -cosine(query, embedder.vector(f"t{i}")))
    page = vstore.search(("docs",), query="q", filter={"i": {"$gt": 4}}, limit=2, offset=1)
    assert keys(page) == [f"k{i}" for i in everywhere[1:3]]


def test_updating_an_item_replaces_its_vectors_and_index_false_drops_them(db, vstore):
    vstore.put(("docs",), "a", {"text": "first"})
    vstore.put(("docs",), "a", {"text": "second"})
    assert vstore.search(("docs",), query="second")[0].score == pytest.approx(1.0, abs=1e-5)
    vstore.put(("docs",), "a", {"text": "third"}, index=False)
    assert vstore.search(("docs",), query="second")[0].score is None
    assert db.execute("SELECT count(*) AS n FROM langgraph_store_vectors").fetchone()["n"] == 0


def test_put_index_paths_override_the_configured_fields(vstore, embedder):
    vstore.put(("docs",), "a", {"text": "ignored", "title": "chosen"}, index=["title"])
    assert vstore.search(("docs",), query="chosen")[0].score == pytest.approx(1.0, abs=1e-5)


def test_each_distinct_text_is_embedded_once_per_batch(vstore, embedder):
    vstore.batch([PutOp(("docs",), f"k{i}", {"text": "same"}) for i in range(5)])
    assert embedder.calls == 1 and list(embedder.table) == ["same"]


def test_a_store_without_an_index_ignores_query_and_index_arguments(store):
    store.put(("docs",), "a", {"text": "x"}, index=["text"])
    found = store.search(("docs",), query="x")
    assert keys(found) == ["a"] and found[0].score is None


# --------------------------------------------------------------------------- TTL


def test_a_put_with_ttl_records_its_expiry_in_sql(db, store):
    store.put(("docs",), "a", {"v": 1}, ttl=30)
    row = db.execute("SELECT updated_at, expires_at, ttl_minutes FROM langgraph_store").fetchone()
    assert row["ttl_minutes"] == 30
    assert row["expires_at"] - row["updated_at"] == dt.timedelta(minutes=30)


def test_expired_items_are_invisible_to_get_search_and_listing(db, store):
    store.put(("docs",), "a", {"v": 1}, ttl=30)
    store.put(("old",), "b", {"v": 1}, ttl=30)
    store.put(("docs",), "c", {"v": 1})
    expire(db, "a")
    expire(db, "b")
    assert store.get(("docs",), "a") is None
    assert keys(store.search(())) == ["c"]
    assert store.list_namespaces() == [("docs",)]


def test_sweep_ttl_deletes_expired_items_and_their_vectors(db, vstore):
    vstore.put(("docs",), "a", {"text": "x"}, ttl=30)
    vstore.put(("docs",), "b", {"text": "y"}, ttl=30)
    expire(db, "a")
    assert vstore.sweep_ttl() == 1
    assert vstore.sweep_ttl() == 0
    assert [r["key"] for r in db.execute("SELECT key FROM langgraph_store").fetchall()] == ["b"]
    assert [r["key"] for r in db.execute("SELECT key FROM langgraph_store_vectors").fetchall()] == ["b"]


def test_reads_refresh_the_ttl_unless_told_not_to(db, store):
    store.put(("docs",), "a", {"v": 1}, ttl=30)
    store.put(("docs",), "b", {"v": 1}, ttl=30)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    db.execute("UPDATE langgraph_store SET expires_at = %s", [soon])
    before = dt.datetime.now(dt.UTC)
    store.get(("docs",), "a")
    store.get(("docs",), "b", refresh_ttl=False)
    store.search(("docs",), filter={"v": 2})  # matches nothing, refreshes nothing
    # expires_at is a TIMESTAMP: naive, its UTC wall time
    expiry = {
        r["key"]: r["expires_at"].replace(tzinfo=dt.UTC)
        for r in db.execute("SELECT key, expires_at FROM langgraph_store")
    }
    assert expiry["a"] >= before + dt.timedelta(minutes=30)
    assert expiry["b"] == soon
    store.search(("docs",), refresh_ttl=True)
    assert db.execute("SELECT expires_at FROM langgraph_store WHERE key = 'b'").fetchone()[0] > soon.replace(
        tzinfo=None
    )


def test_items_without_a_ttl_are_never_rewritten_by_reads(db, store):
    store.put(("docs",), "a", {"v": 1})
    head = db.head
    store.get(("docs",), "a")
    store.search(("docs",))
    assert db.head == head


def test_the_ttl_config_sets_the_default_ttl_and_the_refresh_default(db):
    store = LoomStore(db, ttl={"default_ttl": 10, "refresh_on_read": False})
    store.put(("docs",), "a", {"v": 1})
    store.put(("docs",), "b", {"v": 1}, ttl=None)
    rows = {r["key"]: r["ttl_minutes"] for r in db.execute("SELECT key, ttl_minutes FROM langgraph_store")}
    assert rows == {"a": 10, "b": None}
    head = db.head
    store.get(("docs",), "a")
    assert db.head == head


def test_the_ttl_sweeper_thread_deletes_expired_items_until_stopped(db, store):
    store.put(("docs",), "a", {"v": 1}, ttl=30)
    expire(db, "a")
    future = store.start_ttl_sweeper(sweep_interval_minutes=0.001)
    gone = threading.Event()
    for _ in range(6000):  # a bound against hanging, not a timing claim
        if db.execute("SELECT count(*) AS n FROM langgraph_store").fetchone()["n"] == 0:
            gone.set()
            break
        gone.wait(0.01)
    assert store.stop_ttl_sweeper(timeout=60)
    assert gone.is_set() and future.done()


# --------------------------------------------------------------------------- batches


def test_batch_returns_results_in_op_order_and_reads_see_the_store_before_its_writes(db, store):
    store.put(("docs",), "a", {"v": 1})
    head = db.head
    results = store.batch(
        [
            PutOp(("docs",), "a", {"v": 2}),
            GetOp(("docs",), "a"),
            PutOp(("docs",), "b", {"v": 1}),
            PutOp(("docs",), "b", {"v": 3}),
            SearchOp(("docs",)),
            ListNamespacesOp(),
            PutOp(("docs",), "c", {"v": 1}),
            PutOp(("docs",), "c", None),
        ]
    )
    assert results[0] is None and results[1].value == {"v": 1}
    assert keys(results[4]) == ["a"] and results[5] == [("docs",)]
    assert {k: store.get(("docs",), k) and store.get(("docs",), k).value for k in "abc"} == {
        "a": {"v": 2},
        "b": {"v": 3},
        "c": None,
    }
    log = db.log(limit=5)
    assert [c.id for c in log if c.id > head] == [log[0].id]  # one commit for the batch
    assert log[0].message == "langgraph store: 2 put, 1 delete"


def test_async_methods_work_with_an_async_embedder(db):
    embedder = Embedder()

    async def embed(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return embedder(texts)

    store = LoomStore(db, index={"dims": DIMS, "embed": embed, "fields": ["text"]})

    async def scenario():
        await asyncio.gather(*(store.aput(("docs",), f"k{i}", {"text": f"t{i}"}) for i in range(10)))
        found = await store.asearch(("docs",), query="t3", limit=2)
        got = await store.aget(("docs",), "k3")
        await store.adelete(("docs",), "k4")
        listed = await store.alist_namespaces()
        results = await store.abatch([GetOp(("docs",), "k4"), SearchOp(("docs",), limit=100)])
        return found, got, listed, results

    found, got, listed, results = asyncio.run(scenario())
    assert keys(found)[0] == "k3" and found[0].score == pytest.approx(1.0, abs=1e-5)
    assert got.value == {"text": "t3"} and listed == [("docs",)]
    assert results[0] is None and len(results[1]) == 9


def test_an_async_batch_waiting_for_the_database_leaves_the_event_loop_running(db, store):
    store.setup()
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock():
        with db.transaction():
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    holding.wait()
    # Should the batch block the loop, this releases the lock so that the test fails, not hangs.
    fallback = threading.Timer(5, release.set)
    fallback.start()

    async def scenario() -> bool:
        put = asyncio.create_task(store.aput(("docs",), "a", {"v": 1}))
        for _ in range(20):
            await asyncio.sleep(0)  # other coroutines keep running meanwhile
        waiting = not put.done()
        release.set()
        await put
        return waiting

    try:
        assert asyncio.run(scenario())
    finally:
        release.set()
        fallback.cancel()
        holder.join()
    assert store.get(("docs",), "a").value == {"v": 1}


# --------------------------------------------------------------------------- loomdb: SQL and branches


def test_stored_items_can_be_queried_with_sql(db, store):
    store.put(("users", "42"), "prefs", {"theme": "dark"})
    store.put(("users", "43"), "prefs", {"theme": "light"})
    rows = db.execute(
        "SELECT namespace->>1 AS user_id, value->>'theme' AS theme FROM langgraph_store"
        " WHERE namespace->>0 = 'users' ORDER BY prefix"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("42", "dark"), ("43", "light")]
    assert (
        db.execute("SELECT key FROM langgraph_store WHERE prefix = 'users.42'").fetchone()["key"] == "prefs"
    )


def test_a_store_on_a_branch_is_invisible_on_main_until_merged(db, embedder):
    index = {"dims": DIMS, "embed": embedder, "fields": ["text"]}
    main = LoomStore(db, index=index)
    main.put(("docs",), "base", {"text": "base"})
    branch = LoomStore(db.branch("agent/try-1"), index=index)
    branch.put(("docs",), "idea", {"text": "idea"})
    branch.delete(("docs",), "base")
    assert main.get(("docs",), "idea") is None and main.get(("docs",), "base") is not None
    assert keys(branch.search(("docs",), query="idea")) == ["idea"]
    db.merge("agent/try-1", into="main")
    assert main.get(("docs",), "base") is None
    found = main.search(("docs",), query="idea")
    assert keys(found) == ["idea"] and found[0].score == pytest.approx(1.0, abs=1e-5)


def test_a_store_on_a_snapshot_reads_the_past_and_refuses_writes(db, store):
    store.put(("docs",), "a", {"v": 1}, ttl=30)
    then = db.head
    store.put(("docs",), "a", {"v": 2})
    past = LoomStore(db.as_of(then))
    assert past.get(("docs",), "a").value == {"v": 1}
    with pytest.raises(loomdb.ReadOnlyError):
        past.put(("docs",), "a", {"v": 3})


def test_a_langgraph_graph_reads_and_writes_memories_through_the_store(store):
    from langgraph.graph import START, StateGraph
    from langgraph.runtime import Runtime
    from typing_extensions import TypedDict

    class State(TypedDict):
        user: str
        note: str
        known: list[str]

    def remember(state: State, runtime: Runtime) -> dict:
        namespace = ("users", state["user"], "notes")
        runtime.store.put(namespace, state["note"], {"text": state["note"]})
        return {"known": sorted(item.key for item in runtime.store.search(namespace))}

    graph = StateGraph(State).add_node(remember).add_edge(START, "remember").compile(store=store)
    graph.invoke({"user": "42", "note": "likes tea", "known": []})
    out = graph.invoke({"user": "42", "note": "hates rain", "known": []})
    assert out["known"] == ["hates rain", "likes tea"]
    assert store.list_namespaces(prefix=("users",)) == [("users", "42", "notes")]
