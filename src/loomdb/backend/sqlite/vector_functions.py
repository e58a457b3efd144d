"""pgvector's functions, operators and aggregates for the SQLite engine, value for value.

pgvector sums in float32, in the order its compiled loops add (see
:func:`loomdb.backend.pgvector_math.accumulate`), then widens to double: ``l2_distance`` is
``sqrt((double) sum(diff * diff))``, ``<#>`` is ``(double) -sum(a * b)``,
``cosine_distance`` divides ``(double) dot`` by ``sqrt((double) |a|² * (double) |b|²)``,
``l1_distance`` is ``(double) sum(|diff|)``. sqlite-vec computes in float32
throughout (its results differ in the last digits), so the SQL the dialect
writes calls these functions instead. A vector is stored as little-endian
float32 bytes; a vector literal arrives as its text (``'[1,2,3]'``).

>>> round(l2_distance(b'\\x00\\x00\\x80?\\x00\\x00\\x00\\x00', '[0,1]'), 15)
1.414213562373095
>>> vector_text(vector_in('[0.1,1e-05,100000,1e7]', 0))
'[0.1,1e-05,100000,1e+07]'
"""

from __future__ import annotations

import functools
import math
import struct
from typing import Any

import numpy as np

from ... import errors
from ...types import load_json
from ..pgvector_math import SMALL, norm_squared, scalar, small

_F32 = np.float32
_F64 = np.float64


def parse_vector(value: Any) -> np.ndarray | None:
    """A vector operand (stored float32 bytes or pgvector text) as a float32 array;
    None for NULL, DataError for anything else (as pgvector's input function)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        if len(value) % 4:
            raise errors.DataError("a vector must hold float32 values", sqlstate="22P03")
        return np.frombuffer(value, dtype="<f4")
    if isinstance(value, str):
        return _parse_text(value)
    raise errors.ProgrammingError(
        f"operator does not exist: vector and {type(value).__name__}", sqlstate="42883"
    )


@functools.lru_cache(maxsize=256)
def _parse_text(value: str) -> np.ndarray:
    """pgvector's text input (a literal of the statement: parsed once), read-only."""
    text = value.strip()
    if not text.startswith("["):
        raise errors.DataError(f'invalid input syntax for type vector: "{value}"', sqlstate="22P02")
    try:
        items = load_json(text)
        if not isinstance(items, list) or any(isinstance(i, (bool, str, list, dict)) for i in items):
            raise ValueError(text)
        arr = np.asarray(items, dtype=_F32)
    except (ValueError, TypeError, OverflowError):
        raise errors.DataError(f'invalid input syntax for type vector: "{value}"', sqlstate="22P02") from None
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise errors.DataError("vector must have at least 1 dimension", sqlstate="22000")
    if not np.isfinite(arr).all():
        bad = "NaN not allowed in vector" if np.isnan(arr).any() else "infinite value not allowed in vector"
        raise errors.DataError(bad, sqlstate="22000")
    arr.flags.writeable = False
    return arr


@functools.lru_cache(maxsize=256)
def _small_text(value: str) -> tuple[float, ...]:
    """A short vector literal's elements (see :func:`_operand`)."""
    return tuple(_parse_text(value).tolist())


def _operand(value: Any) -> Any:
    """A distance operand: a tuple of floats below ``SMALL`` dimensions (computed in
    plain Python), else a float32 array; None for NULL."""
    if isinstance(value, bytes) and len(value) < 4 * SMALL and len(value) % 4 == 0:
        return struct.unpack(f"<{len(value) // 4}f", value)
    if isinstance(value, str) and len(value) < 64:
        parsed = _small_text(value)
        if len(parsed) < SMALL:
            return parsed
    vector = parse_vector(value)
    if vector is not None and vector.shape[0] < SMALL:
        return tuple(vector.tolist())  # Python floats: a product of two is exact
    return vector


def _distance(op: str, a: Any, b: Any) -> float | None:
    """pgvector's distance ``op`` between two operands (NULL when either is NULL)."""
    x, y = _operand(a), _operand(b)
    if x is None or y is None:
        return None
    if len(x) != len(y):
        raise errors.DataError(f"different vector dimensions {len(x)} and {len(y)}", sqlstate="22000")
    if len(x) < SMALL:
        return small(op, x, y)
    return scalar(op, np.asarray(x, dtype=_F32), np.asarray(y, dtype=_F32))


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Both operands as vectors of one dimension (None when either is NULL)."""
    x, y = parse_vector(a), parse_vector(b)
    if x is None or y is None:
        return None
    if x.shape[0] != y.shape[0]:
        raise errors.DataError(f"different vector dimensions {x.shape[0]} and {y.shape[0]}", sqlstate="22000")
    return x, y


# -- distances ---------------------------------------------------------------------------


def l2_distance(a: Any, b: Any) -> float | None:
    """pgvector's ``a <-> b`` and ``l2_distance(a, b)``."""
    return _distance("l2", a, b)


def negative_inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``a <#> b``."""
    return _distance("ip", a, b)


def inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``inner_product(a, b)``."""
    negative = _distance("ip", a, b)
    return None if negative is None else -negative


def cosine_rank(a: Any, b: Any) -> float | None:
    """pgvector's ``a <=> b`` as a sort key: infinity for its NaN (a zero vector),
    which PostgreSQL sorts after every number, as SQLite sorts infinity."""
    distance = _distance("cosine", a, b)
    return math.inf if distance is not None and math.isnan(distance) else distance


def cosine_distance(a: Any, b: Any) -> float | None:
    """pgvector's ``a <=> b`` and ``cosine_distance(a, b)``. PostgreSQL's answer
    for a zero vector is NaN, which SQLite cannot hold (it would become NULL):
    NotSupportedError then."""
    distance = cosine_rank(a, b)
    if distance == math.inf:
        raise errors.NotSupportedError(
            "cosine distance of a zero vector (NaN) is not supported by loomdb on SQLite"
            " (SQLite cannot hold NaN)"
        )
    return distance


def l1_distance(a: Any, b: Any) -> float | None:
    """pgvector's ``l1_distance(a, b)`` (``a <+> b``)."""
    return _distance("l1", a, b)


# -- functions -----------------------------------------------------------------------------


def vector_norm(a: Any) -> float | None:
    """pgvector's ``vector_norm(a)``, in double precision."""
    x = parse_vector(a)
    return None if x is None else math.sqrt(float(norm_squared(x)))


def vector_dims(a: Any) -> int | None:
    """pgvector's ``vector_dims(a)``."""
    x = parse_vector(a)
    return None if x is None else int(x.shape[0])


def l2_normalize(a: Any) -> bytes | None:
    """pgvector's ``l2_normalize(a)``: each element over the double norm (a zero vector stays zero)."""
    x = parse_vector(a)
    if x is None:
        return None
    norm = math.sqrt(float(norm_squared(x)))
    if norm <= 0:
        return np.zeros(x.shape[0], dtype="<f4").tobytes()
    return _checked((x.astype(_F64) / norm).astype(_F32))


def subvector(a: Any, start: Any, count: Any) -> bytes | None:
    """pgvector's ``subvector(a, start, count)`` (1-based, clipped to the vector)."""
    x = parse_vector(a)
    if x is None or start is None or count is None:
        return None
    end = int(start) + int(count)
    first = max(int(start), 1)
    end = min(end, x.shape[0] + 1)
    if end - first < 1:
        raise errors.DataError("vector must have at least 1 dimension", sqlstate="22000")
    return x[first - 1 : end - 1].astype("<f4").tobytes()


def vector_in(value: Any, dim: Any) -> bytes | None:
    """``value::vector`` or ``value::vector(dim)`` (``dim`` 0: no dimension given)."""
    x = parse_vector(value)
    if x is None:
        return None
    if dim and x.shape[0] != int(dim):
        raise errors.DataError(f"expected {int(dim)} dimensions, not {x.shape[0]}", sqlstate="22000")
    return x.astype("<f4").tobytes()


def _float4_text(value: np.float32) -> str:
    """PostgreSQL's shortest float4 text: fixed for exponents -4 to 5, else ``1e+07``."""
    if value == 0:
        return "-0" if math.copysign(1.0, float(value)) < 0 else "0"
    text = np.format_float_scientific(value, unique=True, trim="-")
    mantissa, _, power = text.partition("e")
    exponent = int(power)
    if -4 <= exponent < 6:
        return np.format_float_positional(value, unique=True, trim="-")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def vector_text(a: Any) -> str | None:
    """pgvector's text of a vector: ``[1,2.5,1e-05]``."""
    x = parse_vector(a)
    return None if x is None else "[" + ",".join(_float4_text(v) for v in x) + "]"


def vector_cmp(a: Any, b: Any) -> int | None:
    """pgvector's comparison: element by element, then the shorter first (-1, 0, 1)."""
    x, y = parse_vector(a), parse_vector(b)
    if x is None or y is None:
        return None
    n = min(x.shape[0], y.shape[0])
    differ = np.flatnonzero(x[:n] != y[:n])
    if differ.size:
        i = differ[0]
        return -1 if x[i] < y[i] else 1
    return (x.shape[0] > y.shape[0]) - (x.shape[0] < y.shape[0])


def vector_key(a: Any) -> bytes | None:
    """A blob whose byte order is pgvector's order of vectors: each element's
    float32 bits made order-preserving (sign flipped, negatives inverted; -0 as
    0), big-endian, so a shorter vector that is a prefix sorts first."""
    x = parse_vector(a)
    if x is None:
        return None
    bits = (x.astype(_F32) + _F32(0)).view("<u4").astype(np.uint32)  # + 0 turns -0 into 0
    negative = (bits & 0x80000000) != 0
    keyed = np.where(negative, ~bits, bits | 0x80000000).astype(">u4")
    return keyed.tobytes()


def _checked(result: np.ndarray, x: np.ndarray | None = None, y: np.ndarray | None = None) -> bytes:
    """``result`` as a stored vector; 22003 for an overflow (or an underflow of a product)."""
    if np.isinf(result).any():
        raise errors.DataError("value out of range: overflow", sqlstate="22003")
    if x is not None and y is not None and ((result == 0) & (x != 0) & (y != 0)).any():
        raise errors.DataError("value out of range: underflow", sqlstate="22003")
    return result.astype("<f4").tobytes()


def vector_add(a: Any, b: Any) -> bytes | None:
    """pgvector's ``a + b`` (element-wise, float32)."""
    pair = _pair(a, b)
    if pair is None:
        return None
    with np.errstate(over="ignore"):
        return _checked(pair[0] + pair[1])


def vector_sub(a: Any, b: Any) -> bytes | None:
    """pgvector's ``a - b``."""
    pair = _pair(a, b)
    if pair is None:
        return None
    with np.errstate(over="ignore"):
        return _checked(pair[0] - pair[1])


def vector_mul(a: Any, b: Any) -> bytes | None:
    """pgvector's ``a * b`` (element-wise)."""
    pair = _pair(a, b)
    if pair is None:
        return None
    with np.errstate(over="ignore", under="ignore"):
        return _checked(pair[0] * pair[1], pair[0], pair[1])


# -- aggregates ------------------------------------------------------------------------------


class VectorAvg:
    """pgvector's ``avg(vector)``: float8 sums, divided by the count, as float32."""

    def __init__(self) -> None:
        self.sums: np.ndarray | None = None
        self.count = 0

    def step(self, value: Any) -> None:
        """Add one row (NULLs are skipped)."""
        x = parse_vector(value)
        if x is None:
            return
        if self.sums is None:
            self.sums = x.astype(_F64)
        else:
            if x.shape[0] != self.sums.shape[0]:
                raise errors.DataError(
                    f"expected {self.sums.shape[0]} dimensions, not {x.shape[0]}", sqlstate="22000"
                )
            with np.errstate(over="ignore"):
                self.sums = self.sums + x
            if np.isinf(self.sums).any():
                raise errors.DataError("value out of range: overflow", sqlstate="22003")
        self.count += 1

    def final(self) -> bytes | None:
        """The average, NULL over no rows."""
        if self.sums is None:
            return None
        return (self.sums / float(self.count)).astype("<f4").tobytes()


class VectorSum:
    """pgvector's ``sum(vector)``: vector_add over the rows (float32)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None

    def step(self, value: Any) -> None:
        """Add one row (NULLs are skipped)."""
        x = parse_vector(value)
        if x is None:
            return
        if self.total is None:
            self.total = x.astype(_F32)
            return
        if x.shape[0] != self.total.shape[0]:
            raise errors.DataError(
                f"different vector dimensions {self.total.shape[0]} and {x.shape[0]}", sqlstate="22000"
            )
        with np.errstate(over="ignore"):
            total = self.total + x
        if np.isinf(total).any():
            raise errors.DataError("value out of range: overflow", sqlstate="22003")
        self.total = total

    def final(self) -> bytes | None:
        """The sum, NULL over no rows."""
        return None if self.total is None else self.total.astype("<f4").tobytes()


def _aggregate(cls: type) -> Any:
    """An apsw aggregate factory: ``(state, step, final)`` for a fresh ``cls``."""

    def factory() -> tuple[Any, Any, Any]:
        state = cls()
        return state, lambda _ctx, value: state.step(value), lambda _ctx: state.final()

    return factory


#: The deterministic scalar functions: (SQL name, function, number of arguments).
VECTOR_FUNCTIONS: tuple[tuple[str, Any, int], ...] = (
    ("loom_l2_distance", l2_distance, 2),
    ("loom_cosine_distance", cosine_distance, 2),
    ("loom_cosine_rank", cosine_rank, 2),
    ("loom_inner_product", inner_product, 2),
    ("loom_negative_inner_product", negative_inner_product, 2),
    ("loom_l1_distance", l1_distance, 2),
    ("loom_vector_norm", vector_norm, 1),
    ("loom_vector_dims", vector_dims, 1),
    ("loom_l2_normalize", l2_normalize, 1),
    ("loom_subvector", subvector, 3),
    ("loom_vector", vector_in, 2),
    ("loom_vector_text", vector_text, 1),
    ("loom_vector_cmp", vector_cmp, 2),
    ("loom_vector_key", vector_key, 1),
    ("loom_vector_add", vector_add, 2),
    ("loom_vector_sub", vector_sub, 2),
    ("loom_vector_mul", vector_mul, 2),
)
#: The aggregates: (SQL name, factory).
VECTOR_AGGREGATES: tuple[tuple[str, Any], ...] = (
    ("loom_vector_avg", _aggregate(VectorAvg)),
    ("loom_vector_sum", _aggregate(VectorSum)),
)
