"""The engine: loomdb's versioned store behind the ``Database`` facade.

``store`` (catalog, caches, the write-transaction primitive), ``session``
(one store seen from one branch), ``statements`` (queries and writes),
``writes/`` (INSERT, UPDATE, DELETE, DDL as version appends), ``history/``
(merge, diff, revert, reset), ``vectors`` and ``vector_search`` (top-k from
memory), ``batch_insert``, ``copy`` (a whole store to another engine) and
``local`` (the :class:`~loomdb.connection.Connection` the facade talks to).
It reaches a storage engine only through ``loomdb.backend.protocol``.
"""
