"""The SQLite engine: one file through apsw, with sqlite-vec.

``backend`` (the :class:`SQLiteBackend`), ``dialect`` (the SQL it runs) and
``functions`` (the SQL functions that SQL calls).
"""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
