"""A batch of row INSERTs as one write transaction in one round trip.

The statements around the rows (see ``loomdb.engine.batch_insert``): the
commit row, its id kept in the transaction's ``loom.batch_seq`` setting for
the rows' INSERTs to read; after the rows, the commit row dropped again when
no row was inserted under another schema epoch; and a check that fails on
purpose when nothing was inserted under ours, so that COMMIT (and its WAL
flush) is skipped and the transaction rolled back, as the usual path does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ... import errors
from ...layout import EPOCH_SQL
from ..protocol import BatchOutcome, PipelinedWrites, Statement

#: The transaction setting holding the batch's commit id.
BATCH_SEQ = "loom.batch_seq"
#: The batch's commit id as an SQL expression.
BATCH_SEQ_SQL = f"CAST(current_setting('{BATCH_SEQ}') AS bigint)"

_NOTHING = "loomdb: the batch inserted nothing"


def insert_batch(
    backend: PipelinedWrites,
    lock: int,
    commit: Statement,
    rows: Sequence[Statement],
    tables: Sequence[str],
    epoch: str,
    drop_commit: Callable[[str], str],
) -> BatchOutcome:
    """``PipelinedWrites.insert_batch`` on ``backend`` (see its contract)."""
    commit_sql, commit_params = commit
    first: Statement = (
        f"WITH c AS ({commit_sql}) SELECT c.seq, ({EPOCH_SQL}),"
        f" set_config('{BATCH_SEQ}', CAST(c.seq AS text), true) FROM c",
        list(commit_params),
    )
    unused = " AND ".join(f'NOT EXISTS (SELECT 1 FROM "{t}" WHERE _seq = {BATCH_SEQ_SQL})' for t in tables)
    # Nothing inserted under another epoch: the commit row goes, and COMMIT runs.
    cleanup: Statement = (f"{drop_commit(BATCH_SEQ_SQL)} AND {unused}", [])
    # Nothing inserted under ours: fail on purpose (no COMMIT, no WAL flush).
    check: Statement = (
        f"SELECT CAST(CASE WHEN ({EPOCH_SQL}) <> CAST(?1 AS text) OR NOT ({unused}) THEN '0'"
        f" ELSE '{_NOTHING} ' || current_setting('{BATCH_SEQ}') END AS integer)",
        [epoch],
    )
    try:
        results = backend.write_in_one_trip(lock, [first, *rows, cleanup, check])
    except errors.Error as exc:
        if _NOTHING in str(exc):  # rolled back: every row's key was taken
            return BatchOutcome(None, epoch, [0] * len(rows))
        raise
    head = results[0][0]
    if head is None:
        raise errors.InternalError("the batch's commit row returned nothing")
    seq, now_epoch, _ = head
    return BatchOutcome(
        int(seq), None if now_epoch is None else str(now_epoch), [n for _, n in results[1:-2]]
    )
