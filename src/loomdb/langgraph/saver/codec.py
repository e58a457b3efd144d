"""How LoomSaver turns channel values and writes into columns, and back.

A value is stored in one of two forms:

* an exact JSON primitive (a ``str`` without NUL, an ``int`` that fits 64
  bits, a finite ``float`` whose ``repr`` has no exponent, a ``bool`` or
  ``None``) is kept as JSON, so SQL reads it directly;
* anything else is the saver's serde bytes, with the serde's type tag.

A small value sits in the row that uses it (a checkpoint's
``channel_values`` map, a write's entry in its row's ``writes`` array, its
bytes in the row's ``blob``). From
``INLINE_MAX`` bytes on it moves to the content-addressed
``checkpoint_values`` table and the row holds its hash, so the same large
value is stored once per thread: a node's write and the channel value the
checkpoint then holds are the same bytes.

Lists grow by appending. When a channel's new value is a msgpack array (or a
msgpack ext wrapping one, as ``_DeltaSnapshot`` is) whose encoded items start
with the encoded items of the list stored before, only the appended items are
stored (as a msgpack array of their own, a content row like any other) plus a
small ``delta`` row naming that content, the list it extends (``base``) and
its chain's whole copy (``root``). Reading concatenates the chain. The
comparison is on bytes, so a rebuilt value decodes exactly as the whole one.

A msgpack array of float64s (an embedding) is stored in a compact lossless
form (types ``f32+msgpack`` and ``f64z+msgpack``, see :mod:`.floats`):
about 3.5 bytes a value for an embedding that was float32s, 7.3 for any
other, where msgpack spends 9. Any other msgpack value of 1 KB or more (a
state dict, a message history) is stored zstd-compressed (type
``zstd+msgpack``, level 1: about 12 µs for 4 KB) when that saves an eighth
or more. See :func:`for_storage`. The hash is always of the serde's bytes, and
every read of a content row goes through :func:`from_storage`, so nothing
else sees the difference.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson
from langgraph.checkpoint.serde.base import SerializerProtocol

from ... import errors
from . import floats as float_forms
from . import zstd

INLINE_MAX = 256
_INT64 = (-(2**63), 2**63 - 1)
JSON = "json"
DELTA = "delta"
_FLOAT_FORMS = ("f32", "f64z", "f64")  # float list forms (floats.py); "f64": earlier versions
ZSTD = "zstd"  # type prefix (before the "+") of a value stored zstd-compressed
_ZSTD_KEEP = 7 / 8  # compressed bytes are kept when at most this share of the original
_F64_MARK = 0xCB  # msgpack's float64 tag
_F64_TAGS = bytes((_F64_MARK,))
PACK_MIN = 1024  # smaller float arrays are stored as msgpack has them


class ValueRow(NamedTuple):
    """A ``checkpoint_values`` row (without its thread): content, or a list delta."""

    hash: str
    type: str
    value: Any = None
    blob: bytes | None = None
    ref: str | None = None
    base: str | None = None
    root: str | None = None
    wrap: int | None = None
    items: int | None = None


def is_json_primitive(value: Any) -> bool:
    """True for values JSON (and PostgreSQL's jsonb) hand back equal and of the same type."""
    kind = type(value)
    if value is None or kind is bool:
        return True
    if kind is str:
        return "\x00" not in value and _utf8(value)
    if kind is int:
        return _INT64[0] <= value <= _INT64[1]
    if kind is float:
        # jsonb turns 1e+16 into an integer and -0.0 into 0: keep those as bytes.
        negative_zero = value == 0.0 and math.copysign(1.0, value) < 0
        return math.isfinite(value) and "e" not in repr(value) and not negative_zero
    return False


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates: JSON text cannot carry them
        return False
    return True


def content_hash(type_: str, payload: bytes) -> str:
    """The key of a content row: BLAKE2b-128 of ``payload`` (personalised by its type),
    unpadded base64url: 22 characters where hex would take 32, in every row and
    index entry that names it."""
    digest = hashlib.blake2b(payload, digest_size=16, person=type_.encode()[:16]).digest()
    return base64.urlsafe_b64encode(digest)[:22].decode()


def for_storage(row: ValueRow) -> ValueRow:
    """``row`` as it is stored: a msgpack array of float64s (1 KB or more) in a
    float form of :mod:`.floats` (type ``f32+msgpack`` or
    ``f64z+msgpack``); any other msgpack value as long zstd-compressed (type
    ``zstd+msgpack``) when that saves an eighth or more; anything else unchanged.
    Idempotent: a row already in storage form is returned as it is."""
    data = row.blob
    if data is None or row.type != "msgpack" or len(data) < PACK_MIN:
        return row
    items = _float_items(data)
    if items is None:
        packed = zstd.compress(data)
        if len(packed) <= len(data) * _ZSTD_KEEP:
            return row._replace(type=f"{ZSTD}+{row.type}", blob=packed)
        return row
    form, packed = float_forms.pack(data, items, 9)
    return row._replace(type=f"{form}+{row.type}", blob=packed)


def from_storage(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ``checkpoint_values`` row as read, its blob back to the serde's bytes and its
    type to the serde's tag (:func:`for_storage` reversed). Bytes that do not
    parse in the form the type names raise DataError."""
    type_ = row["type"]
    form, plus, base = type_.partition("+")
    if not plus:
        return row
    if form in _FLOAT_FORMS:
        floats = float_forms.unpack(form, bytes(row["blob"] or b""))
        if floats is None:
            raise errors.DataError(
                f"value {row['hash']!r} is stored as {form} floats but its bytes do not parse as them"
            )
        return {**dict(row), "type": base, "blob": _msgpack_floats(floats)}
    if form == ZSTD:
        data = zstd.decompress(bytes(row["blob"] or b""))
        if data is None:
            raise errors.DataError(f"value {row['hash']!r} is stored compressed but does not decompress")
        return {**dict(row), "type": base, "blob": data}
    return row


def _float_items(data: bytes) -> int | None:
    """Where the items start in msgpack bytes holding an array of float64s only
    (each a tag byte and 8 bytes), else None."""
    parsed = _array(data)
    if parsed is None:
        return None
    count, offset = parsed
    if count == 0 or len(data) != offset + 9 * count or data[offset::9] != _F64_TAGS[:1] * count:
        return None
    return offset


def _msgpack_floats(packed: bytes) -> bytes:
    """The msgpack array of the big-endian float64s ``packed`` holds."""
    count = len(packed) // 8
    items = np.empty((count, 9), np.uint8)
    items[:, 0] = _F64_MARK
    items[:, 1:] = np.frombuffer(packed, np.uint8).reshape(count, 8)
    return array_header(count) + items.tobytes()


def json_bind(value: Any) -> Any:
    """A JSON primitive as a JSONB parameter (loomdb reads a bound str as JSON text)."""
    return orjson.dumps(value).decode() if type(value) is str else value


class WriteEntry(NamedTuple):
    """One pending write as a ``checkpoint_writes`` row holds it (see ``pack_writes``)."""

    idx: int
    channel: str
    type: str
    value: Any = None  # the JSON value itself (``type == "json"``, no ``ref``)
    blob: bytes | None = None  # the serde's bytes, when short
    ref: str | None = None  # the hash of its ``checkpoint_values`` row, when long


def encode_write(
    serde: SerializerProtocol, idx: int, channel: str, value: Any
) -> tuple[WriteEntry, ValueRow | None]:
    """Encode one write; the second item is the content row it needs, if any."""
    if is_json_primitive(value):
        if type(value) is str and len(value) >= INLINE_MAX:
            row = json_row(value)
            return WriteEntry(idx, channel, JSON, ref=row.hash), row
        return WriteEntry(idx, channel, JSON, value=value), None
    type_, data = serde.dumps_typed(value)
    if len(data) >= INLINE_MAX:
        h = content_hash(type_, data)
        return WriteEntry(idx, channel, type_, ref=h), ValueRow(h, type_, blob=data)
    return WriteEntry(idx, channel, type_, blob=data), None


def pack_writes(entries: Sequence[WriteEntry]) -> tuple[int, list[dict[str, Any]], bytes | None]:
    """The ``idx``, ``writes`` JSON array and ``blob`` bytes of a ``checkpoint_writes`` row.

    The row's ``idx`` is its first write's. One object per write, in order:
    ``channel``, then ``value`` (a JSON value, inline), or ``ref`` (the hash
    of its ``checkpoint_values`` row, which has its type), or ``type`` (the
    serde's tag) with ``blob`` (``[offset, length]`` of its bytes in the
    row's ``blob``); and ``idx`` where it is not the row's ``idx`` plus the
    write's position.
    """
    first = min(e.idx for e in entries)
    out: list[dict[str, Any]] = []
    parts: list[bytes] = []
    offset = 0
    for pos, e in enumerate(entries):
        item: dict[str, Any] = {"channel": e.channel}
        if e.idx != first + pos:
            item["idx"] = e.idx
        if e.ref is not None:
            item["ref"] = e.ref  # its checkpoint_values row has its type
        elif e.blob is not None:
            item["type"] = e.type
            item["blob"] = [offset, len(e.blob)]
            parts.append(e.blob)
            offset += len(e.blob)
        else:
            item["value"] = e.value
        out.append(item)
    return first, out, (b"".join(parts) if parts else None)


def write_indexes(first: int, items: Sequence[Mapping[str, Any]]) -> list[int]:
    """The ``idx`` of each write of a ``checkpoint_writes`` row whose ``idx`` is ``first``."""
    return [int(item.get("idx", first + pos)) for pos, item in enumerate(items)]


def unpack_writes(first: int, items: Sequence[Mapping[str, Any]], blob: bytes | None) -> list[WriteEntry]:
    """The writes of a ``checkpoint_writes`` row (``pack_writes`` reversed)."""
    out = []
    for idx, item in zip(write_indexes(first, items), items, strict=True):
        span = item.get("blob")
        data = None
        if span is not None:
            if blob is None:
                raise errors.DataError(f"write {item.get('channel')!r} names bytes its row does not have")
            data = bytes(blob[span[0] : span[0] + span[1]])
        out.append(
            WriteEntry(idx, item["channel"], item.get("type", JSON), item.get("value"), data, item.get("ref"))
        )
    return out


def json_row(text: str) -> ValueRow:
    """The content row of a long string, kept as JSON (hashed as its UTF-8)."""
    return ValueRow(content_hash(JSON, text.encode()), JSON, value=json_bind(text))


def decode(serde: SerializerProtocol, type_: str, value: Any, blob: bytes | None) -> Any:
    """The Python value of a stored ``(type, value, blob)``."""
    if type_ == JSON:
        return value
    return serde.loads_typed((type_, bytes(blob) if blob is not None else b""))


# -- msgpack arrays ------------------------------------------------------------------------


class ListBody(NamedTuple):
    """A msgpack array (optionally inside an ext) split into its parts."""

    wrap: int | None  # ext type code around the array, None for a bare array
    count: int
    body: bytes  # the encoded items, back to back


def split_array(data: bytes) -> ListBody | None:
    """Split msgpack bytes holding an array, or an ext holding one, else None."""
    wrap = None
    if data and data[0] in _EXT_HEADERS:
        parsed = _ext_payload(data)
        if parsed is None:
            return None
        wrap, data = parsed
    parsed_array = _array(data)
    if parsed_array is None:
        return None
    count, offset = parsed_array
    return ListBody(wrap, count, data[offset:])


def join_array(wrap: int | None, count: int, body: bytes) -> bytes:
    """The msgpack bytes of ``count`` encoded items (inside ext ``wrap`` if given)."""
    payload = array_header(count) + body
    return payload if wrap is None else ext_header(wrap, len(payload)) + payload


def array_header(count: int) -> bytes:
    """The msgpack header of an array of ``count`` items."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def ext_header(code: int, size: int) -> bytes:
    """The msgpack header of an ext of type ``code`` holding ``size`` bytes."""
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}.get(size)
    if fixed is not None:
        return bytes((fixed, code & 0xFF))
    if size < 0x100:
        return bytes((0xC7, size, code & 0xFF))
    if size < 0x10000:
        return b"\xc8" + size.to_bytes(2, "big") + bytes((code & 0xFF,))
    return b"\xc9" + size.to_bytes(4, "big") + bytes((code & 0xFF,))


_EXT_HEADERS = {0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}


def _ext_payload(data: bytes) -> tuple[int, bytes] | None:
    first = data[0]
    if 0xD4 <= first <= 0xD8:
        size, start = 1 << (first - 0xD4), 2
    else:
        width = {0xC7: 1, 0xC8: 2, 0xC9: 4}[first]
        if len(data) < 2 + width:
            return None
        size, start = int.from_bytes(data[1 : 1 + width], "big"), 2 + width
    if len(data) != start + size:
        return None
    return data[start - 1], data[start:]


def _array(data: bytes) -> tuple[int, int] | None:
    if not data:
        return None
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, 1
    if first == 0xDC and len(data) >= 3:
        return int.from_bytes(data[1:3], "big"), 3
    if first == 0xDD and len(data) >= 5:
        return int.from_bytes(data[1:5], "big"), 5
    return None


# -- the last list value of each channel, for deltas -------------------------------------------


@dataclass(slots=True)
class ListState:
    """What a delta against one stored list needs to know about it."""

    ref: str  # the hash a checkpoint names the list by (content or delta row)
    wrap: int | None
    count: int
    body: bytes
    root: str  # hash of the chain's whole copy
    root_count: int  # items in that copy
    chain: int  # deltas since that copy


class ListCache:
    """The newest stored list version per (thread, namespace, channel), bounded (LRU)."""

    def __init__(self, size: int = 256):
        self._size = size
        self._items: OrderedDict[tuple[str, str, str], ListState] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> ListState | None:
        state = self._items.get(key)
        if state is not None:
            self._items.move_to_end(key)
        return state

    def put(self, key: tuple[str, str, str], state: ListState) -> None:
        self._items[key] = state
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def forget_threads(self, thread_ids: set[str]) -> None:
        """Drop the entries of these threads: their rows may be gone."""
        for key in [k for k in self._items if k[0] in thread_ids]:
            del self._items[key]
