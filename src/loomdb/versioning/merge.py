"""Three-way merge of one row, and the set arithmetic of lineages.

Rows here are tuples of storage values in a fixed column order, or None for
a row that does not exist on that side. Pure functions: no I/O.

>>> merge_row(("a", 1), ("b", 1), ("a", 2))
RowMerge(result=('b', 2), conflict=None)
>>> merge_row(("a", 1), ("b", 1), ("c", 1)).conflict
Conflicted(kind='update/update', columns=(0,))
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .lineage import Lineage

Row = tuple[Any, ...] | None


class Conflicted(NamedTuple):
    """Why a row cannot be merged, and which of its columns clash."""

    kind: str  # "update/update", "delete/update", "update/delete", "insert/insert"
    columns: tuple[int, ...]  # positions of the conflicting columns (all for whole-row conflicts)


class RowMerge(NamedTuple):
    """The outcome of merging one row: a result or a conflict."""

    #: The merged row when there is no conflict (None: the row is absent).
    result: Row
    conflict: Conflicted | None


def merge_row(base: Row, ours: Row, theirs: Row) -> RowMerge:
    """Merge one row changed since ``base`` on two sides, cell by cell."""
    if theirs == base or ours == theirs:
        return RowMerge(ours, None)
    if ours == base:
        return RowMerge(theirs, None)
    width = len(next(r for r in (base, ours, theirs) if r is not None))
    everything = tuple(range(width))
    if base is None:
        return RowMerge(None, Conflicted("insert/insert", _differing(ours, theirs)))
    if ours is None:
        return RowMerge(None, Conflicted("delete/update", _differing(base, theirs) or everything))
    if theirs is None:
        return RowMerge(None, Conflicted("update/delete", _differing(base, ours) or everything))
    merged: list[Any] = []
    clashes: list[int] = []
    for position, (b, o, t) in enumerate(zip(base, ours, theirs, strict=True)):
        if o == b:
            merged.append(t)
        elif t == b or o == t:
            merged.append(o)
        else:
            merged.append(o)
            clashes.append(position)
    if clashes:
        return RowMerge(None, Conflicted("update/update", tuple(clashes)))
    return RowMerge(tuple(merged), None)


def _differing(a: Row, b: Row) -> tuple[int, ...]:
    """The positions where rows ``a`` and ``b`` differ (every position when one is absent)."""
    if a is None or b is None:
        row = a if a is not None else b
        return tuple(range(len(row))) if row is not None else ()
    return tuple(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)


def resolve(base: Row, ours: Row, theirs: Row, conflict: Conflicted, prefer: str) -> Row:
    """Settle a conflict in favour of ``prefer`` ("ours" or "theirs").

    Whole-row conflicts take the preferred side's row; cell conflicts keep
    every cleanly merged cell and take the preferred side's conflicting cells.
    """
    if conflict.kind != "update/update":
        return ours if prefer == "ours" else theirs
    assert base is not None and ours is not None and theirs is not None
    out = []
    for position, (b, o, t) in enumerate(zip(base, ours, theirs, strict=True)):
        if position in conflict.columns:
            out.append(o if prefer == "ours" else t)
        else:
            out.append(t if o == b else o)
    return tuple(out)


def difference(a: Lineage, b: Lineage) -> list[tuple[int, int, int | None]]:
    """The commits of lineage ``a`` that are not in ``b``, as ``(bid, after, upto)``:
    the versions on branch ``bid`` with ``after < _seq <= upto`` (None: no upper bound).
    """
    covered = dict(b.levels)
    out = []
    for bid, limit in a.levels:
        if bid in covered:
            other = covered[bid]
            if other is None or (limit is not None and limit <= other):
                continue
            out.append((bid, other, limit))
        else:
            out.append((bid, 0, limit))
    return out


def intersection(a: Lineage, b: Lineage) -> Lineage:
    """The commits both lineages see: their shared ancestors, up to the older limit.

    Branches form a tree, so the shared branches are a common tail of both
    chains, and the result is itself a lineage (main is always in it).
    """
    limits = dict(b.levels)
    levels = []
    for bid, limit in a.levels:
        if bid in limits:
            other = limits[bid]
            if limit is None:
                levels.append((bid, other))
            elif other is None:
                levels.append((bid, limit))
            else:
                levels.append((bid, min(limit, other)))
    return Lineage(tuple(levels))
