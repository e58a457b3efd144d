"""loomdb: durable, queryable, branchable memory for AI agent loops.

>>> import loomdb
>>> db = loomdb.connect(":memory:")  # doctest: +SKIP
"""

from __future__ import annotations

from .connect import connect
from .cursor import Cursor, Row
from .database import Database
from .errors import (
    BranchExistsError,
    BranchNotFoundError,
    CommitNotFoundError,
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    MergeConflict,
    NotALoomStoreError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    ReadOnlyError,
    StoreVersionError,
    TransactionFailedError,
    Warning,
)
from .results import Branch, Change, Commit, Conflict, DiffStat, MergeResult, TableChanges
from .run import Resume, Run, Step, StepConflictError, StepNotFoundError
from .transfer import CopyResult, copy

__version__ = "0.1.0"

# PEP 249 module globals.
apilevel = "2.0"
threadsafety = 2  # threads may share the module and connections (statements serialise)
paramstyle = "pyformat"

__all__ = [
    "Branch",
    "Change",
    "Conflict",
    "DiffStat",
    "MergeConflict",
    "MergeResult",
    "TableChanges",
    "BranchExistsError",
    "BranchNotFoundError",
    "Commit",
    "CommitNotFoundError",
    "CopyResult",
    "Cursor",
    "DataError",
    "Database",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotALoomStoreError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "ReadOnlyError",
    "Resume",
    "Row",
    "Run",
    "Step",
    "StepConflictError",
    "StepNotFoundError",
    "StoreVersionError",
    "TransactionFailedError",
    "Warning",
    "__version__",
    "connect",
    "copy",
]
