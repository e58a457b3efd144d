"""Lists of floats (embeddings) in LoomSaver's storage form: lossless, and smaller
than the 9 bytes a value msgpack spends.

A list is stored as float32s when nearly all of its values are exactly float32
values (an embedding that was a float32 array before ``tolist()``, as local
models and the OpenAI client give them): 4 bytes a value, the few others kept
apart at full width. Any other list is stored as float64s, 8 bytes a value.

Either way the first byte of every value (its sign and top exponent bits, which
vary little across an embedding) is stored as a plane of its own,
zstd-compressed, and the remaining bytes as they are: a float32 list then
costs about 3.5 bytes a value, a float64 list 7.3, for about 10 µs on 1536
values.

Formats (all integers and floats big-endian):

* ``f64z``: the byte plane (below), the float64s' other 7 bytes each.
* ``f32``: ``k`` (u32), the positions of the ``k`` values float32 cannot hold
  bit for bit (``k`` u32), their float64s (``k`` x 8 bytes), then the byte
  plane and the float32s' other 3 bytes each.
* ``f64`` (written by earlier versions, still read): the bare float64s.

The byte plane is the length ``z`` (u32) of its zstd frame and that frame, or
``z`` = 0 and one byte a value, uncompressed, when zstd would not save.
"""

from __future__ import annotations

import numpy as np

from . import zstd

ODD_SHARE = 8  # float32s only when at most 1 value in this many needs its float64


def pack(data: bytes, offset: int = 0, stride: int = 8) -> tuple[str, bytes]:
    """Float64s in storage form: ``(format, bytes)``.

    The values are ``data``'s big-endian float64s from ``offset`` on, one every
    ``stride`` bytes, each in the last 8 bytes of its ``stride`` (9 for
    msgpack's array items, whose first byte is their tag).
    """
    skip = stride - 8
    count = (len(data) - offset) // stride
    grid = np.frombuffer(data, np.uint8, count * stride, offset).reshape(count, stride)[:, skip:]
    # A float32's float64 ends in 29 zero bits: test the last byte before converting.
    if data[offset + skip + 7 :: stride].count(0) * ODD_SHARE >= count * (ODD_SHARE - 1):
        wide = np.ascontiguousarray(grid).view(">f8").ravel()
        with np.errstate(over="ignore", invalid="ignore"):
            narrow = wide.astype(">f4")
        odd = np.flatnonzero(narrow.astype(">f8").view(">u8") != wide.view(">u8"))
        if len(odd) * ODD_SHARE <= count:
            head = b"".join((len(odd).to_bytes(4, "big"), odd.astype(">u4").tobytes(), wide[odd].tobytes()))
            raw = narrow.tobytes()
            return "f32", head + _plane(raw[0::4]) + narrow.view(np.uint8).reshape(count, 4)[:, 1:].tobytes()
    return "f64z", _plane(data[offset + skip :: stride]) + grid[:, 1:].tobytes()


def unpack(form: str, data: bytes) -> bytes | None:
    """The big-endian float64s stored in ``form``, or None when ``data`` is not in it."""
    if form == "f64":
        return data if len(data) % 8 == 0 else None
    if form == "f64z":
        return _unplanes(data, 8)
    if form != "f32" or len(data) < 4:
        return None
    k = int.from_bytes(data[:4], "big")
    start = 4 + 12 * k
    narrow = _unplanes(data[start:], 4) if len(data) >= start else None
    if narrow is None:
        return None
    wide = np.frombuffer(narrow, ">f4").astype(">f8")
    positions = np.frombuffer(data, ">u4", k, 4)
    if k and int(positions.max()) >= len(wide):
        return None
    wide[positions] = np.frombuffer(data, ">f8", k, 4 + 4 * k)
    return wide.tobytes()


def _plane(first: bytes) -> bytes:
    """The byte plane of the values' first bytes: its zstd frame, or them as they are."""
    packed = zstd.compress(first)
    return len(packed).to_bytes(4, "big") + packed if len(packed) < len(first) else bytes(4) + first


def _unplanes(data: bytes, width: int) -> bytes | None:
    """A byte plane and the values' other bytes (``width`` bytes a value in all) back
    to the values, or None when ``data`` is not that form."""
    if len(data) < 4:
        return None
    z = int.from_bytes(data[:4], "big")
    if z == 0:
        count, extra = divmod(len(data) - 4, width)
        first, rest = data[4 : 4 + count], data[4 + count :]
    else:
        count, extra = divmod(len(data) - 4 - z, width - 1)
        first = zstd.decompress(data[4 : 4 + z])
        if first is None:
            return None
        rest = data[4 + z :]
    if extra or count < 0 or len(first) != count:
        return None
    grid = np.empty((count, width), np.uint8)
    grid[:, 0] = np.frombuffer(first, np.uint8)
    grid[:, 1:] = np.frombuffer(rest, np.uint8).reshape(count, width - 1)
    return grid.tobytes()
