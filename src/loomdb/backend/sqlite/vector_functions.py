"""pgvector's functions, operators and aggregates for the SQLite engine, value for value.

pgvector sums in float32, in the order its compiled loops add (see
:func:`accumulate`), then widens to double: ``l2_distance`` is
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

import math
from typing import Any

import numpy as np

from ... import errors
from ...types import load_json

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
        text = value.strip()
        if not text.startswith("["):
            raise errors.DataError(f'invalid input syntax for type vector: "{value}"', sqlstate="22P02")
        try:
            items = load_json(text)
            if not isinstance(items, list) or any(isinstance(i, (bool, str, list, dict)) for i in items):
                raise ValueError(text)
            arr = np.asarray(items, dtype=_F32)
        except (ValueError, TypeError, OverflowError):
            raise errors.DataError(
                f'invalid input syntax for type vector: "{value}"', sqlstate="22P02"
            ) from None
        if arr.ndim != 1 or arr.shape[0] == 0:
            raise errors.DataError("vector must have at least 1 dimension", sqlstate="22000")
        if not np.isfinite(arr).all():
            bad = (
                "NaN not allowed in vector" if np.isnan(arr).any() else "infinite value not allowed in vector"
            )
            raise errors.DataError(bad, sqlstate="22000")
        return arr
    raise errors.ProgrammingError(
        f"operator does not exist: vector and {type(value).__name__}", sqlstate="42883"
    )


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Both operands as vectors of one dimension (None when either is NULL)."""
    x, y = parse_vector(a), parse_vector(b)
    if x is None or y is None:
        return None
    if x.shape[0] != y.shape[0]:
        raise errors.DataError(f"different vector dimensions {x.shape[0]} and {y.shape[0]}", sqlstate="22000")
    return x, y


def accumulate(x: np.ndarray, y: np.ndarray | None, fused: bool) -> Any:
    """The float32 sum of ``x * y`` (of ``x`` when ``y`` is None) over the last
    axis, added in pgvector's order: its auto-vectorised loops (compiled for
    x86-64 with AVX and FMA, as the PostgreSQL loomdb is tested against) keep
    8 lanes over the first ``n - n % 8`` elements, fold them to 4 lanes, take
    4 more elements fused (one rounding for ``lane + x * y``), add the 4 lanes
    as ``(l0 + l2) + (l1 + l3)`` and add the last elements one by one.
    ``fused`` says whether the 8-lane loop and the last elements fuse their
    multiply-adds too (pgvector's cosine loop does, its L2 and inner product
    loops do not). Other builds of pgvector (other CPUs, compilers) may
    differ from this in the last bit of a float32 sum."""
    n = x.shape[-1]
    lead = x.shape[:-1]
    main = n - n % 8
    if main:
        if fused and y is not None:
            products = (x[..., :main].astype(_F64) * y[..., :main]).reshape(*lead, main // 8, 8)
            acc = np.zeros((*lead, 8), dtype=_F64)
            for j in range(main // 8):
                acc = (acc + products[..., j, :]).astype(_F32).astype(_F64)
            lanes = acc.astype(_F32)
        else:
            terms = x[..., :main] if y is None else x[..., :main] * y[..., :main]
            # Summing over a non-contiguous axis, NumPy adds row after row (no pairwise sum).
            lanes = np.add.reduce(terms.reshape(*lead, main // 8, 8), axis=-2, dtype=_F32)
        fold = lanes[..., :4] + lanes[..., 4:]
    else:
        fold = np.zeros((*lead, 4), dtype=_F32)
    done = main
    if n - main >= 4:
        if y is None:
            fold = fold + x[..., main : main + 4]
        else:
            exact = x[..., main : main + 4].astype(_F64) * y[..., main : main + 4]
            fold = (fold.astype(_F64) + exact).astype(_F32)
        done += 4
    if done:
        acc32 = (fold[..., 0] + fold[..., 2]) + (fold[..., 1] + fold[..., 3])
    else:
        acc32 = np.zeros(lead, dtype=_F32)
    for j in range(done, n):
        if y is None:
            acc32 = acc32 + x[..., j]
        elif fused:
            acc32 = (acc32.astype(_F64) + x[..., j].astype(_F64) * y[..., j]).astype(_F32)
        else:
            acc32 = acc32 + x[..., j] * y[..., j]
    return acc32


def norm_squared(x: np.ndarray) -> Any:
    """pgvector's double-precision ``sum(x[i]²)`` (vector_norm, l2_normalize):
    4 lanes, added as ``(l0 + l2) + (l1 + l3)``, then the rest one by one."""
    n = x.shape[-1]
    main = n - n % 4
    squares = x.astype(_F64) ** 2
    if main:
        lanes = np.add.reduce(squares[..., :main].reshape(*x.shape[:-1], main // 4, 4), axis=-2)
        acc = (lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3])
    else:
        acc = np.zeros(x.shape[:-1], dtype=_F64)
    for j in range(main, n):
        acc = acc + squares[..., j]
    return acc


# -- distances ---------------------------------------------------------------------------


def l2_distance(a: Any, b: Any) -> float | None:
    """pgvector's ``a <-> b`` and ``l2_distance(a, b)``."""
    pair = _pair(a, b)
    if pair is None:
        return None
    diff = pair[0] - pair[1]
    return math.sqrt(float(accumulate(diff, diff, fused=False)))


def inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``inner_product(a, b)``."""
    pair = _pair(a, b)
    return None if pair is None else float(accumulate(pair[0], pair[1], fused=False))


def negative_inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``a <#> b``."""
    product = inner_product(a, b)
    return None if product is None else -product


def cosine_similarity(dot: float, norm_a: float, norm_b: float) -> float:
    """pgvector's similarity from float32 sums, clamped to [-1, 1] (NaN for a zero norm)."""
    product = norm_a * norm_b
    if product == 0 or math.isnan(product) or math.isnan(dot):
        return math.nan
    similarity = dot / math.sqrt(product)
    return max(-1.0, min(1.0, similarity))


def cosine_rank(a: Any, b: Any) -> float | None:
    """pgvector's ``a <=> b`` as a sort key: infinity for its NaN (a zero vector),
    which PostgreSQL sorts after every number, as SQLite sorts infinity."""
    pair = _pair(a, b)
    if pair is None:
        return None
    x, y = pair
    sums = accumulate(np.stack([x, x, y]), np.stack([y, x, y]), fused=True)
    similarity = cosine_similarity(float(sums[0]), float(sums[1]), float(sums[2]))
    return math.inf if math.isnan(similarity) else 1.0 - similarity


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
    pair = _pair(a, b)
    return None if pair is None else float(accumulate(np.abs(pair[0] - pair[1]), None, fused=False))


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
    return None if pair is None else _checked(pair[0] + pair[1])


def vector_sub(a: Any, b: Any) -> bytes | None:
    """pgvector's ``a - b``."""
    pair = _pair(a, b)
    return None if pair is None else _checked(pair[0] - pair[1])


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
    ("loom_vector_add", vector_add, 2),
    ("loom_vector_sub", vector_sub, 2),
    ("loom_vector_mul", vector_mul, 2),
)
#: The aggregates: (SQL name, factory).
VECTOR_AGGREGATES: tuple[tuple[str, Any], ...] = (
    ("loom_vector_avg", _aggregate(VectorAvg)),
    ("loom_vector_sum", _aggregate(VectorSum)),
)
