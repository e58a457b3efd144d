"""pgvector's arithmetic in NumPy, to the bit: what its distance functions compute.

pgvector sums in float32, in the order its compiled loops add (see
:func:`accumulate`), then widens to double. The SQLite engine's SQL
functions (``backend/sqlite/vector_functions.py``) and the engine's exact
top-k search (``engine/vectors.py``) both compute with these, so a distance
ranked is the distance returned. :func:`remember` lets the top-k search hand
the distances it computed for the rows it keeps to the SQL functions that
return them (a memo keyed by the vectors' bytes: a pure function's values).

>>> import numpy as np
>>> rows = np.array([[1, 0, 0], [0.5, 0.5, 0]], dtype=np.float32)
>>> distances("l2", rows, np.array([0, 1, 0], dtype=np.float32)).tolist()
[1.4142135623730951, 0.7071067811865476]
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

_F32 = np.float32
_F64 = np.float64

#: The distance kinds: pgvector's ``<->``, ``<=>``, ``<#>`` and ``<+>``.
OPS = ("l2", "cosine", "ip", "l1")


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
            # One step of the 8 lanes after another (a sequential chain: a loop in Python).
            steps = np.ascontiguousarray(np.moveaxis(products, -2, 0))
            acc = np.zeros((*lead, 8), dtype=_F64)
            for step in steps:
                acc = (acc + step).astype(_F32).astype(_F64)
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


def distances(op: str, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """pgvector's distance ``op`` (one of :data:`OPS`) of each row of ``rows`` (a
    float32 matrix) to ``query``, as float64; NaN where pgvector's is NaN (the
    cosine distance of a zero vector)."""
    rows = np.asarray(rows, dtype=_F32)
    q = np.broadcast_to(np.asarray(query, dtype=_F32), rows.shape)
    if op == "l2":
        diff = rows - q
        return np.sqrt(accumulate(diff, diff, fused=False).astype(_F64))
    if op == "ip":
        return -accumulate(rows, q, fused=False).astype(_F64)
    if op == "l1":
        return accumulate(np.abs(rows - q), None, fused=False).astype(_F64)
    if op == "cosine":
        sums = accumulate(np.stack([rows, rows, q], axis=-2), np.stack([q, rows, q], axis=-2), fused=True)
        sums = sums.astype(_F64)
        dot, norm_a, norm_b = sums[..., 0], sums[..., 1], sums[..., 2]
        product = norm_a * norm_b
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = np.clip(dot / np.sqrt(product), -1.0, 1.0)
        similarity = np.where(product == 0, np.nan, similarity)
        return 1.0 - similarity
    raise ValueError(f"unknown distance {op!r}")


# -- the memo from the top-k search to the SQL functions ------------------------------------

_MEMO: dict[tuple[str, bytes, bytes], float] = {}
_MEMO_LOCK = threading.Lock()
# Bounded by entries: a 1536-dim entry holds two 6 KiB keys.
_MEMO_MAX = 256


def remember(op: str, rows: np.ndarray, query: np.ndarray, values: np.ndarray) -> None:
    """Record ``values``, the distances ``op`` of ``rows`` to ``query`` (as
    :func:`distances` computed them), for :func:`recall`."""
    q = np.asarray(query, dtype="<f4").tobytes()
    with _MEMO_LOCK:
        if len(_MEMO) + len(rows) > _MEMO_MAX:
            _MEMO.clear()
        for row, value in zip(np.asarray(rows, dtype="<f4"), values.tolist(), strict=True):
            _MEMO[(op, row.tobytes(), q)] = value


def recall(op: str, row: bytes, query: bytes) -> float | None:
    """The distance :func:`remember` recorded for these vectors' bytes, else None."""
    return _MEMO.get((op, row, query))


def scalar(op: str, x: np.ndarray, y: np.ndarray) -> Any:
    """One distance (see :func:`distances`) as a Python float, from the memo when recorded."""
    if x.shape[0] < SMALL:
        return small(op, x.tolist(), y.tolist())
    value = recall(op, x.tobytes(), y.tobytes())
    if value is None:
        value = float(distances(op, x[np.newaxis], y)[0])
    return value


# -- vectors of fewer than 8 dimensions, in plain Python -------------------------------------
# (pgvector's 8-lane loop does not run for them: a few float32 roundings, no NumPy overhead)

#: Below this many dimensions :func:`small` computes in plain Python.
SMALL = 8
_FLOAT32 = struct.Struct("<f")


def _r32(value: float) -> float:
    """``value`` rounded to float32 (infinite beyond float32's range)."""
    try:
        return float(_FLOAT32.unpack(_FLOAT32.pack(value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _plain_sum(terms: Sequence[float]) -> float:
    """The float32 sum of float32 ``terms`` as pgvector adds fewer than 8: 4 lanes
    as ``(t0 + t2) + (t1 + t3)`` when there are 4, then one by one."""
    start, acc = 0, 0.0
    if len(terms) >= 4:
        start, acc = 4, _r32(_r32(terms[0] + terms[2]) + _r32(terms[1] + terms[3]))
    for term in terms[start:]:
        acc = _r32(acc + term)
    return acc


def _fused_sum(xs: Sequence[float], ys: Sequence[float]) -> float:
    """pgvector's fused float32 sum of ``x * y`` for fewer than 8 elements (cosine's loop)."""
    start, acc = 0, 0.0
    if len(xs) >= 4:
        lanes = [_r32(xs[i] * ys[i]) for i in range(4)]
        start, acc = 4, _r32(_r32(lanes[0] + lanes[2]) + _r32(lanes[1] + lanes[3]))
    for i in range(start, len(xs)):
        acc = _r32(acc + xs[i] * ys[i])  # the product of two float32 is exact in a double
    return acc


def small(op: str, xs: Sequence[float], ys: Sequence[float]) -> float:
    """:func:`distances` for two vectors of fewer than :data:`SMALL` dimensions,
    given as float32 values (Python floats)."""
    if op == "cosine":
        dot, norm_a, norm_b = _fused_sum(xs, ys), _fused_sum(xs, xs), _fused_sum(ys, ys)
        product = norm_a * norm_b
        if product == 0 or math.isnan(product) or math.isnan(dot):
            return math.nan
        return 1.0 - max(-1.0, min(1.0, dot / math.sqrt(product)))
    if op == "ip":
        return -_plain_sum([_r32(x * y) for x, y in zip(xs, ys, strict=True)])
    diff = [_r32(x - y) for x, y in zip(xs, ys, strict=True)]
    if op == "l1":
        return _plain_sum([abs(d) for d in diff])
    if op == "l2":
        return math.sqrt(_plain_sum([_r32(d * d) for d in diff]))
    raise ValueError(f"unknown distance {op!r}")
