"""PostgreSQL's ordered-set aggregates on SQLite: ``percentile_cont``,
``percentile_disc`` and ``mode`` ``WITHIN GROUP (ORDER BY x)``, computed as
PostgreSQL computes them over the group's non-NULL values sorted in the
ORDER BY's direction.

The dialect calls ``loom_percentile_cont(x, fraction, descending)``,
``loom_percentile_disc(x, fraction, descending, kind)`` and
``loom_mode(x, descending, kind)``; ``kind`` is ``'n'`` when ``x`` is
NUMERIC text (sorted as numbers), anything else to sort values as SQLite
hands them over (integers, floats, text by code point).

>>> agg, step, final = _factory(_PercentileCont)()
>>> for v in (1, 2, 3, 4, None):
...     step(agg, v, 0.25, 0)
>>> final(agg)
1.75
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ... import errors


def _sort_key(kind: str) -> Callable[[Any], Any] | None:
    """How values of ``kind`` sort: NUMERIC text as numbers, others as they are."""
    if kind != "n":
        return None

    def key(value: Any) -> Any:
        try:
            return Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            return Decimal("NaN")

    return key


def _check_fraction(fraction: Any) -> float | None:
    """The fraction as a float; DataError (22003) outside [0, 1], as PostgreSQL."""
    if fraction is None:
        return None
    value = float(fraction)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise errors.DataError(f"percentile value {value:g} is not between 0 and 1", sqlstate="22003")
    return value


class _OrderedSet:
    """The group's non-NULL values, and what the aggregate was called with."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.args: tuple[Any, ...] = ()

    def step(self, value: Any, *args: Any) -> None:
        """Add one row's value (NULLs are skipped, as PostgreSQL does)."""
        self.args = args
        if value is not None:
            self.values.append(value)

    def sorted(self, descending: Any, kind: str = "") -> list[Any]:
        """The values in the ORDER BY's order."""
        return sorted(self.values, key=_sort_key(kind), reverse=bool(descending))

    def final(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class _PercentileCont(_OrderedSet):
    """``percentile_cont(fraction)``: the value at ``fraction`` of the way
    through, interpolated linearly between the two nearest (double precision)."""

    def final(self) -> float | None:
        if not self.values:
            return None
        fraction_arg, descending = self.args
        fraction = _check_fraction(fraction_arg)
        if fraction is None:
            return None
        values = [float(v) for v in self.values]
        values.sort(reverse=bool(descending))
        position = fraction * (len(values) - 1)
        first, second = math.floor(position), math.ceil(position)
        low = values[first]
        if first == second:
            return low
        return low + (position - first) * (values[second] - low)


class _PercentileDisc(_OrderedSet):
    """``percentile_disc(fraction)``: the first value whose position in the
    order reaches ``fraction`` of the rows."""

    def final(self) -> Any:
        if not self.values:
            return None
        fraction_arg, descending, kind = self.args
        fraction = _check_fraction(fraction_arg)
        if fraction is None:
            return None
        values = self.sorted(descending, kind)
        return values[max(math.ceil(fraction * len(values)), 1) - 1]


class _Mode(_OrderedSet):
    """``mode()``: the most frequent value; of equally frequent ones, the first in the order."""

    def final(self) -> Any:
        if not self.values:
            return None
        descending, kind = self.args
        values = self.sorted(descending, kind)
        key = _sort_key(kind) or (lambda v: v)
        best, best_count, run_start = values[0], 0, 0
        for i in range(1, len(values) + 1):
            if i == len(values) or key(values[i]) != key(values[run_start]):
                if i - run_start > best_count:
                    best, best_count = values[run_start], i - run_start
                run_start = i
        return best


def _factory(cls: type[_OrderedSet]) -> Callable[[], tuple[Any, Any, Any]]:
    """apsw's aggregate factory for ``cls``."""

    def factory() -> tuple[Any, Any, Any]:
        """A fresh aggregate's (context, step, final)."""
        agg = cls()
        return agg, lambda _ctx, value, *args: agg.step(value, *args), lambda _ctx: agg.final()

    return factory


#: The ordered-set aggregates: (SQL name, apsw aggregate factory).
ORDERED_SET_AGGREGATES: tuple[tuple[str, Callable[[], tuple[Any, Any, Any]]], ...] = (
    ("loom_percentile_cont", _factory(_PercentileCont)),
    ("loom_percentile_disc", _factory(_PercentileDisc)),
    ("loom_mode", _factory(_Mode)),
)
