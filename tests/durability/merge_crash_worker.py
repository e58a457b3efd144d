"""Merges a branch into main, then waits to be killed.

Run as ``python merge_crash_worker.py '<json config>'`` with ``path``,
``durability``, ``source`` and ``into``. Prints ``ready`` once the store is
open, then calls ``db.merge(source, into=into)`` and prints ``done <commit>``
(one ``os.write``) after it returned: a ``done`` line is an acknowledged
merge. Then it sleeps until killed. Any exception is printed to stderr and
ends the process with status 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import loomdb

    db = loomdb.connect(cfg["path"], durability=cfg["durability"])
    os.write(1, b"ready\n")
    result = db.merge(cfg["source"], into=cfg["into"])
    os.write(1, f"done {result.commit}\n".encode())
    while True:
        time.sleep(60)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
