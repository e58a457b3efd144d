"""One of several processes writing to one store at the same time.

Run as ``python concurrency_worker.py '<json config>'``. Opens the store, binds
the branch, prints ``ready`` and waits for a line on stdin (a start barrier,
so all workers write at once). Then writes ``rows`` rows tagged with its
writer name: as single INSERTs, ``transaction()`` blocks of two INSERTs and
``executemany`` batches of three, each one commit, checking after every
commit that it reads its own rows back. Prints ``done <rows> <commits>``.
Any exception goes to stderr with status 2: the parent fails with that text.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WRITES_DDL = (
    "CREATE TABLE IF NOT EXISTS writes (writer TEXT, seq INT, branch TEXT, payload JSONB,"
    " embedding VECTOR(4), created_at TIMESTAMP DEFAULT NOW())"
)
INSERT_WRITE = "INSERT INTO writes (writer, seq, branch, payload, embedding) VALUES (%s, %s, %s, %s, %s)"


def write_params(writer: str, seq: int, branch: str) -> list:
    return [writer, seq, branch, {"writer": writer, "seq": seq}, [float(seq), 1.0, 2.0, 3.0]]


def write_rows(handle, writer: str, branch: str, rows: int, check_every: int = 1) -> int:
    """Write rows 0..rows-1 for ``writer``; return the number of commits made."""
    seq = 0
    commits = 0
    while seq < rows:
        kind = commits % 3
        if kind == 0:
            handle.execute(INSERT_WRITE, write_params(writer, seq, branch))
            seq += 1
        elif kind == 1:
            batch = range(seq, min(seq + 2, rows))
            with handle.transaction(message=f"{writer} {seq}", author=writer):
                for s in batch:
                    handle.execute(INSERT_WRITE, write_params(writer, s, branch))
            seq += len(batch)
        else:
            batch = range(seq, min(seq + 3, rows))
            handle.executemany(INSERT_WRITE, [write_params(writer, s, branch) for s in batch])
            seq += len(batch)
        commits += 1
        if commits % check_every == 0 or seq == rows:
            seen = handle.execute("SELECT count(*) AS n FROM writes WHERE writer = %s", [writer]).fetchone()[
                "n"
            ]
            if seen != seq:
                raise AssertionError(f"{writer} reads {seen} of its own rows after writing {seq}")
    return commits


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import loomdb

    db = loomdb.connect(cfg["path"], durability=cfg.get("durability", "full"))
    handle = db.checkout(cfg["branch"]) if cfg["branch"] != "main" else db
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the start barrier
    commits = write_rows(handle, cfg["writer"], cfg["branch"], cfg["rows"], cfg.get("check_every", 1))
    db.close()
    sys.stdout.write(f"done {cfg['rows']} {commits}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
