"""Reading LoomSaver's tables back into LangGraph objects.

Values are fetched for many hashes at once, list deltas are rebuilt from
their chains, and pending writes (one row per task and ``put_writes`` call)
are unpacked and sorted the way LangGraph replays them (``writes_sort_key``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langgraph.checkpoint.base import PendingWrite, writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol

from ... import errors
from ...database import Database
from .codec import DELTA, JSON, ListState, decode, from_storage, join_array, split_array, unpack_writes
from .schema import VALUE_COLUMNS, WRITE_COLUMNS, placeholders

# Parameters per IN list: well under SQLite's limit, and short enough to plan quickly.
CHUNK = 400


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size`` (one IN list each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RawValue:
    """A stored value before decoding: ``(type, value, blob)``, plus its list state if it is a list."""

    __slots__ = ("type", "value", "blob", "list_state")

    def __init__(self, type_: str, value: Any, blob: bytes | None, list_state: ListState | None = None):
        self.type, self.value, self.blob, self.list_state = type_, value, blob, list_state

    def decode(self, serde: SerializerProtocol) -> Any:
        """The Python value (JSON as it is, anything else through ``serde``)."""
        return decode(serde, self.type, self.value, self.blob)


def _fetch(db: Database, thread_id: str, hashes: Iterable[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    wanted = sorted(set(hashes))
    for part in chunks(wanted):
        sql = (
            f"SELECT {VALUE_COLUMNS} FROM checkpoint_values"
            f" WHERE thread_id = %s AND hash IN ({placeholders(len(part))})"
        )
        for row in db.execute(sql, [thread_id, *part]):
            rows[row["hash"]] = from_storage(row)
    return rows


def load_refs(db: Database, thread_id: str, hashes: Iterable[str]) -> dict[str, RawValue]:
    """The values stored under these hashes (list deltas rebuilt); missing hashes are left out."""
    out: dict[str, RawValue] = {}
    for h, row in _fetch(db, thread_id, hashes).items():
        if row["type"] == DELTA:
            out[h] = _rebuild(db, thread_id, row)
        else:
            out[h] = RawValue(row["type"], row["value"], row["blob"], _whole_list_state(row))
    return out


def _whole_list_state(row: Any) -> ListState | None:
    if row["type"] == JSON or row["blob"] is None:
        return None
    parts = split_array(bytes(row["blob"]))
    if parts is None:
        return None
    return ListState(row["hash"], parts.wrap, parts.count, parts.body, row["hash"], parts.count, 0)


def _rebuild(db: Database, thread_id: str, target: Any) -> RawValue:
    """Concatenate a delta chain, from its whole copy (``root``) to ``target``."""
    nodes = {
        row["hash"]: row
        for row in db.execute(
            f"SELECT {VALUE_COLUMNS} FROM checkpoint_values WHERE thread_id = %s AND root = %s AND type = %s",
            [thread_id, target["root"], DELTA],
        )
    }
    path = []
    node = target
    while node is not None and node["type"] == DELTA:
        path.append(node)
        node = nodes.get(node["base"]) if node["base"] != node["root"] else None
    if not path or path[-1]["base"] != target["root"]:
        raise errors.DataError(
            f"list value {target['hash']!r} of thread {thread_id!r} has lost part of its chain"
        )
    contents = _fetch(db, thread_id, [target["root"], *(n["ref"] for n in path if n["ref"] is not None)])
    bodies = []
    for part in [contents.get(target["root"]), *reversed(path)]:
        blob = None
        if part is not None:
            blob = (
                part["blob"]
                if part["blob"] is not None
                else getattr(contents.get(part["ref"]), "get", dict)("blob")
            )
        parts = split_array(bytes(blob)) if blob is not None else None
        if parts is None:
            raise errors.DataError(f"list value {target['hash']!r} of thread {thread_id!r} has lost a part")
        bodies.append(parts)
    body = b"".join(p.body for p in bodies)
    count = int(target["items"])
    data = join_array(target["wrap"], count, body)
    state = ListState(target["hash"], target["wrap"], count, body, target["root"], bodies[0].count, len(path))
    return RawValue("msgpack", None, data, state)


def fetch_writes(db: Database, thread_id: str, ns: str, checkpoint_ids: Sequence[str]) -> list[Any]:
    """The ``checkpoint_writes`` rows of these checkpoints (writes still encoded)."""
    rows: list[Any] = []
    for ids in chunks(list(checkpoint_ids)):
        rows.extend(
            db.execute(
                f"SELECT {WRITE_COLUMNS} FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s"
                f" AND checkpoint_id IN ({placeholders(len(ids))})",
                [thread_id, ns, *ids],
            )
        )
    return rows


def write_refs(rows: Iterable[Any]) -> set[str]:
    """The ``checkpoint_values`` hashes the writes of these rows name."""
    return {item["ref"] for row in rows for item in row["writes"] if item.get("ref") is not None}


def decode_writes(
    serde: SerializerProtocol, thread_id: str, rows: Iterable[Any], raws: Mapping[str, RawValue]
) -> dict[str, list[PendingWrite]]:
    """Pending writes per checkpoint id, each list in ``writes_sort_key`` order.

    ``raws`` holds (at least) the values the writes name by hash (``write_refs``).
    """
    found: dict[str, list[tuple[tuple[str, str, int], PendingWrite]]] = defaultdict(list)
    for row in rows:
        task_id, task_path = row["task_id"], row["task_path"]
        for e in unpack_writes(row["idx"], row["writes"], row["blob"]):
            if e.ref is not None:
                raw = raws.get(e.ref)
                if raw is None:
                    raise errors.DataError(
                        f"a write of task {task_id!r} in thread {thread_id!r} names value {e.ref!r},"
                        " which is not stored"
                    )
                value = raw.decode(serde)
            else:
                value = decode(serde, e.type, e.value, e.blob)
            key = writes_sort_key(task_path, task_id, e.idx)
            found[row["checkpoint_id"]].append((key, (task_id, e.channel, value)))
    return {cid: [w for _, w in sorted(items, key=lambda kw: kw[0])] for cid, items in found.items()}
