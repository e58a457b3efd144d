"""The PEP 249 exception hierarchy, plus loomdb's own specific errors.

Every error loomdb raises is a subclass of :class:`Error`, and every message
names what was wrong: the SQL construct, the column, the branch, the file.
"""

from __future__ import annotations


class Warning(Exception):  # noqa: A001 - the name is fixed by PEP 249
    """Important warnings (PEP 249)."""


class Error(Exception):
    """Base class of every error loomdb raises (PEP 249)."""


class InterfaceError(Error):
    """Misuse of the loomdb interface itself, e.g. a closed handle."""


class DatabaseError(Error):
    """Errors related to the store."""


class DataError(DatabaseError):
    """A value does not fit its column: wrong vector dimension, NaN, bad JSON, ..."""


class OperationalError(DatabaseError):
    """The engine could not do its work: I/O errors, a lock wait that timed out, ..."""


class IntegrityError(DatabaseError):
    """A PRIMARY KEY, UNIQUE or NOT NULL constraint would be violated."""


class InternalError(DatabaseError):
    """loomdb found its own catalog in an unexpected state."""


class ProgrammingError(DatabaseError):
    """Malformed SQL, an unknown table or column, wrong parameter counts, ..."""


class NotSupportedError(DatabaseError):
    """Valid PostgreSQL that loomdb does not support (yet); the message names the construct."""


class BranchNotFoundError(ProgrammingError):
    """The named branch does not exist (or was dropped)."""


class BranchExistsError(ProgrammingError):
    """A branch with that name exists already."""


class CommitNotFoundError(ProgrammingError):
    """No commit with that id, or no commit at or before that time, on the lineage."""


class TransactionFailedError(InternalError):
    """A statement of a ``transaction(savepoints=False)`` block failed, so the whole
    transaction was rolled back; later statements of the block, and its end, raise this."""


class ReadOnlyError(ProgrammingError):
    """A write was attempted through a read-only (``as_of``) handle."""


class MergeConflict(DatabaseError):
    """Rows changed on both sides of a merge (or since a reverted commit) in ways
    that clash. Nothing was changed; ``conflicts`` lists every one."""

    def __init__(self, conflicts: list) -> None:  # list[loomdb.results.Conflict]
        self.conflicts = list(conflicts)
        shown = "; ".join(
            f"{c.table} {c.key}: {c.kind}"
            + (f" on {', '.join(c.columns)}" if c.kind == "update/update" else "")
            for c in self.conflicts[:5]
        )
        more = f" (and {len(self.conflicts) - 5} more)" if len(self.conflicts) > 5 else ""
        super().__init__(f"{len(self.conflicts)} conflicting row(s): {shown}{more}; nothing was changed")


class NotALoomStoreError(DatabaseError):
    """The file exists but is not a loomdb store; it was left untouched."""


class StoreVersionError(DatabaseError):
    """The store was written by a newer loomdb whose format this version cannot read."""


__all__ = [
    "BranchExistsError",
    "BranchNotFoundError",
    "CommitNotFoundError",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "MergeConflict",
    "NotALoomStoreError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "ReadOnlyError",
    "StoreVersionError",
    "TransactionFailedError",
    "Warning",
]
