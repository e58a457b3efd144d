"""What a LoomSaver keeps in memory between calls, and the declaration of it
that the parts of the saver share (``SaverState``).

A saver remembers, per thread, where its recent checkpoints keep each channel
(``Stored``, in bounded ``Lru`` maps), which values are stored already, the
last list stored per channel (for deltas), and the ``put_writes`` calls it
has deferred (``Writes``, ``WriteRow``) until the thread's next checkpoint.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver

from ...database import Database
from .codec import ListCache, ValueRow, WriteEntry, pack_writes

K = TypeVar("K")
V = TypeVar("V")


class SaverState(BaseCheckpointSaver[str]):
    """The attributes LoomSaver's parts (``SaverWrites``, ``SaverThreads``,
    ``SaverAsync``) share; ``LoomSaver.__init__`` sets them. Declarations only."""

    db: Database  # the handle whose branch the saver reads and writes
    defer_writes: bool
    list_snapshot_after: int
    _pending: dict[str, list[Writes]]  # deferred put_writes calls per thread, oldest first
    _newest: Lru[tuple[str, str], str]  # the newest checkpoint put per (thread, namespace)
    _lists: ListCache  # the newest list stored per (thread, namespace, channel)
    _heads: Lru[tuple[str, str, str], Stored]  # where recent checkpoints keep each channel
    _known: Lru[tuple[str, str], None]  # (thread, hash) of values known to be stored
    _lock: threading.Lock  # guards the five above (LangGraph calls a saver from several threads)

    if TYPE_CHECKING:

        def _ready(self) -> None:
            """Set the tables up unless done (LoomSaver)."""

        def flush(self) -> None:
            """Commit every deferred pending write now (SaverWrites)."""


class WriteRow(NamedTuple):
    """A ``checkpoint_writes`` row: writes of one task from one ``put_writes`` call."""

    ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    entries: tuple[WriteEntry, ...]

    def params(self, thread_id: str) -> tuple:
        """The row's parameters for INSERT_WRITES and UPSERT_WRITES, in thread ``thread_id``."""
        idx, writes, blob = pack_writes(self.entries)
        return (thread_id, self.ns, self.checkpoint_id, self.task_id, idx, self.task_path, writes, blob)


class Writes(NamedTuple):
    """One ``put_writes`` call: its rows, the value rows they need, whether they replace."""

    rows: list[WriteRow]
    values: list[ValueRow]
    replace: bool
    # id(value) -> (value, its content row): a checkpoint put next holds the same
    # objects as channel values (LangGraph's LastValue keeps what was written),
    # and reuses the bytes and hash instead of encoding them again.
    encoded: dict[int, tuple[Any, ValueRow]]


class Stored:
    """Where a checkpoint keeps each channel's value: inline JSON, or a hash, per channel version."""

    __slots__ = ("versions", "inline", "refs")

    def __init__(self, versions: dict[str, str], inline: dict[str, Any], refs: dict[str, str]):
        self.versions, self.inline, self.refs = versions, inline, refs

    @classmethod
    def of(cls, row: Any) -> Stored:
        """Where the checkpoint of a ``checkpoints`` row keeps each channel."""
        versions = {ch: str(v) for ch, v in row["checkpoint"]["channel_versions"].items()}
        return cls(versions, dict(row["channel_values"] or {}), dict(row["channel_refs"] or {}))

    def holds(self, ch: str, version: Any) -> bool:
        """Whether this checkpoint stores a value for channel ``ch`` at ``version``."""
        return self.versions.get(ch) == str(version) and (ch in self.inline or ch in self.refs)

    def carry(self, other: Stored, ch: str, version: Any) -> None:
        """Keep channel ``ch`` (at ``version``) as ``other`` keeps it: the same inline value or hash."""
        self.versions[ch] = str(version)
        if ch in other.inline:
            self.inline[ch] = other.inline[ch]
        else:
            self.refs[ch] = other.refs[ch]

    def inline_json(self) -> dict[str, Any]:
        """The ``channel_values`` column: the channels kept inline, by name."""
        return self.inline


class Lru(Generic[K, V]):
    """A small bounded mapping, least recently used out first."""

    def __init__(self, size: int):
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        """The value of ``key``, or None; a value found becomes the most recently used."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Set ``key`` (now the most recently used); past the size, the least recently used goes."""
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, doomed: Callable[[K], bool]) -> None:
        """Remove every key ``doomed`` is true for."""
        for key in [k for k in self._items if doomed(k)]:
            del self._items[key]
