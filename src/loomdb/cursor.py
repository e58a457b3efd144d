"""Results: a PEP 249 shaped cursor over rows that answer by name and by index."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import errors
from .types import ColumnType, from_storage


class Row(tuple):
    """One result row: ``row["col"]``, ``row[0]``, ``row.keys()``, ``dict(row)``.

    A Row is a tuple of its values, so it compares equal to a tuple and
    unpacks like one.
    """

    __slots__ = ()
    _names: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise KeyError(f"no column {key!r} in this row; columns: {', '.join(self._names)}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)

    def values(self) -> list[Any]:
        return list(self)

    def items(self) -> list[tuple[str, Any]]:
        return list(zip(self._names, self, strict=True))

    def get(self, key: str, default: Any = None) -> Any:
        index = self._index.get(key)
        return default if index is None else tuple.__getitem__(self, index)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in zip(self._names, self, strict=True))
        return f"Row({inner})"


def row_class(names: Sequence[str]) -> type[Row]:
    """A Row subclass that knows the column names of one result shape."""
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    return type("Row", (Row,), {"__slots__": (), "_names": tuple(names), "_index": index})


def decoders(types: Sequence[ColumnType | None]) -> list[tuple[int, Callable[[Any], Any]]]:
    out = []
    for position, ctype in enumerate(types):
        if ctype is not None and ctype.kind not in ("text", "int", "serial", "bytes"):
            out.append((position, lambda v, t=ctype: from_storage(v, t)))
    return out


class Cursor:
    """The result of ``Database.execute``.

    ``description`` has one 7-tuple per result column (name and type code
    first); ``rowcount`` is the number of rows an INSERT/UPDATE/DELETE wrote,
    -1 for a query.
    """

    arraysize = 1

    def __init__(
        self,
        rows: Iterator[tuple[Any, ...]] | None,
        names: Sequence[str] = (),
        types: Sequence[ColumnType | None] = (),
        rowcount: int = -1,
        translate: Callable[[Exception], Exception] | None = None,
        row_type: type[Row] | None = None,
        decode: list[tuple[int, Callable[[Any], Any]]] | None = None,
    ):
        self._rows = rows
        self._row_type = row_type or row_class(names)
        self._decode = decoders(types) if decode is None else decode
        self._translate = translate
        self.rowcount = rowcount
        self._names = names
        self._types = types

    @property
    def description(self) -> tuple[tuple[Any, ...], ...] | None:
        """One 7-tuple per result column: (name, type_code, None, None, None, None, None)."""
        if not self._names:
            return None
        return tuple(
            (name, ctype.sql if ctype else None, None, None, None, None, None)
            for name, ctype in zip(self._names, self._types, strict=False)
        )

    def _next_raw(self) -> tuple[Any, ...] | None:
        if self._rows is None:
            return None
        try:
            return next(self._rows)
        except StopIteration:
            self._rows = None
            return None
        except errors.Error:
            raise
        except Exception as exc:
            if self._translate is not None:
                raise self._translate(exc) from None
            raise

    def _make(self, raw: tuple[Any, ...]) -> Row:
        if self._decode:
            values = list(raw)
            for position, decode in self._decode:
                values[position] = decode(values[position])
            return self._row_type(values)
        return self._row_type(raw)

    def fetchone(self) -> Row | None:
        raw = self._next_raw()
        return None if raw is None else self._make(raw)

    def fetchmany(self, size: int | None = None) -> list[Row]:
        size = self.arraysize if size is None else size
        out = []
        while len(out) < size:
            row = self.fetchone()
            if row is None:
                break
            out.append(row)
        return out

    def fetchall(self) -> list[Row]:
        out = []
        while (row := self.fetchone()) is not None:
            out.append(row)
        return out

    def __iter__(self) -> Iterator[Row]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._rows = None

    def setinputsizes(self, sizes: Any) -> None:
        """PEP 249 no-op."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """PEP 249 no-op."""
