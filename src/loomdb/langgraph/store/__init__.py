"""LoomStore: LangGraph's long-term memory store (``BaseStore``) on a loomdb store.

The modules of this package:

* ``loom_store``: the ``LoomStore`` class (setup, batches, TTL);
* ``schema``: its two tables, and the namespace prefixes items are keyed by;
* ``plan``: checking a batch's ops and sorting them into reads and writes
  (``filter``: search filters; ``json``: values as plain JSON);
* ``embed``: embedding a batch's texts and queries;
* ``read`` and ``write``: the SQL of a batch's reads and of its one commit;
* ``sweeper``: the background thread that deletes expired items;
* ``errors``: ``StoreInputError``, raised for input the store cannot run.
"""

from __future__ import annotations

from .errors import StoreInputError
from .loom_store import LoomStore

__all__ = ["LoomStore", "StoreInputError"]
