"""The error LoomStore raises for input it cannot run."""

from __future__ import annotations

from ...errors import ProgrammingError


class StoreInputError(ProgrammingError, ValueError):
    """An op or a configuration LoomStore cannot run: an unknown filter operator,
    a negative limit, a value that is not JSON, an index config without dims, ...

    It is a ``loomdb.ProgrammingError`` and, as LangGraph's stores raise for bad
    input, a ``ValueError``. It is raised before anything is written, so the
    store is unchanged.
    """
