"""The PEP 249 exception hierarchy, plus loomdb's own specific errors.

Every error loomdb raises is a subclass of :class:`Error`, and every message
names what was wrong: the SQL construct, the column, the branch, the file.

Errors carry PostgreSQL's SQLSTATE in ``sqlstate`` where one applies (as
psycopg's do), on both engines; the class follows psycopg's mapping of
SQLSTATE classes to PEP 249 classes (:func:`class_for_sqlstate`).
"""

from __future__ import annotations


class Warning(Exception):  # noqa: A001 - the name is fixed by PEP 249
    """Important warnings (PEP 249)."""


class Error(Exception):
    """Base class of every error loomdb raises (PEP 249).

    ``sqlstate`` is PostgreSQL's five-character SQLSTATE for the error
    (``"23505"`` for a unique violation, ``"42P01"`` for an undefined table,
    ...), the same on both engines, or None where PostgreSQL has none (a
    loomdb-only error such as an unknown branch, a misused handle). The
    ``sqlstate=`` keyword sets it; without it, the class's default applies
    (``"0A000"`` for :class:`NotSupportedError`, None for most).
    """

    #: The SQLSTATE an error of this class carries when none is given.
    default_sqlstate: str | None = None

    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        # In the instance's __dict__, so that pickling keeps it.
        self.sqlstate: str | None = sqlstate if sqlstate is not None else type(self).default_sqlstate


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

    default_sqlstate = "XX000"  # internal_error


class ProgrammingError(DatabaseError):
    """Malformed SQL, an unknown table or column, wrong parameter counts, ..."""


class NotSupportedError(DatabaseError):
    """Valid PostgreSQL that loomdb does not support (yet); the message names the construct."""

    default_sqlstate = "0A000"  # feature_not_supported


class BranchNotFoundError(ProgrammingError):
    """The named branch does not exist (or was dropped)."""


class BranchExistsError(ProgrammingError):
    """A branch with that name exists already."""


class CommitNotFoundError(ProgrammingError):
    """No commit with that id, or no commit at or before that time, on the lineage."""


class TransactionFailedError(InternalError):
    """A statement of a ``transaction(savepoints=False)`` block failed, so the whole
    transaction was rolled back; later statements of the block, and its end, raise this."""

    default_sqlstate = "25P02"  # in_failed_sql_transaction (psycopg: InternalError too)


class ReadOnlyError(ProgrammingError):
    """A write was attempted through a read-only (``as_of``) handle."""

    default_sqlstate = "25006"  # read_only_sql_transaction


class MergeConflict(DatabaseError):
    """Rows changed on both sides of a merge (or since a reverted commit) in ways
    that clash. Nothing was changed; ``conflicts`` lists every one."""

    def __init__(
        self, conflicts: list, *, sqlstate: str | None = None
    ) -> None:  # list[loomdb.results.Conflict]
        self.conflicts = list(conflicts)
        shown = "; ".join(
            f"{c.table} {c.key}: {c.kind}"
            + (f" on {', '.join(c.columns)}" if c.kind == "update/update" else "")
            for c in self.conflicts[:5]
        )
        more = f" (and {len(self.conflicts) - 5} more)" if len(self.conflicts) > 5 else ""
        super().__init__(
            f"{len(self.conflicts)} conflicting row(s): {shown}{more}; nothing was changed", sqlstate=sqlstate
        )


class NotALoomStoreError(DatabaseError):
    """The file exists but is not a loomdb store; it was left untouched."""


class StoreVersionError(DatabaseError):
    """The store was written by a newer loomdb whose format this version cannot read."""


# psycopg's mapping of SQLSTATE classes (the first two characters) to PEP 249
# classes (psycopg.errors); a class not listed is a DatabaseError there too.
_CLASS_OF_SQLSTATE: dict[str, type[DatabaseError]] = {
    "0A": NotSupportedError,
    "08": OperationalError,
    "10": ProgrammingError,
    "20": ProgrammingError,
    "21": ProgrammingError,
    "22": DataError,
    "23": IntegrityError,
    "24": InternalError,
    "25": InternalError,
    "26": ProgrammingError,
    "27": OperationalError,
    "28": OperationalError,
    "2B": InternalError,
    "2D": InternalError,
    "2F": OperationalError,
    "34": ProgrammingError,
    "38": OperationalError,
    "39": OperationalError,
    "3B": OperationalError,
    "3D": ProgrammingError,
    "3F": ProgrammingError,
    "40": OperationalError,
    "42": ProgrammingError,
    "44": ProgrammingError,
    "53": OperationalError,
    "54": OperationalError,
    "55": OperationalError,
    "57": OperationalError,
    "58": OperationalError,
    "F0": OperationalError,
    "HV": OperationalError,
    "P0": ProgrammingError,
    "XX": InternalError,
}


def class_for_sqlstate(sqlstate: str | None) -> type[DatabaseError]:
    """The loomdb class for an error with this SQLSTATE, as psycopg chooses
    its class: by the SQLSTATE's class (``"23505"`` -> IntegrityError);
    DatabaseError for an unknown or missing one."""
    return _CLASS_OF_SQLSTATE.get((sqlstate or "")[:2], DatabaseError)


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
    "class_for_sqlstate",
]
