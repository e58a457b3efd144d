"""One open store: its connection, catalog, caches and write transactions (see ``store.py``)."""

from .store import BranchInfo, Store

__all__ = ["BranchInfo", "Store"]
