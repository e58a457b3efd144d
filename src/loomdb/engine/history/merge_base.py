"""How a merge chooses its base, and the lineages diff and merge read from."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ... import errors
from ...connection import Snapshot
from ...versioning.lineage import Lineage
from ...versioning.merge import intersection

if TYPE_CHECKING:
    from ..session import Session
    from ..store import Store


def merge_base(store: Store, source: Lineage, target: Lineage) -> tuple[Lineage, Lineage, Lineage]:
    """``(base, seen on source, seen on target)`` for merging ``source`` into ``target``.

    After an earlier merge between the two branches (either direction), the
    base is the merged side's head at that merge; otherwise it is what both
    lineages share. The "seen" lineages bound which rows need examining.
    """
    s, t = source.bid, target.bid
    row = store.last_merge_between(s, t)
    if row is None:
        shared = intersection(source, target)
        return shared, shared, shared
    merge_commit, into, merged_head = row
    if into == t:
        # The source was merged into the target: the target holds the source up
        # to merged_head. Target rows changed before that merge and not on the
        # source since are kept as they are, so the target side only needs the
        # rows it changed after the merge commit.
        base = store.lineage(s, merged_head)
        return base, base, store.lineage(t, merge_commit)
    # The target was merged into the source: everything the source did itself
    # (before or after that merge) is still new to the target.
    base = store.lineage(t, merged_head)
    return base, base, base


def pinned_lineage(store: Store, bid: int) -> Lineage:
    """Branch ``bid``'s lineage at its newest commit: later commits stay out."""
    return store.lineage(bid, store.head(store.lineage(bid, None)))


def snapshot_lineage(session: Session, when: Snapshot) -> Lineage:
    """A branch name's lineage at its current head, a commit's, or this handle's
    history at a time.

    A branch is pinned at its head when asked for: its writers do not wait for
    a merge, diff or reset reading it (on PostgreSQL, and between the
    statements of a diff on SQLite), and a commit landing meanwhile must count
    entirely or not at all.
    """
    store = session.store
    if isinstance(when, str):
        return pinned_lineage(store, store.branch_by_name(when).bid)
    if isinstance(when, dt.datetime):
        return store.lineage(session.bid, store.commit_at(session.lineage, when))
    if isinstance(when, int) and not isinstance(when, bool):
        seq, bid = store.commit_info(when)
        return store.lineage(bid, seq)
    raise errors.ProgrammingError(
        f"expected a branch name, a commit id or a datetime, not {type(when).__name__}"
    )
