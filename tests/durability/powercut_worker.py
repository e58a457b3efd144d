"""Writes commits through the power-cut VFS, cuts the power, dies without cleanup.

Run as ``python powercut_worker.py '<json config>'``. The last stdout line is a
JSON report: which commits returned before the cut ("acked") and what the VFS saw.
The process ends with ``os._exit`` right after the cut: nothing is closed, as in
a real power cut.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from durability.common import INSERT_STEP, ITERATIONS_DDL, step_params  # noqa: E402
from durability.powervfs import PowerCutVFS  # noqa: E402

progress: dict = {"acked": [], "setup_ops": None}


def run_loomdb(cfg: dict, vfs: PowerCutVFS) -> tuple:
    import loomdb

    if cfg.get("setup_cut_op") is not None:
        vfs.cut_at_op = cfg["setup_cut_op"]
    db = loomdb.connect(cfg["path"], durability=cfg["durability"], vfs=vfs.vfs_name)
    db.execute(ITERATIONS_DDL)
    handle = db.branch(cfg["branch"]) if cfg.get("branch") else db
    setup_ops = progress["setup_ops"] = vfs.ops
    acked = progress["acked"]
    for i in range(cfg["commits"]):
        if i == cfg.get("cut_commit") and not vfs.cut_done:
            vfs.cut_at_op = vfs.ops + cfg["cut_offset"]
        if i % 5 == 4:
            with handle.transaction(message=f"step {i}", author="powercut"):
                handle.execute(INSERT_STEP, step_params(cfg["run_id"], i))
        else:
            handle.execute(INSERT_STEP, step_params(cfg["run_id"], i))
        if not vfs.cut_done:
            acked.append(i)
    return {"acked": acked, "setup_ops": setup_ops}, (db, handle)


def run_raw(cfg: dict, vfs: PowerCutVFS) -> tuple:
    import apsw

    con = apsw.Connection(cfg["path"], vfs=vfs.vfs_name)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t(step INTEGER, payload BLOB)")
    con.execute(f"PRAGMA synchronous={cfg['synchronous']}")
    setup_ops = progress["setup_ops"] = vfs.ops
    acked = progress["acked"]
    for i in range(cfg["commits"]):
        if i == cfg.get("cut_commit") and not vfs.cut_done:
            vfs.cut_at_op = vfs.ops + cfg["cut_offset"]
        con.execute("INSERT INTO t VALUES (?, randomblob(?))", (i, 100 + 37 * (i % 50)))
        if not vfs.cut_done:
            acked.append(i)
    return {"acked": acked, "setup_ops": setup_ops}, con


def main() -> None:
    cfg = json.loads(sys.argv[1])
    vfs = PowerCutVFS("powercut", cut_mode=cfg["cut_mode"], seed=cfg["seed"])
    try:
        # Keep the connections referenced until the cut: a garbage-collected
        # connection would close, checkpoint and delete the WAL before the power goes.
        report, keepalive = (run_loomdb if cfg["mode"] == "loomdb" else run_raw)(cfg, vfs)
        report["pending_at_end"] = vfs.pending_ops()
        vfs.cut()  # no-op if the scheduled cut already fired
        del keepalive
    except BaseException:
        if not vfs.cut_done:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(2)
        # After the cut the machine is dead: whatever the process does next is moot.
        report = {"acked": progress["acked"], "setup_ops": progress["setup_ops"]}
        report["after_cut_error"] = traceback.format_exc()
    report.update(
        cut=vfs.cut_info,
        opened=sorted(set(vfs.opened)),
        writes=vfs.writes,
        syncs=vfs.syncs,
        truncates=vfs.truncates,
        deletes=vfs.deletes,
        ops=vfs.ops,
    )
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
