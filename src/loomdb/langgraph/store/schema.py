"""The tables LoomStore keeps its items in, created on first use.

Both are ordinary loomdb tables, so they are versioned, branch with the
handle, and can be queried with SQL::

    langgraph_store           one row per item
        prefix      TEXT       the namespace's labels joined with '.' (labels never contain '.')
        key         TEXT       PRIMARY KEY (prefix, key)
        namespace   JSONB      the namespace as a JSON array of labels
        value       JSONB      the item's value
        created_at  TIMESTAMP  first put of the item
        updated_at  TIMESTAMP  last put
        expires_at  TIMESTAMP  NULL: never; else the item is invisible from then on
        ttl_minutes DOUBLE PRECISION  the item's TTL, for refreshes on read

    langgraph_store_vectors   one row per embedded text of an item (with an index config)
        prefix, key TEXT       the item
        field       TEXT       the field path it came from ('text', 'chunks[*].1', '$')
        embedding   VECTOR(dims)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...database import Database
from ...errors import ProgrammingError
from .errors import StoreInputError

ITEMS = "langgraph_store"
VECTORS = "langgraph_store_vectors"

ITEMS_DDL = f"""
CREATE TABLE IF NOT EXISTS {ITEMS} (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    namespace JSONB NOT NULL,
    value JSONB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    ttl_minutes DOUBLE PRECISION,
    PRIMARY KEY (prefix, key)
)"""

EXPIRY_INDEX_DDL = f"CREATE INDEX IF NOT EXISTS {ITEMS}_expires_at ON {ITEMS} (expires_at)"

VECTORS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    embedding VECTOR({dims}) NOT NULL,
    PRIMARY KEY (prefix, key, field)
)"""


@dataclass(frozen=True)
class Schema:
    """What the store's tables hold: ``vector_dims`` is None when there is no vectors table."""

    vector_dims: int | None


def ensure_schema(db: Database, dims: int | None) -> Schema:
    """Create the tables if missing (one commit; none when they exist) and describe them.

    ``dims`` (from the index config) creates the vectors table too. A read-only
    handle creates nothing. Raises StoreInputError when the store's vectors
    hold another dimension than ``dims``.
    """
    if not db.read_only:
        with db.transaction(message="langgraph store: create tables"):
            db.execute(ITEMS_DDL)
            db.execute(EXPIRY_INDEX_DDL)
            if dims is not None:
                db.execute(VECTORS_DDL.format(table=VECTORS, dims=int(dims)))
    found = _vector_dims(db)
    if dims is not None and found is not None and found != dims:
        raise StoreInputError(
            f"the index config says dims={dims} but {VECTORS}.embedding in this store is VECTOR({found}); "
            "use the same dimension (or another store)"
        )
    return Schema(vector_dims=found)


def _vector_dims(db: Database) -> int | None:
    """The dimension of the vectors table's embedding column, None if the table is missing."""
    try:
        description = db.execute(f"SELECT embedding FROM {VECTORS} LIMIT 0").description
    except ProgrammingError:
        return None
    match = re.search(r"\((\d+)\)", str(description[0][1])) if description else None
    return int(match.group(1)) if match else None


def to_prefix(namespace: tuple[str, ...]) -> str:
    """The ``prefix`` column of a namespace: its labels joined with '.'."""
    return ".".join(namespace)


def from_prefix(prefix: str) -> tuple[str, ...]:
    """The namespace a ``prefix`` column holds."""
    return tuple(prefix.split("."))


def prefix_condition(column: str, namespace_prefix: tuple[str, ...]) -> tuple[str, list[str]]:
    """SQL selecting the rows whose namespace starts with ``namespace_prefix`` (whole labels).

    A range on the text (TEXT compares bytewise on both engines, and '/'
    follows '.') rather than LIKE, so the primary key's index answers it.
    """
    if not namespace_prefix:
        return "1 = 1", []
    p = to_prefix(namespace_prefix)
    return f"({column} = %s OR ({column} >= %s AND {column} < %s))", [p, p + ".", p + "/"]
