"""Which versions of a row a branch sees: lineage and the visibility predicate.

A branch at a snapshot sees, for every row identity (``_rid``), the newest
version along its lineage ``[(self, head), (parent, fork), (grandparent,
parent's fork), ...]``, unless that version is a tombstone. Versions carry
``[_seq, _end)``: the commit that wrote them and the commit on the *same*
branch that superseded them (``layout.INF_SEQ`` while current). A version written on a
nearer branch always wins over one from an ancestor, because a child's
commits all come after its fork point.

>>> print(visibility_sql(Lineage(((1, None),)), "loom_t1", "_p"))
(+_p._bid = 1 AND _p._end = 9223372036854775807 AND _p._del = 0)
>>> print(visibility_sql(Lineage(((3, None), (1, 10))), "loom_t1", "_p"))  # doctest: +NORMALIZE_WHITESPACE
(_p._del = 0 AND CASE +_p._bid WHEN 3 THEN _p._end = 9223372036854775807
 WHEN 1 THEN _p._seq <= 10 AND _p._end > 10 AND NOT EXISTS (SELECT 1 FROM "loom_t1" AS _s
 WHERE (_s._bid > 1 OR _s._vid <> _s._rid) AND _s._rid = _p._rid AND _s._bid = 3) ELSE FALSE END)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..layout import INF_SEQ, indexed_version


@dataclass(frozen=True)
class Lineage:
    """``levels[0]`` is the handle's own branch; each level is ``(bid, limit)``.

    ``limit`` is the newest commit visible on that branch (None: the live
    head of the handle's own branch).
    """

    levels: tuple[tuple[int, int | None], ...]

    @property
    def bid(self) -> int:
        """The handle's own branch."""
        return self.levels[0][0]

    @property
    def snapshot(self) -> int | None:
        """The newest commit the handle sees (None: the live head of its branch)."""
        return self.levels[0][1]

    def contains(self, bid: int, seq: int) -> bool:
        """Whether commit ``seq`` made on branch ``bid`` is part of this lineage."""
        for level_bid, limit in self.levels:
            if level_bid == bid:
                return limit is None or seq <= limit
        return False


def build_lineage(chain: list[tuple[int, int | None]], snapshot: int | None) -> Lineage:
    """Lineage from ``chain`` = ``[(bid, fork of bid from its parent), ...]``, self first.

    Each ancestor is visible up to the smallest fork point below it, and the
    whole lineage is cut at ``snapshot`` when given.
    """
    levels: list[tuple[int, int | None]] = []
    limit = snapshot
    for index, (bid, fork) in enumerate(chain):
        levels.append((bid, limit))
        if index + 1 < len(chain):
            limit = fork if limit is None else min(limit, fork if fork is not None else limit)
    return Lineage(tuple(levels))


def plus_hint(column: str) -> str:
    """``column`` behind SQLite's unary ``+``, which keeps it from driving an index scan.

    >>> plus_hint('_p._bid')
    '+_p._bid'
    """
    return "+" + column


def visibility_sql(
    lineage: Lineage, table: str, alias: str, unindexed: Callable[[str], str] = plus_hint
) -> str:
    """A SQL predicate over ``table AS alias`` that keeps the visible, live versions.

    A branch without ancestors (main) gets a plain conjunction. A branch
    with ancestors gets ``CASE _bid WHEN <level> THEN <its condition> ...``:
    each level of a lineage is a different branch, and SQLite evaluates the
    CASE about twice as fast as the equivalent OR of conjunctions.
    The probe repeats the partial version index's condition so SQLite can
    use that index (a nearer branch is never main, ``layout.MAIN_BID``).
    ``unindexed`` marks the branch column for the engine: on SQLite
    (:func:`plus_hint`, the default) a unary ``+`` keeps SQLite from driving a scan
    through that index, which would be slower than the table scan for the
    common case of a branch holding most rows. PostgreSQL's planner needs
    no such hint, and ``+`` would hide the column's statistics from it (it
    then guesses the branch filter keeps 0.5% of rows and picks a sort).
    """
    branch = unindexed(f"{alias}._bid")
    levels = []
    for index, (bid, limit) in enumerate(lineage.levels):
        if limit is None:
            cond = f"{alias}._end = {INF_SEQ}"
        else:
            cond = f"{alias}._seq <= {limit} AND {alias}._end > {limit}"
        for nearer_bid, nearer_limit in lineage.levels[:index]:
            bound = "" if nearer_limit is None else f" AND _s._seq <= {nearer_limit}"
            cond += (
                f' AND NOT EXISTS (SELECT 1 FROM "{table}" AS _s'
                f" WHERE {indexed_version('_s')} AND _s._rid = {alias}._rid AND _s._bid = {nearer_bid}{bound})"
            )
        levels.append((bid, cond))
    if len(levels) == 1:
        bid, cond = levels[0]
        return f"({branch} = {bid} AND {cond} AND {alias}._del = 0)"
    whens = " ".join(f"WHEN {bid} THEN {cond}" for bid, cond in levels)
    return f"({alias}._del = 0 AND CASE {branch} {whens} ELSE FALSE END)"
