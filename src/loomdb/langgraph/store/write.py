"""Writes of a LangGraph store batch as loomdb SQL, in one commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import PutOp

from ...database import Database
from .plan import DocText, ItemId
from .schema import ITEMS, VECTORS, to_prefix

UPSERT = f"""
INSERT INTO {ITEMS} (prefix, key, namespace, value, created_at, updated_at, expires_at, ttl_minutes)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (prefix, key) DO UPDATE SET
    value = EXCLUDED.value, updated_at = EXCLUDED.updated_at,
    expires_at = EXCLUDED.expires_at, ttl_minutes = EXCLUDED.ttl_minutes"""

# Matching on the TTL read: if a put changed it since, that put set the expiry.
REFRESH = f"UPDATE {ITEMS} SET expires_at = %s WHERE prefix = %s AND key = %s AND ttl_minutes = %s"


@dataclass(frozen=True)
class Refresh:
    """An item read with a TTL whose expiry moves to ``now + ttl_minutes``."""

    item: ItemId
    ttl_minutes: float


def expiry(now: dt.datetime, ttl_minutes: float | None) -> dt.datetime | None:
    """When an item with this TTL, touched at ``now``, expires (None: never)."""
    return None if ttl_minutes is None else now + dt.timedelta(minutes=ttl_minutes)


def write_batch(
    db: Database,
    puts: Mapping[ItemId, PutOp],
    doc_texts: Sequence[DocText],
    doc_vectors: Mapping[str, list[float] | None],
    refreshes: Sequence[Refresh],
    now: dt.datetime,
    has_vectors: bool,
) -> None:
    """Apply the batch's TTL refreshes, then its puts and deletes, as one commit.

    A put replaces the item's vectors with those of its new value (none with
    ``index=False``), so search never scores an item by text it no longer has.
    """
    deletes = [item for item, op in puts.items() if op.value is None]
    upserts = [(item, op) for item, op in puts.items() if op.value is not None]
    with db.transaction(message=_message(len(upserts), len(deletes), len(refreshes))):
        if refreshes:
            db.executemany(
                REFRESH,
                [
                    (expiry(now, r.ttl_minutes), to_prefix(r.item[0]), r.item[1], r.ttl_minutes)
                    for r in refreshes
                ],
            )
        item_keys = [(to_prefix(ns), key) for ns, key in puts]
        if deletes:
            db.executemany(
                f"DELETE FROM {ITEMS} WHERE prefix = %s AND key = %s",
                [(to_prefix(ns), key) for ns, key in deletes],
            )
        if upserts:
            db.executemany(UPSERT, [_row(item, op, now) for item, op in upserts])
        if has_vectors and item_keys:
            db.executemany(f"DELETE FROM {VECTORS} WHERE prefix = %s AND key = %s", item_keys)
        vectors = [
            (to_prefix(t.item[0]), t.item[1], t.field, doc_vectors[t.text])
            for t in doc_texts
            if doc_vectors.get(t.text) is not None
        ]
        if vectors:
            db.executemany(
                f"INSERT INTO {VECTORS} (prefix, key, field, embedding) VALUES (%s, %s, %s, %s)", vectors
            )


def _row(item: ItemId, op: PutOp, now: dt.datetime) -> tuple[Any, ...]:
    ns, key = item
    ttl = None if op.ttl is None else float(op.ttl)
    return (to_prefix(ns), key, list(ns), dict(op.value or {}), now, now, expiry(now, ttl), ttl)


def _message(puts: int, deletes: int, refreshes: int) -> str:
    parts = [
        f"{n} {what}" for n, what in ((puts, "put"), (deletes, "delete"), (refreshes, "ttl refresh")) if n
    ]
    return "langgraph store: " + ", ".join(parts)
