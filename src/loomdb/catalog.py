"""What a table looks like on one branch: columns, keys and indexes.

Schemas are versioned per branch like rows are: each DDL statement writes a
new :class:`TableSchema` entry for its branch, and a branch sees the newest
entry along its lineage. Several branches may point at one physical table
(``physical``); a physical column is never dropped or retyped, so DDL on one
branch never destroys data another branch or history can see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from .types import ColumnType


@dataclass(frozen=True)
class Column:
    """One column as a branch sees it."""

    name: str
    type: ColumnType
    phys: str
    not_null: bool = False
    #: DEFAULT as PostgreSQL SQL text (None: no default).
    default: str | None = None
    #: For a column added by ALTER TABLE with a constant default: versions
    #: written before ``added_seq`` read ``fill`` (a storage value) instead.
    added_seq: int | None = None
    fill: Any = None
    #: An IDENTITY column: "always" (GENERATED ALWAYS: explicit values are
    #: refused) or "by default"; None for others. Its type is a serial.
    identity: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "type": self.type.sql,
            "phys": self.phys,
            "not_null": self.not_null,
            "default": self.default,
            "added_seq": self.added_seq,
            "fill": self.fill,
        }
        if self.identity is not None:
            data["identity"] = self.identity
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Column:
        return cls(
            name=data["name"],
            type=ColumnType.parse(data["type"]),
            phys=data["phys"],
            not_null=data["not_null"],
            default=data["default"],
            added_seq=data.get("added_seq"),
            fill=data.get("fill"),
            identity=data.get("identity"),
        )


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool
    phys: str
    #: A vector index's method and operator class (hnsw, vector_cosine_ops);
    #: None for a B-tree.
    method: str | None = None
    opclass: str | None = None

    def to_json(self) -> list[Any]:
        out: list[Any] = [self.name, list(self.columns), self.unique, self.phys]
        if self.method is not None:
            out += [self.method, self.opclass]
        return out

    @classmethod
    def from_json(cls, data: list[Any]) -> Index:
        name, columns, unique, phys, *vector = data
        return cls(name, tuple(columns), unique, phys, *vector)


@dataclass(frozen=True)
class TableSchema:
    """A user table on one branch."""

    name: str
    tid: int
    physical: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    uniques: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()
    _by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def keys(self) -> tuple[tuple[str, ...], ...]:
        """Every set of columns that must be unique on a branch (PRIMARY KEY first)."""
        return ((self.primary_key,) if self.primary_key else ()) + self.uniques

    def with_columns(self, columns: tuple[Column, ...]) -> TableSchema:
        return replace(self, columns=columns, _by_name={})

    def evolve(self, **changes: Any) -> TableSchema:
        return replace(self, _by_name={}, **changes)

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "tid": self.tid,
                "physical": self.physical,
                "columns": [c.to_json() for c in self.columns],
                "primary_key": list(self.primary_key),
                "uniques": [list(u) for u in self.uniques],
                "indexes": [i.to_json() for i in self.indexes],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> TableSchema:
        data = json.loads(text)
        return cls(
            name=data["name"],
            tid=data["tid"],
            physical=data["physical"],
            columns=tuple(Column.from_json(c) for c in data["columns"]),
            primary_key=tuple(data["primary_key"]),
            uniques=tuple(tuple(u) for u in data["uniques"]),
            indexes=tuple(Index.from_json(i) for i in data["indexes"]),
        )
