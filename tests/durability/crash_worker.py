"""An agent loop that writes steps until it is killed.

Run as ``python crash_worker.py '<json config>'``. Prints ``ready`` once the
store is open (and the branch bound), then one line per step, written with a
single ``os.write`` *after* ``execute`` returned: a line on stdout is an
acknowledged step (the steps of one multi-step transaction come in one
write). Never exits on its own; any exception is printed to stderr
and ends the process with status 2, which the parent reports as a failure.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from durability.common import (  # noqa: E402
    INSERT_STEP,
    ITERATIONS_DDL,
    commit_steps,
    step_params,
)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    import loomdb

    db = loomdb.connect(cfg["path"], durability=cfg["durability"])
    db.execute(ITERATIONS_DDL)
    handle = db
    if cfg.get("branch"):
        try:
            handle = db.checkout(cfg["branch"])
        except loomdb.BranchNotFoundError:
            handle = db.branch(cfg["branch"])
    os.write(1, b"ready\n")
    run_id = cfg["run_id"]
    step = cfg["start"]
    while True:
        steps = commit_steps(step)
        if len(steps) > 1:
            # Several steps in one commit: after a kill they are all there or none is.
            with handle.transaction(message=f"steps {steps}", author="crash-worker"):
                for s in steps:
                    handle.execute(INSERT_STEP, step_params(run_id, s))
        else:
            handle.execute(INSERT_STEP, step_params(run_id, step))
        os.write(1, "".join(f"{s}\n" for s in steps).encode())
        step = steps[-1]
        if step % 10 == 9:
            # Resume query of the brief: the newest step must be the one just written.
            last = handle.execute(
                "SELECT step, state_snapshot FROM iterations WHERE run_id = %s ORDER BY step DESC LIMIT 1",
                [run_id],
            ).fetchone()
            if last is None or last["step"] != step or last["state_snapshot"]["step"] != step:
                raise AssertionError(f"resume read {last!r} right after writing step {step}")
        step += 1


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
