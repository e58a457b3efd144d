"""LangGraph integration: a checkpointer (LoomSaver) and a store (LoomStore)
over a loomdb store, embedded or on PostgreSQL.

Needs the ``langgraph`` extra (``pip install loomdb[langgraph]``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["LoomSaver", "LoomStore"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``import loomdb.langgraph`` stays cheap and
    # each half can be used without importing the other.
    if name == "LoomSaver":
        from .saver import LoomSaver

        return LoomSaver
    if name == "LoomStore":
        from .store import LoomStore

        return LoomStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
