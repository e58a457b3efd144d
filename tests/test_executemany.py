"""executemany() of an INSERT looks the keys of all its rows up at once; the result
must be exactly that of running the statement once per parameter set."""

from __future__ import annotations

import random

import pytest

import loomdb

STATEMENTS = {
    "plain": "INSERT INTO {t} (k, tag, v) VALUES (%s, %s, %s)",
    "do nothing": "INSERT INTO {t} (k, tag, v) VALUES (%s, %s, %s) ON CONFLICT (k, tag) DO NOTHING",
    "do update": "INSERT INTO {t} (k, tag, v) VALUES (%s, %s, %s)"
    " ON CONFLICT (k, tag) DO UPDATE SET v = {t}.v + EXCLUDED.v",
}


def make_tables(db: loomdb.Database, names: tuple[str, ...] = ("one_by_one", "many")) -> None:
    for t in names:
        db.execute(f"CREATE TABLE {t} (k INT, tag TEXT, v INT, PRIMARY KEY (k, tag))")
        db.execute(f"INSERT INTO {t} VALUES (1, 'a', 100), (2, 'b', 200), (3, 'a', 300)")


def contents(db: loomdb.Database, table: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(f"SELECT k, tag, v FROM {table} ORDER BY k, tag").fetchall()]


def outcome(run, rename: dict[str, str] | None = None) -> tuple[str, object]:
    """What running ``run`` did: its result, or the error it raised (type and
    message, each table name in ``rename`` replaced, so two tables compare)."""
    try:
        return "ok", run()
    except loomdb.Error as exc:
        message = str(exc)
        for old, new in (rename or {"one_by_one": "T", "many": "T"}).items():
            message = message.replace(old, new)
        return type(exc).__name__, message


@pytest.mark.parametrize("kind", sorted(STATEMENTS))
@pytest.mark.parametrize("on_branch", [False, True], ids=["main", "branch"])
def test_executemany_of_an_insert_does_what_one_statement_per_set_does(fresh_db, kind, on_branch):
    db = fresh_db
    make_tables(db)
    if on_branch:  # the keys are looked up through a branch view with rows of its own
        db = db.branch("work")
        db.execute("DELETE FROM one_by_one WHERE k = 2")
        db.execute("DELETE FROM many WHERE k = 2")
        for t in ("one_by_one", "many"):
            db.execute(f"INSERT INTO {t} VALUES (4, 'b', 400)")
    rng = random.Random(f"{kind}-{on_branch}")
    for _ in range(12):
        sets = [(rng.randint(1, 6), rng.choice("ab"), rng.randint(1, 9)) for _ in range(rng.randint(2, 7))]
        sql = STATEMENTS[kind]

        def one_by_one(sets=sets, sql=sql):
            with db.transaction():
                return sum(db.execute(sql.format(t="one_by_one"), s).rowcount for s in sets)

        expected = outcome(one_by_one)
        got = outcome(lambda sets=sets, sql=sql: db.executemany(sql.format(t="many"), sets).rowcount)
        assert got == expected, sets
        assert contents(db, "many") == contents(db, "one_by_one"), sets


def test_rows_repeating_a_key_meet_each_other_as_in_one_statement_per_set(fresh_db):
    fresh_db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INT)")
    fresh_db.execute("INSERT INTO t VALUES ('old', 1)")
    sql = "INSERT INTO t VALUES (%s, %s) ON CONFLICT (k) DO NOTHING"
    cur = fresh_db.executemany(sql, [("new", 1), ("old", 2), ("new", 3), ("other", 4)])
    assert cur.rowcount == 2
    assert [tuple(r) for r in fresh_db.execute("SELECT k, v FROM t ORDER BY k")] == [
        ("new", 1),
        ("old", 1),
        ("other", 4),
    ]
    head = fresh_db.head
    with pytest.raises(loomdb.IntegrityError, match="duplicate key"):
        fresh_db.executemany("INSERT INTO t VALUES (%s, %s)", [("x", 1), ("y", 2), ("x", 3)])
    assert fresh_db.head == head and fresh_db.execute("SELECT count(*) FROM t").fetchone()[0] == 3
