"""Merges back and forth between branches keep every side's changes exactly once."""

from __future__ import annotations

import pytest

import loomdb


def rows(db):
    return [tuple(r) for r in db.execute("SELECT k, a, b FROM kv ORDER BY k")]


@pytest.fixture
def two_siblings(fresh_db):
    fresh_db.execute("CREATE TABLE kv (k INT PRIMARY KEY, a INT, b INT)")
    fresh_db.execute("INSERT INTO kv VALUES (1, 0, 0), (2, 0, 0)")
    return fresh_db, fresh_db.branch("c"), fresh_db.branch("d")


def test_merging_back_the_other_way_brings_the_targets_own_earlier_changes(two_siblings):
    _, c, d = two_siblings
    c.execute("UPDATE kv SET a = 1 WHERE k = 1")
    d.merge("c")  # d now has c's change
    d.execute("UPDATE kv SET b = 2 WHERE k = 1")
    c.execute("UPDATE kv SET a = 3 WHERE k = 2")
    d.merge("c")  # d has both of c's changes and its own
    result = c.merge("d")  # c must receive d's own change, made before d's last merge
    assert rows(c) == [(1, 1, 2), (2, 3, 0)]
    assert rows(d) == [(1, 1, 2), (2, 3, 0)]
    assert result.modified == 1
    assert c.merge("d").commit is None and d.merge("c").commit is None


def test_a_conflict_resolved_once_is_not_raised_again(two_siblings):
    main, c, _ = two_siblings
    c.execute("UPDATE kv SET a = 5 WHERE k = 1")
    main.execute("UPDATE kv SET a = 6 WHERE k = 1")
    with pytest.raises(loomdb.MergeConflict):
        main.merge("c")
    resolved = main.merge("c", on_conflict="ours")
    assert resolved.conflicts_resolved == 1 and resolved.commit is not None
    assert rows(main) == [(1, 6, 0), (2, 0, 0)]
    c.execute("UPDATE kv SET b = 7 WHERE k = 2")
    main.merge("c")  # only the new change; the old conflict stays settled
    assert rows(main) == [(1, 6, 0), (2, 0, 7)]


def test_parent_into_child_then_child_into_parent(two_siblings):
    main, c, _ = two_siblings
    main.execute("UPDATE kv SET a = 1 WHERE k = 1")
    c.execute("UPDATE kv SET b = 1 WHERE k = 2")
    c.merge("main")
    assert rows(c) == [(1, 1, 0), (2, 0, 1)]
    main.merge("c")
    assert rows(main) == [(1, 1, 0), (2, 0, 1)]
    assert len(main.log(limit=1)[0].parents) == 2
