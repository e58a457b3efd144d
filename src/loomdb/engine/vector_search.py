"""Vector top-k queries answered from the in-memory copy of a VECTOR column.

``SELECT ... ORDER BY vec <op> $n LIMIT k`` over one table (any WHERE; the
query vector a parameter or a literal) is
matched once per statement (:func:`vector_plan`); running it refreshes the
column's :class:`~loomdb.engine.vectors.VectorCache`, lets the engine
evaluate the WHERE through the branch view, ranks in NumPy and fetches the
chosen rows, all in one read transaction.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sqlglot import exp

from .. import errors
from ..cursor import Cursor
from .session import Session
from .vectors import VectorCache, VectorPlan, match_top_k, query_vector


def vector_plan(session: Session, key: str, tree: exp.Expression) -> VectorPlan | None:
    """A plan to answer ``ORDER BY vec <op> $n LIMIT k`` from the vector cache, if it applies."""
    cache_key = (key, session.lineage)
    plans = session.store.plans.vector_plans
    if cache_key in plans:
        return plans[cache_key]
    plan = None
    found = match_top_k(tree, session.schemas())
    if found is not None:
        schema, alias, column, op, query, limit, offset = found
        filter_sql = None
        where = tree.args.get("where")
        if where is not None:
            probe = exp.Select(expressions=[exp.Literal.number(1)])
            probe.set("from_", tree.args["from_"].copy())
            probe.set("where", where.copy())
            filter_sql = session.compile(probe, key=(key, "vector-filter"), hidden_alias=alias)
        fetch = tree.copy()
        for arg in ("where", "order", "limit", "offset"):
            fetch.set(arg, None)
        fetch_sql = session.compile(fetch, key=(key, "vector-fetch"), vid_alias=alias)
        param, text = (query, None) if isinstance(query, int) else (0, query)
        plan = VectorPlan(
            schema.physical,
            column.phys,
            column.type.dim,
            op,
            param,
            limit,
            offset,
            filter_sql,
            fetch_sql,
            text,
        )
    plans[cache_key] = plan
    return plan


def vector_select(session: Session, plan: VectorPlan, values: list[Any]) -> Cursor:
    """Run ``plan`` with ``values``: the k nearest visible rows, nearest first."""
    store = session.store
    cache = store.vector_caches.get((plan.physical, plan.phys))
    if cache is None:
        cache = VectorCache(plan.physical, plan.phys, plan.dim)
        store.vector_caches[(plan.physical, plan.phys)] = cache
    if plan.query_text is not None:
        query = query_vector(_literal_vector(plan.query_text), plan.dim)
    elif plan.query_param > len(values):
        raise errors.ProgrammingError(f"no value for parameter ${plan.query_param}")
    else:
        query = query_vector(values[plan.query_param - 1], plan.dim)
    store.backend.set_statement_time(None)
    # One read transaction: the cache refresh, the filter and the fetch
    # must see the same committed state, or a concurrent writer could
    # remove a chosen row between them.
    store.backend.begin_read()
    try:
        return _top(session, plan, cache, query, values)
    finally:
        store.backend.rollback()


def _literal_vector(text: str) -> Any:
    """A vector literal's elements (22P02, as pgvector's input, when it is none)."""
    try:
        return json.loads(text)
    except ValueError:
        raise errors.DataError(f'invalid input syntax for type vector: "{text}"', sqlstate="22P02") from None


def _top(
    session: Session, plan: VectorPlan, cache: VectorCache, query: np.ndarray, values: list[Any]
) -> Cursor:
    cache.refresh(session.store.backend)
    if plan.filter_sql is not None:
        vids = np.fromiter((r[0] for r in session.run_compiled(plan.filter_sql, values)), dtype=np.int64)
        candidates = cache.indexes_of(vids)
    else:
        candidates = cache.visible(session.lineage)
    top = cache.top(query, plan.op, plan.limit + plan.offset, candidates)[plan.offset :]
    fetch = plan.fetch_sql
    own = list(values[: fetch.nparams - 1])
    own += [None] * (fetch.nparams - 1 - len(own))
    rows = session.run_compiled(fetch, [*own, json.dumps(top.tolist())])
    rank = {int(vid): i for i, vid in enumerate(top)}
    rows.sort(key=lambda r: rank[r[-1]])
    return session.cursor(fetch, [r[:-1] for r in rows])
