"""PyTorch export: a query as a ``torch.utils.data.IterableDataset``.

>>> import loomdb.torch  # doctest: +SKIP
>>> ds = loomdb.torch.dataset(db, "SELECT embedding, label FROM items ORDER BY id")  # doctest: +SKIP
>>> for row in torch.utils.data.DataLoader(ds, batch_size=32):  # doctest: +SKIP
...     row["embedding"].shape  # (32, dim)

Needs PyTorch (``pip install loomdb[torch]``); importing this module does
not, :func:`dataset` does. For a whole result at once, use
``torch.from_numpy(cursor.numpy()["embedding"])`` instead.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from . import errors

__all__ = ["dataset"]

_CLASS: type | None = None


def _torch() -> ModuleType:
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise errors.InterfaceError(
            "loomdb.torch needs PyTorch, which is not installed: pip install loomdb[torch]"
        ) from exc


def dataset(
    db: Any,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    device: Any = "cpu",
) -> Any:
    """A ``torch.utils.data.IterableDataset`` over the rows of ``sql`` on handle ``db``.

    Each iteration runs the query again (so it sees the branch as it is
    then; pass an ``as_of`` handle for a fixed snapshot) and yields one dict
    per row, column name -> value:

    * VECTOR: a 1-D float32 tensor on ``device``;
    * INT/BIGINT/SERIAL (and integer-valued untyped expressions): an int64
      scalar tensor; REAL/DOUBLE PRECISION: a float64 scalar tensor (exactly
      the stored value; call ``.float()`` for float32); BOOLEAN: a bool
      scalar tensor; all on ``device``;
    * everything else (TEXT, JSON values, timestamps, Decimal, ...) and every
      NULL: the Python value ``fetchone`` returns (None for NULL).

    With a ``DataLoader`` of several workers, each worker opens its own
    connection to the store file, runs the query, and keeps every
    ``num_workers``-th row (row ``i`` goes to worker ``i % num_workers``),
    so together they yield each row once. Give the query an ``ORDER BY``
    so that every worker sees the same order, and use an ``as_of`` handle
    if other writers may commit while the workers read. ``batch_size`` > 1
    in a DataLoader collates rows (the default collate cannot batch NULLs).

    Raises InterfaceError when PyTorch is not installed.
    """
    _torch()
    cls = _dataset_class()
    return cls(db, sql, params, device)


def _convert(torch: ModuleType, kind: str | None, device: Any) -> Callable[[Any], Any]:
    """A function from one fetched value to what the dataset yields for it."""

    def vector(value: Any) -> Any:
        if value is None:
            return None
        arr = np.asarray(value, dtype=np.float32)
        if not arr.flags.writeable:
            arr = arr.copy()
        return torch.from_numpy(arr).to(device)

    def scalar(dtype: Any) -> Callable[[Any], Any]:
        return lambda value: None if value is None else torch.tensor(value, dtype=dtype, device=device)

    def inferred(value: Any) -> Any:
        if isinstance(value, bool):
            return torch.tensor(value, dtype=torch.bool, device=device)
        if isinstance(value, int) and -(2**63) <= value < 2**63:
            return torch.tensor(value, dtype=torch.int64, device=device)
        if isinstance(value, float):
            return torch.tensor(value, dtype=torch.float64, device=device)
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
            return torch.from_numpy(value.copy() if not value.flags.writeable else value).to(device)
        return value

    if kind == "vector":
        return vector
    if kind in ("int", "serial"):
        return scalar(torch.int64)
    if kind == "float":
        return scalar(torch.float64)
    if kind == "bool":
        return scalar(torch.bool)
    if kind is None:
        return inferred
    return lambda value: value


def _dataset_class() -> type:
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    torch = _torch()

    class LoomDataset(torch.utils.data.IterableDataset):  # type: ignore[name-defined,misc]
        """The rows of one query, re-run at each iteration (see ``loomdb.torch.dataset``)."""

        def __init__(self, db: Any, sql: str, params: Any, device: Any):
            super().__init__()
            self.sql = sql
            self.params = params
            self.device = torch.device(device)
            self._db = db
            self._pid = os.getpid()
            # Where a worker process re-opens the store: a connection must not cross a fork.
            self._path = db.location
            self._branch = db.branch_name
            self._snapshot = db.head if db.read_only else None

        def __getstate__(self) -> dict[str, Any]:
            state = self.__dict__.copy()
            state["_db"] = None  # pickled for a spawned worker: it opens its own connection
            return state

        def __repr__(self) -> str:
            return f"<loomdb.torch dataset {self.sql!r} on {self._path!r} branch={self._branch!r}>"

        def __iter__(self) -> Iterator[dict[str, Any]]:
            info = torch.utils.data.get_worker_info()
            workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
            own = None
            db = self._db
            if db is None or os.getpid() != self._pid:
                from .connect import connect

                own = connect(self._path, branch=self._branch)
                db = own if self._snapshot is None else own.as_of(self._snapshot)
            try:
                cursor = db.execute(self.sql, self.params)
                names = list(cursor._names)
                types = list(cursor._types) + [None] * (len(names) - len(cursor._types))
                converters = [
                    _convert(torch, None if t is None else t.kind, self.device) for t in types[: len(names)]
                ]
                columns = list(zip(names, converters, strict=True))
                for index, row in enumerate(cursor):
                    if index % workers != worker:
                        continue
                    yield {name: convert(value) for (name, convert), value in zip(columns, row, strict=True)}
            finally:
                if own is not None:
                    own.close()

    LoomDataset.__module__ = __name__
    LoomDataset.__qualname__ = "LoomDataset"
    _CLASS = LoomDataset
    return LoomDataset


def __getattr__(name: str) -> Any:
    # ``LoomDataset`` exists once torch is imported; unpickling in a spawned worker finds it here.
    if name == "LoomDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
