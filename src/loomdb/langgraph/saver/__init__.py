"""LoomSaver: LangGraph's checkpointer on a loomdb store (embedded or PostgreSQL).

The modules of this package:

* ``loom_saver``: the ``LoomSaver`` class (construction, branches, reads);
* ``schema``: its three tables and the statements it runs on them;
* ``codec``: how channel values and writes become columns, and back
  (``floats`` and ``zstd``: the compact forms of large values);
* ``read``: reading the tables back into LangGraph objects;
* ``maintenance``: whole-thread operations (delete, copy, prune) and the
  DeltaChannel ancestor walk.
"""

from __future__ import annotations

from .loom_saver import LoomSaver

__all__ = ["LoomSaver"]
