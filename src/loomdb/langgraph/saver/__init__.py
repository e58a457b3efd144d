"""LoomSaver: LangGraph's checkpointer on a loomdb store (embedded or PostgreSQL).

The modules of this package:

* ``loom_saver``: the ``LoomSaver`` class: construction, branches (fork,
  checkout, merge) and reads; it takes the rest from its base classes:
  ``write.SaverWrites`` (``put``, ``put_writes``, ``flush``),
  ``threads.SaverThreads`` (delete, copy, prune, DeltaChannel history) and
  ``aio.SaverAsync`` (the async methods), over ``memory.SaverState`` (what a
  saver keeps in memory between calls);
* ``config``: the checkpoint a LangGraph config names, and back;
* ``schema``: the saver's three tables and the statements it runs on them;
* ``codec``: how channel values and writes become columns, and back
  (``floats`` and ``zstd``: the compact forms of large values);
* ``read``: reading the tables back into LangGraph objects;
* ``maintenance``: the SQL of whole-thread operations (delete, copy, prune)
  and of the DeltaChannel ancestor walk.
"""

from __future__ import annotations

from .loom_saver import LoomSaver

__all__ = ["LoomSaver"]
