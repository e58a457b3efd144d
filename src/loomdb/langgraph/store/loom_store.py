"""LoomStore: LangGraph's long-term memory store (``BaseStore``) on a loomdb store.

Items live in two ordinary loomdb tables (see ``schema``), so they
are durable, versioned, branchable and queryable with SQL, on SQLite or on
PostgreSQL. Semantic search (``query=``) ranks items by the cosine
similarity of their closest embedded field, computed with loomdb's
pgvector-style ``<=>``.

>>> import loomdb
>>> from loomdb.langgraph import LoomStore
>>> store = LoomStore(loomdb.connect("memory.loom"))  # doctest: +SKIP
>>> store.put(("users", "42"), "prefs", {"theme": "dark"})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.store.base import BaseStore, GetOp, IndexConfig, Op, Result, TTLConfig, ensure_embeddings

from ...connect import connect
from ...database import Database
from .embed import embed_async, embed_sync
from .errors import StoreInputError
from .plan import FieldPaths, Plan, plan_batch, tokenized_fields
from .read import Found, get_items, list_namespaces, search_items
from .schema import ITEMS, VECTORS, Schema, ensure_schema
from .sweeper import Sweeper
from .write import Refresh, write_batch

__all__ = ["LoomStore", "StoreInputError"]

Vectors = dict[str, list[float] | None]


class LoomStore(BaseStore):
    """A LangGraph ``BaseStore`` over a loomdb handle (and the handle's branch).

    ``index``: LangGraph's IndexConfig (``dims``, ``embed``: an Embeddings
    object or a function, ``fields``: paths to embed, default ``["$"]``, the
    whole value) enables ``search(query=...)``. ``ttl``: LangGraph's TTLConfig
    (``default_ttl`` minutes, ``refresh_on_read``, ``sweep_interval_minutes``).

    Expired items are invisible to every read at once; ``sweep_ttl()``
    deletes them. Each batch's writes (puts, deletes and TTL refreshes) are one
    loomdb commit. The tables are created on first use (or by ``setup()``).
    """

    supports_ttl: bool = True

    def __init__(
        self, db: Database, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> None:
        if not isinstance(db, Database):
            raise StoreInputError(f"LoomStore needs a loomdb.Database handle, got {type(db).__name__}")
        self.db = db
        self.ttl_config = ttl
        self.index_config, self.embeddings, self._fields = _index_settings(index)
        self._schema: Schema | None = None
        self._schema_lock = threading.Lock()
        self._sweeper = Sweeper(self.sweep_ttl)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        branch: str = "main",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        **connect_kwargs: Any,
    ) -> Iterator[LoomStore]:
        """Open a store file or ``postgresql://`` URL with ``loomdb.connect``, set it up,
        and close it (and stop its TTL sweeper) when the block ends."""
        db = connect(conn_string, branch=branch, **connect_kwargs)
        try:
            store = cls(db, index=index, ttl=ttl)
            store.setup()
            try:
                yield store
            finally:
                store.stop_ttl_sweeper()
        finally:
            db.close()

    def setup(self) -> None:
        """Create the store's tables if they are missing (idempotent; no commit when they exist).

        Raises StoreInputError when the store's vectors have another
        dimension than the index config's ``dims``.
        """
        with self._schema_lock:
            self._schema = ensure_schema(self.db, self._dims)

    @property
    def _dims(self) -> int | None:
        return None if self.index_config is None else int(self.index_config["dims"])

    def _ready(self) -> Schema:
        if self._schema is None:
            self.setup()
        assert self._schema is not None
        return self._schema

    # -- BaseStore ----------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (reads first, then all writes as one commit); results in op order."""
        plan = plan_batch(ops, self._fields)
        docs: Vectors = {}
        queries: Vectors = {}
        if self.embeddings is not None and (plan.doc_texts or plan.queries):
            docs, queries = embed_sync(self.embeddings, self._dims or 0, plan.texts(), plan.queries)
        return self._run(plan, docs, queries)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` for asyncio: embeds with the embedder's async methods, then runs the
        database work in a worker thread so the event loop never blocks."""
        plan = plan_batch(ops, self._fields)
        docs: Vectors = {}
        queries: Vectors = {}
        if self.embeddings is not None and (plan.doc_texts or plan.queries):
            docs, queries = await embed_async(self.embeddings, self._dims or 0, plan.texts(), plan.queries)
        return await asyncio.to_thread(self._run, plan, docs, queries)

    def _run(self, plan: Plan, docs: Vectors, queries: Vectors) -> list[Result]:
        schema = self._ready()
        now = dt.datetime.now(dt.UTC)
        results: list[Result] = [None] * plan.size
        touched: list[tuple[Found, bool]] = []  # (item read, whether to refresh its TTL)

        by_namespace: dict[tuple[str, ...], list[tuple[int, GetOp]]] = defaultdict(list)
        for i, get in plan.gets:
            by_namespace[tuple(get.namespace)].append((i, get))
        for namespace, group in by_namespace.items():
            found = get_items(self.db, namespace, list(dict.fromkeys(get.key for _, get in group)), now)
            for i, get in group:
                hit = found.get(get.key)
                results[i] = hit.item if hit else None
                if hit:
                    touched.append((hit, get.refresh_ttl))
        for i, search in plan.searches:
            vector = queries.get(search.query) if search.query and schema.vector_dims is not None else None
            hits = search_items(self.db, search, vector, now)
            results[i] = [hit.item for hit in hits]
            touched.extend((hit, search.refresh_ttl) for hit in hits)
        for i, listing in plan.lists:
            results[i] = list_namespaces(self.db, listing, now)

        refreshes = {
            (hit.item.namespace, hit.item.key): Refresh((hit.item.namespace, hit.item.key), hit.ttl_minutes)
            for hit, refresh in touched
            if refresh and hit.ttl_minutes is not None
        }
        if self.db.read_only:
            refreshes.clear()  # a snapshot cannot move expiries; its reads still work
        if plan.puts or refreshes:
            write_batch(
                self.db,
                plan.puts,
                plan.doc_texts,
                docs,
                list(refreshes.values()),
                now,
                has_vectors=schema.vector_dims is not None,
            )
        return results

    # -- TTL ------------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete the expired items (and their vectors) in one commit; return how many."""
        schema = self._ready()
        now = dt.datetime.now(dt.UTC)
        with self.db.transaction(message="langgraph store: sweep expired items"):
            gone = self.db.execute(
                f"DELETE FROM {ITEMS} WHERE expires_at IS NOT NULL AND expires_at <= %s RETURNING prefix, key",
                [now],
            ).fetchall()
            if gone and schema.vector_dims is not None:
                self.db.executemany(
                    f"DELETE FROM {VECTORS} WHERE prefix = %s AND key = %s",
                    [(row["prefix"], row["key"]) for row in gone],
                )
        return len(gone)

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> concurrent.futures.Future[None]:
        """Call ``sweep_ttl()`` on a daemon thread every ``sweep_interval_minutes`` (default:
        the TTL config's ``sweep_interval_minutes``, else 5) until ``stop_ttl_sweeper()``
        or until the returned future is cancelled. A running sweeper is kept."""
        interval = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        if not interval > 0:
            raise StoreInputError(f"sweep_interval_minutes must be positive, got {interval!r}")
        return self._sweeper.start(float(interval))

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; True once it has ended (or none was running)."""
        return self._sweeper.stop(timeout)


def _index_settings(index: IndexConfig | None) -> tuple[dict | None, Any, FieldPaths | None]:
    """The index config (copied), its Embeddings and tokenized default fields; Nones without one."""
    if not index:
        return None, None, None
    config: dict[str, Any] = dict(index)
    dims = config.get("dims")
    if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
        raise StoreInputError(f"the index config needs 'dims', a positive integer, got {dims!r}")
    if config.get("embed") is None:
        raise StoreInputError("the index config needs 'embed': an Embeddings object or an embedding function")
    fields = config.get("fields") or ["$"]
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise StoreInputError(f"the index config's 'fields' must be a list of field paths, got {fields!r}")
    return config, ensure_embeddings(config["embed"]), tokenized_fields(fields)
