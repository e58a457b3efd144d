"""Reads of LangGraph store ops as loomdb SQL: get, search, list namespaces.

Every read sees only live items (``expires_at`` unset or after ``now``).
Results carry each item's ``ttl_minutes`` so the caller can refresh TTLs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import Item, ListNamespacesOp, MatchCondition, SearchItem, SearchOp

from ...database import Database
from .filter import matches, prefilter
from .schema import ITEMS, VECTORS, from_prefix, prefix_condition, to_prefix

LIVE = "(s.expires_at IS NULL OR s.expires_at > %s)"
COLUMNS = "s.prefix, s.key, s.value, s.created_at, s.updated_at, s.ttl_minutes"


@dataclass(frozen=True)
class Found:
    """An item a read returned, with the TTL its refresh needs (None: no TTL)."""

    item: Item
    ttl_minutes: float | None


def get_items(
    db: Database, namespace: tuple[str, ...], keys: Sequence[str], now: dt.datetime
) -> dict[str, Found]:
    """The live items of ``namespace`` among ``keys``, by key."""
    keys = padded(list(keys))
    marks = ", ".join(["%s"] * len(keys))
    rows = db.execute(
        f"SELECT {COLUMNS} FROM {ITEMS} s WHERE s.prefix = %s AND s.key IN ({marks}) AND {LIVE}",
        [to_prefix(namespace), *keys, now],
    ).fetchall()
    return {row["key"]: Found(_item(row, namespace), row["ttl_minutes"]) for row in rows}


def search_items(
    db: Database, op: SearchOp, query_vector: list[float] | None, now: dt.datetime
) -> list[Found]:
    """The page of ``op``'s results: with ``query_vector``, items by descending cosine
    similarity of their closest vector (then items without vectors, score None);
    else by most recently updated. Ties go by namespace, then key.
    """
    if query_vector is not None:
        return _ranked_search(db, op, query_vector, now)
    where, params = _items_where(op, now)
    sql = f"SELECT {COLUMNS} FROM {ITEMS} s WHERE {where} ORDER BY s.updated_at DESC, s.prefix, s.key"
    if not op.filter:
        sql += " LIMIT %s OFFSET %s"
        params += [op.limit, op.offset]
    rows = db.execute(sql, params).fetchall()
    if op.filter:
        # The filter is decided here, so the page is cut here too.
        rows = [row for row in rows if matches(row["value"], op.filter)][op.offset : op.offset + op.limit]
    return [_search_found(row, None) for row in rows]


def _items_where(op: SearchOp, now: dt.datetime) -> tuple[str, list[Any]]:
    where, params = prefix_condition("s.prefix", op.namespace_prefix)
    conditions, pre_params = prefilter(op.filter, "s.value")
    return " AND ".join([where, LIVE, *conditions]), [*params, now, *pre_params]


def _ranked_search(db: Database, op: SearchOp, query_vector: list[float], now: dt.datetime) -> list[Found]:
    # Three single-table statements rather than one join: PostgreSQL's planner,
    # with no statistics yet on freshly written tables, nests the join's loops
    # (seconds at a few thousand items); each of these stays linear.
    v_where, v_params = prefix_condition("v.prefix", op.namespace_prefix)
    distances = {
        (prefix, key): distance
        for prefix, key, distance in db.execute(
            f"SELECT v.prefix, v.key, MIN(v.embedding <=> %s) FROM {VECTORS} v"
            f" WHERE {v_where} GROUP BY v.prefix, v.key",
            [query_vector, *v_params],
        )
    }
    where, params = _items_where(op, now)
    if op.filter:
        sql = f"SELECT s.prefix, s.key, s.updated_at, s.value FROM {ITEMS} s WHERE {where}"
        rows = [(p, k, u) for p, k, u, v in db.execute(sql, params) if matches(v, op.filter)]
    else:
        rows = [
            tuple(row)
            for row in db.execute(
                f"SELECT s.prefix, s.key, s.updated_at FROM {ITEMS} s WHERE {where}", params
            )
        ]
    # Stable sorts, least significant key first.
    rows.sort(key=lambda r: (r[0], r[1]))
    rows.sort(key=lambda r: r[2], reverse=True)
    rows.sort(key=lambda r: (distances.get((r[0], r[1])) is None, distances.get((r[0], r[1])) or 0.0))
    page = [(r[0], r[1]) for r in rows[op.offset : op.offset + op.limit]]
    found = _fetch(db, page)
    return [_search_found(found[i], distances.get(i)) for i in page if i in found]


def _fetch(db: Database, ids: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The rows of items named by (prefix, key), by that pair."""
    if not ids:
        return {}
    ids = padded(ids)
    where = " OR ".join(["(s.prefix = %s AND s.key = %s)"] * len(ids))
    rows = db.execute(f"SELECT {COLUMNS} FROM {ITEMS} s WHERE {where}", [x for pair in ids for x in pair])
    return {(row["prefix"], row["key"]): row for row in rows}


def padded(values: list[Any]) -> list[Any]:
    """``values`` repeated at the end up to a power-of-two length, so that statements
    with lists of parameters come in few shapes (loomdb caches each parsed shape)."""
    size = 1
    while size < len(values):
        size *= 2
    return values + values[-1:] * (size - len(values))


def _utc(value: dt.datetime) -> dt.datetime:
    """A TIMESTAMP column's value (naive, UTC wall time) as the aware UTC datetime langgraph gives."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _search_found(row: Any, distance: float | None) -> Found:
    score = None if distance is None else 1.0 - float(distance)
    item = SearchItem(
        namespace=from_prefix(row["prefix"]),
        key=row["key"],
        value=row["value"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        score=score,
    )
    return Found(item, row["ttl_minutes"])


def _item(row: Any, namespace: tuple[str, ...]) -> Item:
    return Item(
        namespace=namespace,
        key=row["key"],
        value=row["value"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def list_namespaces(db: Database, op: ListNamespacesOp, now: dt.datetime) -> list[tuple[str, ...]]:
    """The namespaces holding live items that meet every condition, cut to ``max_depth``,
    distinct, sorted (as tuples), then paged."""
    conditions = op.match_conditions or ()
    fixed: tuple[str, ...] = ()
    for condition in conditions:
        if condition.match_type == "prefix":
            # The labels before the first wildcard narrow the scan in SQL.
            lead = []
            for label in condition.path:
                if label == "*":
                    break
                lead.append(label)
            fixed = max(fixed, tuple(lead), key=len)
    where, params = prefix_condition("s.prefix", fixed)
    rows = db.execute(f"SELECT DISTINCT s.prefix FROM {ITEMS} s WHERE {where} AND {LIVE}", [*params, now])
    found = {from_prefix(row["prefix"]) for row in rows}
    kept = {ns[: op.max_depth] for ns in found if all(_matches(c, ns) for c in conditions)}
    return sorted(kept)[op.offset : op.offset + op.limit]


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = (
        namespace[: len(path)]
        if condition.match_type == "prefix"
        else namespace[len(namespace) - len(path) :]
    )
    return all(p == "*" or p == label for p, label in zip(path, part, strict=True))
