"""LoomSaver's float list forms (loomdb.langgraph.saver.floats) give back every
float64 bit for bit, and refuse bytes that are not in the form they name."""

from __future__ import annotations

import numpy as np
import ormsgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from loomdb.langgraph.saver import floats
from loomdb.langgraph.saver.codec import from_storage

# Any 64-bit pattern: NaNs with payloads, infinities, -0.0, subnormals.
any_bits = st.integers(min_value=0, max_value=2**64 - 1)
float32_bits = st.integers(min_value=0, max_value=2**32 - 1).map(
    lambda b: int(np.array([b], ">u4").view(">f4").astype(">f8").view(">u8")[0])
)


def as_bytes(bits: list[int]) -> bytes:
    return np.array(bits, dtype=">u8").tobytes()


@settings(deadline=None, max_examples=300)
@given(st.lists(st.one_of(float32_bits, float32_bits, float32_bits, any_bits), min_size=1, max_size=600))
def test_pack_then_unpack_gives_back_every_bit(bits):
    data = as_bytes(bits)
    form, packed = floats.pack(data)
    assert floats.unpack(form, packed) == data
    odd = sum(1 for b in bits if b not in set(as_float32_exact(bits)))
    assert form == ("f32" if odd * floats.ODD_SHARE <= len(bits) else "f64z")


def as_float32_exact(bits: list[int]) -> list[int]:
    """The patterns of ``bits`` a float32 holds bit for bit."""
    wide = np.array(bits, dtype=">u8").view(">f8")
    with np.errstate(over="ignore", invalid="ignore"):
        back = wide.astype(">f4").astype(">f8").view(">u8")
    return [b for b, r in zip(bits, back.tolist(), strict=True) if b == r]


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(["f32", "f64z", "f64"]), st.binary(max_size=200))
def test_bytes_not_in_the_form_are_refused_not_crashed_on(form, junk):
    out = floats.unpack(form, junk)
    assert out is None or len(out) % 8 == 0


def test_an_embedding_of_float32s_takes_about_three_and_a_half_bytes_a_value():
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal(1536).astype(np.float32).astype(">f8")
    form, packed = floats.pack(embedding.tobytes())
    assert form == "f32" and len(packed) < 3.7 * 1536
    wide = rng.standard_normal(1536).astype(">f8")
    form, packed = floats.pack(wide.tobytes())
    assert form == "f64z" and len(packed) < 7.5 * 1536


def test_rows_of_earlier_versions_bare_float64s_still_read_back():
    """``f64+msgpack`` rows (bare big-endian float64s) were written before the
    compact forms; reading one gives the serde's msgpack bytes exactly."""
    values = np.random.default_rng(1).standard_normal(300).tolist()
    stored = {"hash": "h", "type": "f64+msgpack", "blob": np.array(values, ">f8").tobytes()}
    read = from_storage(stored)
    assert read["type"] == "msgpack" and read["blob"] == ormsgpack.packb(values)
