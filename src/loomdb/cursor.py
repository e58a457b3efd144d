"""Results: a PEP 249 shaped cursor over rows that answer by name and by index."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from . import errors
from .types import ColumnType, dump_json, from_storage


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

    # -- export -------------------------------------------------------------------------

    def numpy(self) -> dict[str, np.ndarray]:
        """The rows not yet fetched as a dict of column name -> NumPy array.

        * VECTOR(n): a 2-D float32 array of shape (rows, n); a NULL vector is
          a row of NaN (stored vectors never hold NaN). With no rows the
          shape is (0, n), or (0, 0) when the dimension is unknown. An
          expression whose vectors differ in length gives a 1-D object array.
        * INT/BIGINT/SERIAL: int64; with NULLs, float64 with NaN for NULL
          (object with None if a value is beyond 2**53, where float64 would
          round it).
        * REAL/DOUBLE PRECISION: float64 (NaN for NULL).
        * BOOLEAN: bool; with NULLs, object holding True/False/None.
        * TIMESTAMP / TIMESTAMPTZ: datetime64[us], a TIMESTAMPTZ in UTC (NumPy has
          no time zones; NaT for NULL).
        * everything else (TEXT, JSON, NUMERIC, DATE, BYTEA, UUID): a 1-D object
          array of the values ``fetchone`` would return (dict, Decimal, date...).
        * columns of unknown type (most expressions, and columns the query
          does not type) are typed from their values: all integers as INT,
          all numbers as REAL, anything else as objects.

        A repeated column name gets a suffix: ``id``, ``id_1``, ``id_2``.
        """
        columns = self._export_columns()
        return {name: column.numpy() for name, column in zip(_unique(self._names), columns, strict=True)}

    def arrow(self) -> Any:
        """The rows not yet fetched as a ``pyarrow.Table`` (needs ``pip install loomdb[export]``).

        VECTOR(n) -> ``fixed_size_list<float32>[n]`` (built from one float32
        buffer), INT -> int64, REAL -> float64, BOOLEAN -> bool, TEXT ->
        string, JSON/JSONB -> string holding compact JSON text, TIMESTAMP ->
        ``timestamp[us]``, TIMESTAMPTZ -> ``timestamp[us, tz=UTC]``, DATE -> date32, NUMERIC(p, s) ->
        decimal128(p, s) (values with more digits than declared widen the
        decimal type; NUMERIC without a known precision -> string of the exact
        decimal), BYTEA -> binary, UUID -> string. Columns of unknown type are
        typed by pyarrow from the values (string if they are mixed).
        """
        pa = _require("pyarrow", "Cursor.arrow()")
        columns = self._export_columns()
        arrays = [column.arrow(pa) for column in columns]
        return pa.Table.from_arrays(arrays, names=list(self._names))

    def df(self) -> Any:
        """The rows not yet fetched as a pandas DataFrame (needs ``pip install loomdb[export]``).

        Built to round-trip what ``fetchall`` returns: VECTOR -> an object
        column of 1-D float32 arrays (None for NULL); INT -> int64 (pandas'
        nullable ``Int64`` when NULLs are present); REAL -> float64 (NaN for
        NULL); BOOLEAN -> bool (nullable ``boolean`` with NULLs); TIMESTAMP ->
        ``datetime64[us]``, TIMESTAMPTZ -> ``datetime64[us, UTC]`` (NaT for NULL); everything else -> an object
        column of the fetched Python values (JSON as dict/list, NUMERIC as
        Decimal, DATE as date, ...). Columns of unknown type are typed from
        their values as in :meth:`numpy` (integers with NULLs as ``Int64``).
        """
        pd = _require("pandas", "Cursor.df()")
        columns = self._export_columns()
        if not columns:
            return pd.DataFrame()
        frame = pd.DataFrame({i: column.pandas(pd) for i, column in enumerate(columns)})
        frame.columns = list(self._names)
        return frame

    def _export_columns(self) -> list[_Column]:
        raws = []
        while (raw := self._next_raw()) is not None:
            raws.append(raw)
        count = len(self._names)
        values: list[Sequence[Any]] = list(zip(*raws, strict=True)) if raws else [()] * count
        types = list(self._types)[:count] + [None] * (count - len(self._types))
        decode = dict(self._decode)
        return [_Column(types[i], values[i], decode.get(i)) for i in range(count)]

    def setinputsizes(self, sizes: Any) -> None:
        """PEP 249 no-op."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """PEP 249 no-op."""


# -- export helpers ------------------------------------------------------------------------

_EXTRA = {"pyarrow": "export", "pandas": "export"}
_MAX_EXACT_FLOAT_INT = 2**53
_PRECISION = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def _require(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise errors.InterfaceError(
            f"{what} needs {module}, which is not installed: pip install loomdb[{_EXTRA[module]}]"
        ) from exc


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    taken = set(names)
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        n = seen[name]
        while True:
            n += 1
            candidate = f"{name}_{n}"
            if candidate not in taken:
                break
        seen[name] = n
        taken.add(candidate)
        out.append(candidate)
    return out


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array holding each value as is (lists and arrays stay single cells)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _infer_kind(values: Sequence[Any]) -> str | None:
    """The kind of a column of unknown type, from its (non-NULL) Python values."""
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        else:
            return None
        if len(kinds) > 1 and not kinds <= {"int", "float"}:
            return None
    if kinds == {"int"}:
        return "int"
    if kinds and kinds <= {"int", "float"}:
        return "float"
    if kinds == {"bool"}:
        return "bool"
    return None


class _Column:
    """One result column being exported: its type, storage values and decoder."""

    def __init__(self, ctype: ColumnType | None, raw: Sequence[Any], decode: Callable[[Any], Any] | None):
        self.ctype = ctype
        self.raw = raw
        self.decode = decode
        kind = ctype.kind if ctype is not None else None
        self.kind = "int" if kind == "serial" else kind
        self._decoded: list[Any] | None = None
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def values(self) -> list[Any]:
        """The Python values fetchone() returns for this column."""
        if self._decoded is None:
            decode = self.decode
            if decode is None:
                self._decoded = list(self.raw)
            else:
                self._decoded = [None if v is None else decode(v) for v in self.raw]
        return self._decoded

    @property
    def has_null(self) -> bool:
        return any(v is None for v in self.raw)

    def effective_kind(self) -> str | None:
        if self.kind is None:
            return _infer_kind(self.raw)
        return self.kind

    # -- vectors ----------------------------------------------------------------------

    def vector_matrix(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(float32 matrix (n, dim) with NaN rows for NULL, validity mask), or None if ragged."""
        if self._matrix is not None:
            return self._matrix
        dim = self.ctype.dim if self.ctype is not None else None
        parts: list[bytes | None] = []
        sizes = set()
        for v in self.raw:
            if v is None:
                parts.append(None)
                continue
            if isinstance(v, bytes):
                chunk = v
            elif isinstance(v, (bytearray, memoryview)):
                chunk = bytes(v)
            else:
                chunk = np.asarray(from_storage(v, self.ctype), dtype="<f4").tobytes()
            sizes.add(len(chunk))
            parts.append(chunk)
        if len(sizes) > 1 or (dim is not None and sizes and sizes != {4 * dim}):
            return None
        if dim is None:
            dim = sizes.pop() // 4 if sizes else 0
        valid = np.fromiter((p is not None for p in parts), dtype=bool, count=len(parts))
        if not valid.all():
            nan_row = np.full(dim, np.nan, dtype="<f4").tobytes()
            parts = [nan_row if p is None else p for p in parts]
        buffer = bytearray().join(parts)  # type: ignore[arg-type]
        flat = np.frombuffer(buffer, dtype="<f4").astype(np.float32, copy=False)
        self._matrix = (flat.reshape(len(parts), dim), valid)
        return self._matrix

    # -- timestamps -------------------------------------------------------------------

    def datetimes(self) -> np.ndarray | None:
        """datetime64[us] (UTC, naive) with NaT for NULL; None when a value is not a timestamp."""
        raw = self.raw
        if all(v is None or (isinstance(v, str) and len(v) == 32 and v.endswith("+00:00")) for v in raw):
            try:
                return np.array([None if v is None else v[:26] for v in raw], dtype="datetime64[us]")
            except ValueError:
                pass
        out = np.empty(len(raw), dtype="datetime64[us]")
        for i, v in enumerate(self.values):
            if v is None:
                out[i] = np.datetime64("NaT")
            elif isinstance(v, dt.datetime):
                if v.tzinfo is not None:
                    v = v.astimezone(dt.UTC).replace(tzinfo=None)
                out[i] = np.datetime64(v, "us")
            else:
                return None
        return out

    # -- NumPy ------------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        kind = self.effective_kind()
        try:
            if kind == "vector":
                matrix = self.vector_matrix()
                if matrix is not None:
                    return matrix[0]
            elif kind == "int":
                return self._numpy_int()
            elif kind == "float":
                return np.array(self.values, dtype=np.float64)
            elif kind == "bool":
                if not self.has_null:
                    return np.array(self.values, dtype=bool)
            elif kind == "timestamp":
                stamps = self.datetimes()
                if stamps is not None:
                    return stamps
        except (TypeError, ValueError, OverflowError):
            pass  # a value that does not fit the declared type: hand back the values as objects
        return _objects(self.values)

    def _numpy_int(self) -> np.ndarray:
        values = self.values
        if not self.has_null:
            return np.array(values, dtype=np.int64)
        if all(v is None or abs(v) <= _MAX_EXACT_FLOAT_INT for v in values):
            return np.array(values, dtype=np.float64)
        return _objects(values)

    # -- Arrow ------------------------------------------------------------------------

    def arrow(self, pa: ModuleType) -> Any:
        kind = self.kind
        try:
            if kind is None:
                return self._arrow_inferred(pa)
            if kind == "vector":
                return self._arrow_vector(pa)
            if kind == "int":
                return pa.array([None if v is None else int(v) for v in self.values], type=pa.int64())
            if kind == "float":
                return pa.array([None if v is None else float(v) for v in self.values], type=pa.float64())
            if kind == "bool":
                return pa.array([None if v is None else bool(v) for v in self.values], type=pa.bool_())
            if kind == "text":
                return pa.array([None if v is None else str(v) for v in self.values], type=pa.string())
            if kind == "json":
                # Re-encoded, so every engine exports the same compact text
                # (PostgreSQL's jsonb output has spaces and its own key order).
                text = [None if v is None else dump_json(from_storage(v, self.ctype)) for v in self.raw]
                return pa.array(text, type=pa.string())
            if kind == "timestamp":
                stamps = self.datetimes()
                if stamps is not None:
                    zone = "UTC" if self.ctype is not None and self.ctype.with_tz else None
                    return pa.array(
                        stamps.view(np.int64), type=pa.timestamp("us", tz=zone), mask=np.isnat(stamps)
                    )
            if kind == "date":
                return pa.array(self.values, type=pa.date32())
            if kind == "numeric":
                return self._arrow_numeric(pa)
            if kind == "bytes":
                return pa.array([None if v is None else bytes(v) for v in self.values], type=pa.binary())
            if kind == "uuid":
                return pa.array([None if v is None else str(v) for v in self.values], type=pa.string())
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass  # a value that does not fit the declared type: let pyarrow type the values
        return self._arrow_inferred(pa)

    def _arrow_inferred(self, pa: ModuleType) -> Any:
        values = self.values
        try:
            return pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())

    def _arrow_vector(self, pa: ModuleType) -> Any:
        matrix = self.vector_matrix()
        if matrix is None:  # vectors of different lengths (an untyped expression)
            return pa.array(
                [None if v is None else np.asarray(v, dtype=np.float32) for v in self.values],
                type=pa.list_(pa.float32()),
            )
        data, valid = matrix
        n, dim = data.shape
        if dim == 0 and (self.ctype is None or self.ctype.dim is None):
            return pa.array([None] * n, type=pa.list_(pa.float32()))
        flat = pa.array(data.reshape(-1), type=pa.float32())
        list_type = pa.list_(pa.float32(), dim)
        if valid.all():
            return pa.Array.from_buffers(list_type, n, [None], children=[flat])
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
        return pa.Array.from_buffers(list_type, n, [bitmap], children=[flat])

    def _arrow_numeric(self, pa: ModuleType) -> Any:
        values = self.values
        match = _PRECISION.search(self.ctype.sql) if self.ctype is not None else None
        if match is not None:
            precision, scale = int(match.group(1)), int(match.group(2) or 0)
            if 0 < precision <= 38:
                try:
                    return pa.array(values, type=pa.decimal128(precision, scale))
                except (pa.ArrowException, TypeError, ValueError):
                    return pa.array(values)  # more digits than declared: let the decimal type widen
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())

    # -- pandas -----------------------------------------------------------------------

    def pandas(self, pd: ModuleType) -> Any:
        kind = self.effective_kind()
        try:
            if kind == "vector":
                matrix = self.vector_matrix()
                if matrix is not None:
                    data, valid = matrix
                    rows = [row if ok else None for row, ok in zip(data, valid, strict=True)]
                    return pd.Series(_objects(rows), dtype=object)
            elif kind == "int":
                if self.has_null:
                    return pd.Series(pd.array(self.values, dtype="Int64"))
                return pd.Series(np.array(self.values, dtype=np.int64))
            elif kind == "float":
                return pd.Series(np.array(self.values, dtype=np.float64))
            elif kind == "bool":
                if self.has_null:
                    return pd.Series(pd.array(self.values, dtype="boolean"))
                return pd.Series(np.array(self.values, dtype=bool))
            elif kind == "timestamp":
                stamps = self.datetimes()
                if stamps is not None:
                    series = pd.Series(stamps)
                    return (
                        series.dt.tz_localize("UTC")
                        if self.ctype is not None and self.ctype.with_tz
                        else series
                    )
        except (TypeError, ValueError, OverflowError):
            pass
        return pd.Series(_objects(self.values), dtype=object)
