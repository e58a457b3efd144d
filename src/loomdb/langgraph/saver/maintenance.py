"""LoomSaver's whole-thread operations: delete, copy, prune, and the DeltaChannel ancestor walk.

Each public function here runs in one loomdb transaction (one commit), so a
failure leaves the thread as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ... import errors
from ...database import Database
from .codec import DELTA
from .read import chunks, write_refs
from .schema import TABLES, VALUE_COLUMNS, WRITE_COLUMNS, placeholders

_COPY = {
    "checkpoints": "checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, step, source, ts,"
    " checkpoint, metadata, channel_values, channel_refs",
    "checkpoint_writes": WRITE_COLUMNS,
    "checkpoint_values": VALUE_COLUMNS,
}


def delete_threads(db: Database, thread_ids: list[str]) -> None:
    """Delete every row of these threads from the three tables, in one commit."""
    with db.transaction(message="langgraph: delete threads"):
        for ids in chunks(thread_ids):
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE thread_id IN ({placeholders(len(ids))})", list(ids))


def copy_thread(db: Database, source: str, target: str) -> None:
    """Copy a thread's rows under a new thread id, in one commit."""
    with db.transaction(message=f"langgraph: copy thread {source} to {target}"):
        if db.execute("SELECT 1 FROM checkpoints WHERE thread_id = %s LIMIT 1", [target]).fetchone():
            raise errors.IntegrityError(
                f"thread {target!r} already has checkpoints: delete_thread it before copying into it"
            )
        for table, columns in _COPY.items():
            db.execute(
                f"INSERT INTO {table} (thread_id, {columns}) SELECT %s, {columns} FROM {table}"
                " WHERE thread_id = %s",
                [target, source],
            )


def delete_runs(db: Database, run_ids: list[str]) -> set[str]:
    """Delete the checkpoints of ``run_ids`` and their writes; return the threads touched."""
    if not run_ids:
        return set()
    touched: set[str] = set()
    with db.transaction(message="langgraph: delete runs"):
        doomed: dict[tuple[str, str], list[str]] = {}
        for ids in chunks(run_ids):
            rows = db.execute(
                "SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints"
                f" WHERE run_id IN ({placeholders(len(ids))})",
                list(ids),
            )
            for row in rows:
                doomed.setdefault((row["thread_id"], row["checkpoint_ns"]), []).append(row["checkpoint_id"])
        for (thread_id, ns), cids in doomed.items():
            touched.add(thread_id)
            for part in chunks(cids):
                marks = placeholders(len(part))
                params = [thread_id, ns, *part]
                scope = f"thread_id = %s AND checkpoint_ns = %s AND checkpoint_id IN ({marks})"
                db.execute(f"DELETE FROM checkpoint_writes WHERE {scope}", params)
                db.execute(f"DELETE FROM checkpoints WHERE {scope}", params)
                db.execute(
                    "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = %s"
                    f" AND checkpoint_ns = %s AND parent_checkpoint_id IN ({marks})",
                    params,
                )
        for thread_id in sorted(touched):
            _collect_garbage(db, thread_id)
    return touched


def keep_latest(db: Database, thread_id: str) -> None:
    """Keep each namespace's latest checkpoint (and what its DeltaChannels need), in one commit."""
    with db.transaction(message=f"langgraph: prune thread {thread_id}"):
        rows = db.execute(
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata,"
            " channel_values, channel_refs FROM checkpoints WHERE thread_id = %s",
            [thread_id],
        ).fetchall()
        by_ns: dict[str, dict[str, Any]] = {}
        for row in rows:
            by_ns.setdefault(row["checkpoint_ns"], {})[row["checkpoint_id"]] = row
        for ns, members in by_ns.items():
            head = max(members)
            kept = {head} | _delta_ancestors(members, head)
            gone = [cid for cid in members if cid not in kept]
            for part in chunks(gone):
                marks = placeholders(len(part))
                scope = f"thread_id = %s AND checkpoint_ns = %s AND checkpoint_id IN ({marks})"
                db.execute(f"DELETE FROM checkpoint_writes WHERE {scope}", [thread_id, ns, *part])
                db.execute(f"DELETE FROM checkpoints WHERE {scope}", [thread_id, ns, *part])
            orphans = [cid for cid in kept if (p := members[cid]["parent_checkpoint_id"]) and p not in kept]
            for part in chunks(orphans):
                db.execute(
                    "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = %s"
                    f" AND checkpoint_ns = %s AND checkpoint_id IN ({placeholders(len(part))})",
                    [thread_id, ns, *part],
                )
        _collect_garbage(db, thread_id)


def holds_value(row: Any, ch: str) -> bool:
    """Whether a checkpoint row stores a value for channel ``ch``."""
    return ch in (row["channel_values"] or {}) or ch in (row["channel_refs"] or {})


def _delta_ancestors(members: dict[str, Any], head: str) -> set[str]:
    """Ancestors of ``head`` its DeltaChannels are rebuilt from, back to each one's seed."""
    counters = (members[head]["metadata"] or {}).get("counters_since_delta_snapshot") or {}
    remaining = {ch for ch in counters if not holds_value(members[head], ch)}
    kept: set[str] = set()
    cid = members[head]["parent_checkpoint_id"]
    while remaining and cid and cid in members:
        kept.add(cid)
        remaining = {ch for ch in remaining if not holds_value(members[cid], ch)}
        cid = members[cid]["parent_checkpoint_id"]
    return kept


def _collect_garbage(db: Database, thread_id: str) -> None:
    """Delete the thread's values no remaining checkpoint or write uses (inside a transaction).

    A list delta keeps the chain it extends (its base, its root, their content).
    """
    live: set[str] = set()
    for row in db.execute("SELECT channel_refs FROM checkpoints WHERE thread_id = %s", [thread_id]):
        live.update((row["channel_refs"] or {}).values())
    live |= write_refs(db.execute("SELECT writes FROM checkpoint_writes WHERE thread_id = %s", [thread_id]))
    links = {
        row["hash"]: (row["ref"], row["base"], row["root"])
        for row in db.execute(
            "SELECT hash, ref, base, root FROM checkpoint_values WHERE thread_id = %s AND type = %s",
            [thread_id, DELTA],
        )
    }
    todo = [h for h in live if h in links]
    while todo:
        for linked in links[todo.pop()]:
            if linked is not None and linked not in live:
                live.add(linked)
                if linked in links:
                    todo.append(linked)
    stored = [
        row["hash"]
        for row in db.execute("SELECT hash FROM checkpoint_values WHERE thread_id = %s", [thread_id])
    ]
    for part in chunks([h for h in stored if h not in live]):
        db.execute(
            f"DELETE FROM checkpoint_values WHERE thread_id = %s AND hash IN ({placeholders(len(part))})",
            [thread_id, *part],
        )


# -- the DeltaChannel ancestor walk -------------------------------------------------------------


@dataclass
class DeltaWalk:
    """Per channel: the ancestor ids walked (nearest first) and its seed (inline value or hash)."""

    chain: dict[str, list[str]] = field(default_factory=dict)
    seed_inline: dict[str, Any] = field(default_factory=dict)
    seed_ref: dict[str, str] = field(default_factory=dict)


_PAGE = 256
_WALK_COLUMNS = "checkpoint_id, parent_checkpoint_id, channel_values, channel_refs"


def delta_walk(
    db: Database, thread_id: str, ns: str, checkpoint_id: str | None, channels: list[str]
) -> DeltaWalk:
    """Walk the target's parent links until every channel finds a stored value (or the root)."""
    walk = DeltaWalk(chain={ch: [] for ch in channels})
    if checkpoint_id:
        target = db.execute(
            f"SELECT {_WALK_COLUMNS} FROM checkpoints"
            " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
            [thread_id, ns, checkpoint_id],
        ).fetchone()
    else:
        target = db.execute(
            f"SELECT {_WALK_COLUMNS} FROM checkpoints"
            " WHERE thread_id = %s AND checkpoint_ns = %s ORDER BY checkpoint_id DESC LIMIT 1",
            [thread_id, ns],
        ).fetchone()
    if target is None:
        return walk
    rows: dict[str, Any] = {}
    remaining = set(channels)
    cid = target["parent_checkpoint_id"]
    while cid and remaining:
        if cid not in rows:
            page = _ancestor_page(db, thread_id, ns, cid)
            if cid not in page:
                break  # the parent is gone (pruned or deleted): the walk ends at a root
            rows.update(page)
        row = rows[cid]
        for ch in list(remaining):
            walk.chain[ch].append(cid)
            inline, refs = row["channel_values"] or {}, row["channel_refs"] or {}
            if ch in inline:
                walk.seed_inline[ch] = inline[ch]
            elif ch in refs:
                walk.seed_ref[ch] = refs[ch]
            else:
                continue
            remaining.discard(ch)
        cid = row["parent_checkpoint_id"]
    return walk


def _ancestor_page(db: Database, thread_id: str, ns: str, wanted: str) -> dict[str, Any]:
    """A page of checkpoints from ``wanted`` down (ids are time-ordered uuid6, parents sort lower)."""
    page = {
        row["checkpoint_id"]: row
        for row in db.execute(
            f"SELECT {_WALK_COLUMNS} FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s"
            " AND checkpoint_id <= %s ORDER BY checkpoint_id DESC LIMIT %s",
            [thread_id, ns, wanted, _PAGE],
        )
    }
    if wanted not in page:
        # A parent whose id sorts above its child (ids from another clock): look it up alone.
        row = db.execute(
            f"SELECT {_WALK_COLUMNS} FROM checkpoints"
            " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
            [thread_id, ns, wanted],
        ).fetchone()
        if row is not None:
            page = {wanted: row}
    return page
