"""Assertions the value-semantics tests share: one value of a query, and
equality with the same Python type (for Decimal, the same digits)."""

from __future__ import annotations

from typing import Any


def one(db: Any, sql: str, params: Any = None) -> Any:
    """The first column of the first row ``sql`` returns."""
    return db.execute(sql, params).fetchone()[0]


def same(got: Any, expected: Any) -> None:
    """Equal with the same type, and for Decimal the same digits (scale)."""
    assert type(got) is type(expected), (got, expected)
    assert str(got) == str(expected), (got, expected)
