"""An agent loop that outlives its PostgreSQL server: it reconnects and resumes.

Run as ``python reconnect_worker.py '<json config>'`` with ``path``,
``durability``, ``run_id``, ``stop_file`` and ``reconnect_timeout``. Writes
steps like ``crash_worker.py`` (one INSERT per commit, every seventh commit a
``transaction()`` of four steps) until ``stop_file`` exists, then prints
``done`` and exits 0. Lines on stdout, each one ``os.write``:

* ``ready`` -- the store is open;
* ``ack <steps>`` -- a commit returned (written only after it returned);
* ``error <steps> <message>`` -- the commit of these steps raised
  ``loomdb.OperationalError``: it may or may not have landed. The handle is
  closed and a new ``loomdb.connect`` is tried until one works (each failure
  prints ``down <message>``);
* ``resume <step>`` -- reconnected; the run goes on after the newest step the
  store holds (the resume query of the product brief), so a commit that
  landed without its acknowledgement is not written twice.

Exits with status 2 on any other exception, on an OperationalError outside
the window of ``reconnect_timeout`` seconds, or if the store holds part of a
multi-step commit after a reconnect.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from durability.common import INSERT_STEP, ITERATIONS_DDL, commit_steps, step_params  # noqa: E402


def say(line: str) -> None:
    os.write(1, (line.replace("\n", " ") + "\n").encode())


def commit_starts(upto: int) -> set[int]:
    """The steps a commit starts at, below ``upto`` (see commit_steps)."""
    starts, step = set(), 0
    while step < upto:
        starts.add(step)
        step = commit_steps(step)[-1] + 1
    starts.add(step)
    return starts


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import loomdb

    run_id = cfg["run_id"]

    def open_store():
        """Connect (retrying while the server is away) and find where the run stands."""
        deadline = time.monotonic() + cfg["reconnect_timeout"]
        while True:
            try:
                db = loomdb.connect(cfg["path"], durability=cfg["durability"])
                try:
                    db.execute(ITERATIONS_DDL)
                    last = db.execute(
                        "SELECT step FROM iterations WHERE run_id = %s ORDER BY step DESC LIMIT 1", [run_id]
                    ).fetchone()
                except BaseException:
                    db.close()
                    raise
                return db, (0 if last is None else last["step"] + 1)
            except loomdb.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise
                say(f"down {exc}")
                time.sleep(0.05)

    db, step = open_store()
    say("ready")
    while not os.path.exists(cfg["stop_file"]):
        steps = commit_steps(step)
        try:
            if len(steps) > 1:
                with db.transaction(message=f"steps {steps}", author="reconnect-worker"):
                    for s in steps:
                        db.execute(INSERT_STEP, step_params(run_id, s))
            else:
                db.execute(INSERT_STEP, step_params(run_id, step))
        except loomdb.OperationalError as exc:
            say(f"error {' '.join(map(str, steps))} {exc}")
            try:
                db.close()
            except loomdb.Error:
                pass
            db, step = open_store()
            if step not in commit_starts(step):
                raise AssertionError(
                    f"after a reconnect the newest step is {step - 1}: part of a commit"
                ) from None
            say(f"resume {step}")
            continue
        say(f"ack {' '.join(map(str, steps))}")
        step = steps[-1] + 1
    db.close()
    say("done")


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
