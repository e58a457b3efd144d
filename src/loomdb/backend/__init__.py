"""Storage engines. Upper layers use only the :class:`~loomdb.backend.base.Backend` protocol."""
