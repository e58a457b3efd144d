"""The PostgreSQL engine: a store in one schema, through psycopg 3 (and pgvector).

``backend`` (the :class:`PostgresBackend`), ``wire`` (batches in one round
trip), ``dialect`` (the SQL it runs), ``types`` (column types and value
adapters) and ``urls`` (store URLs).
"""

from .backend import PostgresBackend

__all__ = ["PostgresBackend"]
