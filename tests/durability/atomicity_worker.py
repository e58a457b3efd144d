"""A writer whose every commit (or merge) must appear to readers whole or not at all.

Run as ``python atomicity_worker.py '<json config>'`` with ``path``, ``mode``,
``writer``, ``stop_file`` and ``max_commits``. Opens the store, prints
``ready``, waits for a line on stdin (the start barrier), then commits until
``stop_file`` exists (or ``max_commits`` is reached), printing one line per
acknowledged commit, and finally ``done <commits>``. Any exception goes to
stderr with status 2.

``mode="commits"`` (tables of ``setup_commits``), on main, round robin:

* a ``transaction()``: three ``batches`` rows of kind ``txn``, ``tally`` up by
  three, and 7 moved from one account to another (two UPDATEs);
* ``executemany`` of three ``batches`` rows of kind ``many``;
* one INSERT statement of three rows (kind ``multi``) -- then one UPDATE
  statement that moves 5 between two accounts (a second commit).

So in every committed state each ``(writer, batch)`` has parts 0, 1, 2, the
``txn`` rows number ``tally``, and the balances sum to ``ACCOUNTS * 100``.

``mode="merges"`` (tables of ``setup_merges``): round ``r`` = 1, 2, ... edits
branch ``src`` (every base row's ``gen`` set to ``r``, the rows round ``r - 1``
inserted deleted, ``ROUND_ROWS`` new ones inserted: three commits there) and merges ``src`` into
main, printing ``merged <r>``. Main is then exactly ``merge_state(r)``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

ACCOUNTS = 10
BASE_ROWS = 600
ROUND_ROWS = 60

COMMITS_DDL = [
    "CREATE TABLE batches (writer TEXT, batch INT, part INT, kind TEXT)",
    "CREATE TABLE tally (id INT PRIMARY KEY, n INT)",
    "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT)",
]
INSERT_BATCH = "INSERT INTO batches (writer, batch, part, kind) VALUES (%s, %s, %s, %s)"
MOVE = "UPDATE accounts SET balance = balance + %s WHERE id = %s"


def setup_commits(db) -> None:
    for ddl in COMMITS_DDL:
        db.execute(ddl)
    db.execute("INSERT INTO tally (id, n) VALUES (1, 0)")
    db.executemany("INSERT INTO accounts (id, balance) VALUES (%s, 100)", [(i,) for i in range(ACCOUNTS)])


def commit_once(db, writer: str, n: int) -> int:
    """Commit number ``n`` of ``writer``; returns the number of commits it made (1 or 2)."""
    kind = n % 3
    src, dst = n % ACCOUNTS, (n * 7 + 3) % ACCOUNTS
    if dst == src:
        dst = (dst + 1) % ACCOUNTS
    if kind == 0:
        with db.transaction(message=f"{writer} {n}", author=writer):
            for part in range(3):
                db.execute(INSERT_BATCH, [writer, n, part, "txn"])
            db.execute("UPDATE tally SET n = n + 3 WHERE id = 1")
            db.execute(MOVE, [-7, src])
            db.execute(MOVE, [7, dst])
        return 1
    if kind == 1:
        db.executemany(INSERT_BATCH, [[writer, n, part, "many"] for part in range(3)])
        return 1
    db.execute(
        "INSERT INTO batches (writer, batch, part, kind) VALUES (%s, %s, 0, 'multi'),"
        " (%s, %s, 1, 'multi'), (%s, %s, 2, 'multi')",
        [writer, n] * 3,
    )
    db.execute(
        "UPDATE accounts SET balance = CASE WHEN id = %s THEN balance - 5 ELSE balance + 5 END"
        " WHERE id IN (%s, %s)",
        [src, src, dst],
    )
    return 2


def setup_merges(db) -> None:
    """kv on main at round 0; branch ``src`` forked from it."""
    db.execute("CREATE TABLE kv (k INT PRIMARY KEY, gen INT, note TEXT, meta JSONB)")
    db.executemany(
        "INSERT INTO kv (k, gen, note, meta) VALUES (%s, %s, %s, %s)",
        [(k, *v) for k, v in merge_state(0).items()],
    )
    db.branch("src")


def merge_state(r: int) -> dict[int, tuple]:
    """Main's rows after round ``r``: ``{k: (gen, note, meta)}``."""
    rows = {k: (r, f"base-{k}", {"k": k}) for k in range(BASE_ROWS)}
    if r > 0:
        first = BASE_ROWS + ROUND_ROWS * r
        rows.update({k: (r, f"round-{r}", None) for k in range(first, first + ROUND_ROWS)})
    return rows


def merge_round(db, src, r: int) -> None:
    """Round ``r``: edit src (several commits there), then one merge into main."""
    src.execute("UPDATE kv SET gen = %s WHERE k < %s", [r, BASE_ROWS])
    if r > 1:
        src.execute("DELETE FROM kv WHERE k >= %s", [BASE_ROWS])
    first = BASE_ROWS + ROUND_ROWS * r
    src.executemany(
        "INSERT INTO kv (k, gen, note) VALUES (%s, %s, %s)",
        [(k, r, f"round-{r}") for k in range(first, first + ROUND_ROWS)],
    )
    result = db.merge("src", into="main", message=f"round {r}")
    if result.commit is None:
        raise AssertionError(f"round {r}: the merge made no commit")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import loomdb

    db = loomdb.connect(cfg["path"])
    src = db.checkout("src") if cfg["mode"] == "merges" else None
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the start barrier
    commits = 0
    n = 0
    while not os.path.exists(cfg["stop_file"]) and commits < cfg["max_commits"]:
        if cfg["mode"] == "commits":
            commits += commit_once(db, cfg["writer"], n)
            sys.stdout.write(f"committed {n}\n")
        else:
            merge_round(db, src, n + 1)
            commits += 1
            sys.stdout.write(f"merged {n + 1}\n")
        sys.stdout.flush()
        n += 1
    db.close()
    sys.stdout.write(f"done {n}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
