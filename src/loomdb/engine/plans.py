"""The plan cache: what the engine works out once per statement and schema.

Parsing, qualifying and typing a statement with sqlglot costs milliseconds;
running it costs microseconds. Everything derived from a statement's text and
the schema a lineage sees is kept here, one typed map per kind of plan, and
dropped whole when the schema changes (``Store.invalidate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from ..catalog import Column, TableSchema
from ..sql.compile import Compiled
from ..versioning.lineage import Lineage

if TYPE_CHECKING:
    from .vectors import VectorPlan

#: A compiled query: (statement key, lineage, hidden alias, vid parameter, vid alias).
QueryKey = tuple[Any, Lineage, str | None, int | None, str | None]
#: A key lookup: (table id, physical table, key columns, lineage, id(schema)[, rows asked]).
LookupKey = tuple[Any, ...]


@dataclass
class InsertPlan:
    """What one INSERT statement does, worked out once per statement text and branch.

    ``rows`` holds, per VALUES row, one source per target column: ``("p", i)``
    parameter $i, ``("v", text)`` a literal, ``("d",)`` the column default,
    ``("x", expr)`` an expression SQLite must compute.
    """

    schema: TableSchema
    table: exp.Table
    columns: list[Column]
    rows: list[list[tuple[Any, ...]]] | None
    #: INSERT ... SELECT's query (an ``exp.Query`` node: SELECT, UNION, ...); None for VALUES.
    query: exp.Expression | None
    unlisted: list[Column]


@dataclass
class ResultShape:
    """How rows of one compiled query become Python values."""

    compiled: Compiled
    row_type: type
    decode: list[Any]


@dataclass
class PlanCache:
    """Plans keyed by statement text and lineage; valid for one schema epoch."""

    #: Compiled SELECTs (and the sub-queries the writes compile).
    queries: dict[QueryKey, Compiled] = field(default_factory=dict)
    #: A SELECT compiled to carry the schema epoch, and whether it does.
    probed: dict[tuple[str, Lineage], tuple[Compiled, bool]] = field(default_factory=dict)
    #: The vector top-k plan of a SELECT (None: the query is not one).
    vector_plans: dict[tuple[str, Lineage], VectorPlan | None] = field(default_factory=dict)
    #: Row classes and decoders, by ``id(compiled)`` (the Compiled is kept to check identity).
    shapes: dict[int, ResultShape] = field(default_factory=dict)
    #: SQL of key lookups through a branch view.
    key_lookups: dict[LookupKey, str] = field(default_factory=dict)
    #: A column DEFAULT classified: ("now" | "uuid" | "const" | "expr", value).
    defaults: dict[tuple[Any, ...], tuple[str, Any]] = field(default_factory=dict)
    #: The statements that append, change in place, end and delete versions of a table.
    version_sql: dict[tuple[str, tuple[str, ...]], tuple[str, str, str, str, str | None]] = field(
        default_factory=dict
    )
    #: What one INSERT statement does, per branch.
    inserts: dict[tuple[str, Lineage], InsertPlan] = field(default_factory=dict)
    #: The key an ON CONFLICT clause names: (clause, schema, key), by their ids.
    conflict_targets: dict[tuple[int, int], tuple[exp.OnConflict, TableSchema, tuple[str, ...] | None]] = (
        field(default_factory=dict)
    )
    #: The INSERT of one row that skips a key the branch already has.
    absent_inserts: dict[LookupKey, str] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every plan (the schema changed)."""
        for f in fields(self):
            getattr(self, f.name).clear()
