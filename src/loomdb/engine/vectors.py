"""Exact top-k vector search from an in-memory float32 copy of a VECTOR column.

``SELECT ... FROM t [WHERE ...] ORDER BY embedding <op> %s LIMIT k`` is the
agent's "which earlier step looked like this one?". SQLite can answer it
(a SQL function computes every distance), but a matrix product over a float32
matrix already in memory is an order of magnitude faster. Each
:class:`VectorCache` holds every committed version of one VECTOR column of
one physical table:

* vectors in blocks of float32 rows (each new block a sixteenth of the table,
  at most ``BLOCK`` rows, so memory stays within a few percent of the vector
  bytes and nothing is copied as the table grows);
* per version: ``_vid, _rid, _bid, _seq, _del`` and ``end``, the seq of the
  next version of the same row on the same branch (the cache's own ``_end``);
* it is refreshed before every query from ``_vid > last loaded``. Committed
  versions never change (an UPDATE appends a version), and version ids grow
  in commit order, so this sees exactly what other connections committed.

Visibility on a branch is computed with NumPy exactly as the SQL view does
(``versioning/lineage.py``). With a WHERE clause, SQLite evaluates the
filter through the branch view and returns the version ids to rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlglot import exp

from .. import errors
from ..backend import pgvector_math
from ..backend.protocol import Backend
from ..catalog import TableSchema
from ..layout import INF_SEQ
from ..sql.compile import Compiled, table_key
from ..versioning.lineage import Lineage

BLOCK = 4096
#: The rank of a NaN distance: after every number, before the rows without a vector (infinite).
_NAN_RANK = float(np.finfo(np.float64).max)


class VectorCache:
    """Every committed version of one VECTOR column, in memory (see the module docstring)."""

    def __init__(self, physical: str, column: str, dim: int):
        self.physical, self.column, self.dim = physical, column, dim
        self.blocks: list[np.ndarray] = []
        self.fills: list[int] = []
        self.count = 0
        # Per version, grown by doubling: vid, rid, bid, seq, del, end.
        self._meta = np.zeros((64, 6), dtype=np.int64)
        self._norms = np.zeros(64, dtype=np.float32)
        self._present = np.zeros(64, dtype=bool)  # False for NULL vectors and tombstones
        self._latest: dict[tuple[int, int], int] = {}  # (rid, bid) -> index of its newest version
        self.last_vid = 0

    # -- loading ---------------------------------------------------------------------------

    def refresh(self, backend: Backend) -> None:
        """Load the versions committed since the last refresh."""
        rows = list(
            backend.execute(
                f'SELECT _vid, _rid, _bid, _seq, _del, "{self.column}" FROM "{self.physical}"'
                " WHERE _vid > ? ORDER BY _vid",
                (self.last_vid,),
            )
        )
        if rows:
            self._append(rows)

    def _append(self, rows: list[tuple[Any, ...]]) -> None:
        n, start = len(rows), self.count
        if start + n > len(self._meta):
            size = max(start + n, 2 * len(self._meta))
            self._meta = _grown(self._meta, size)
            self._norms = _grown(self._norms, size)
            self._present = _grown(self._present, size)
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        meta = self._meta
        for i, (vid, rid, bid, seq, dele, blob) in enumerate(rows):
            at = start + i
            meta[at] = (vid, rid, bid, seq, dele, INF_SEQ)
            if blob is not None and not dele:
                vec = np.frombuffer(blob, dtype="<f4")
                if vec.shape[0] == self.dim:
                    vectors[i] = vec
                    self._present[at] = True
            previous = self._latest.get((rid, bid))
            if previous is not None:
                meta[previous, 5] = seq  # the older version on this branch ends here
            self._latest[(rid, bid)] = at
        self._norms[start : start + n] = np.linalg.norm(vectors, axis=1)
        self._store_vectors(vectors)
        self.count += n
        self.last_vid = int(meta[start + n - 1, 0])

    def _store_vectors(self, vectors: np.ndarray) -> None:
        # A new block holds a sixteenth of the table (64 to BLOCK rows): nothing
        # is ever copied, and the unused tail stays within ~6% of the vectors.
        done = 0
        while done < len(vectors):
            if not self.blocks or self.fills[-1] == len(self.blocks[-1]):
                size = min(BLOCK, max(64, (self.count + done) // 16))
                self.blocks.append(np.empty((size, self.dim), dtype=np.float32))
                self.fills.append(0)
            block, fill = self.blocks[-1], self.fills[-1]
            take = min(len(block) - fill, len(vectors) - done)
            block[fill : fill + take] = vectors[done : done + take]
            self.fills[-1] = fill + take
            done += take
        self._consolidate()

    def _consolidate(self) -> None:
        """Merge full small blocks into one, so a query runs few large products.

        Small blocks come from a table that grew from nothing; merging them
        whenever 16 pile up copies each row a bounded number of times.
        """
        small = [i for i, b in enumerate(self.blocks[:-1]) if len(b) < BLOCK]
        if len(small) < 16:
            return
        head = small[0]
        if small != list(range(head, head + len(small))):
            return
        merged = np.concatenate([self.blocks[i] for i in small])
        self.blocks[head : head + len(small)] = [merged]
        self.fills[head : head + len(small)] = [len(merged)]

    @property
    def nbytes(self) -> int:
        """Memory held: vectors, norms and per-version metadata."""
        return (
            sum(b.nbytes for b in self.blocks) + self._meta.nbytes + self._norms.nbytes + self._present.nbytes
        )

    # -- searching ---------------------------------------------------------------------------

    def visible(self, lineage: Lineage) -> np.ndarray:
        """Indexes of the versions ``lineage`` sees (as the SQL view's predicate does)."""
        meta = self._meta[: self.count]
        bid, seq, end, rid = meta[:, 2], meta[:, 3], meta[:, 5], meta[:, 1]
        keep = np.zeros(self.count, dtype=bool)
        nearer_rids: list[np.ndarray] = []
        for level_bid, limit in lineage.levels:
            on = bid == level_bid
            cond = on & (end == INF_SEQ) if limit is None else on & (seq <= limit) & (end > limit)
            if nearer_rids:
                cond &= ~np.isin(rid, np.concatenate(nearer_rids))
            keep |= cond
            in_range = on if limit is None else on & (seq <= limit)
            nearer_rids.append(rid[in_range])
        keep &= meta[:, 4] == 0
        return np.flatnonzero(keep)

    def indexes_of(self, vids: np.ndarray) -> np.ndarray:
        """Cache indexes of the given version ids (ids not loaded are skipped)."""
        loaded = self._meta[: self.count, 0]
        index = np.searchsorted(loaded, vids)
        inside = index < self.count
        index, vids = index[inside], vids[inside]
        return index[loaded[index] == vids]

    def scores(self, query: np.ndarray, op: str, candidates: np.ndarray) -> np.ndarray:
        """float32-accurate distances of the ``candidates`` for ``op`` in ("l2", "cosine", "ip")."""
        if len(candidates) < self.count // 4:
            dots = self._gather(candidates) @ query  # few candidates: read only their rows
        else:
            parts = [b[:fill] @ query for b, fill in zip(self.blocks, self.fills, strict=True) if fill]
            dots = np.concatenate(parts)[candidates]
        norms = self._norms[candidates]
        if op == "ip":
            dist = -dots
        elif op == "cosine":
            qn = float(np.linalg.norm(query))
            with np.errstate(divide="ignore", invalid="ignore"):
                dist = 1.0 - dots / (norms * qn)
        else:
            dist = np.sqrt(np.maximum(norms.astype(np.float64) ** 2 - 2.0 * dots + float(query @ query), 0.0))
        return np.asarray(dist, dtype=np.float64)

    def _gather(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), self.dim), dtype=np.float32)
        starts = np.cumsum([0] + [len(b) for b in self.blocks])
        # Blocks are filled in order, so a version's block follows from the block sizes.
        block_of = np.searchsorted(starts, index, side="right") - 1
        for b in np.unique(block_of):
            sel = block_of == b
            out[sel] = self.blocks[b][index[sel] - starts[b]]
        return out

    def top(self, query: np.ndarray, op: str, k: int, candidates: np.ndarray) -> np.ndarray:
        """The version ids of the k nearest candidates, ties by row insertion order."""
        if len(candidates) == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64)
        dist = self.scores(query, op, candidates)
        # Rows without a vector have no distance: last, in insertion order (as on the SQL path);
        # a NaN distance (a zero vector's cosine) sorts before them, as PostgreSQL sorts NaN.
        dist = np.where(np.isnan(dist), _NAN_RANK, dist)
        dist = np.where(self._present[candidates], dist, np.inf)
        if k < len(candidates):
            part = np.argpartition(dist, k - 1)[:k]
            cut = dist[part].max()
            # Everything within float32 error of the k-th distance is ranked again exactly.
            chosen = np.flatnonzero(
                dist <= cut + 1e-4 * max(1.0, abs(cut)) if cut < _NAN_RANK else dist <= cut
            )
        else:
            chosen = np.arange(len(candidates))
        picked = candidates[chosen]
        exact = self._exact(query, op, picked, dist[chosen])
        order = np.lexsort((self._meta[picked, 1], exact))[:k]  # ties: row insertion order (_rid)
        return self._meta[picked[order], 0]

    def _exact(self, query: np.ndarray, op: str, index: np.ndarray, approx: np.ndarray) -> np.ndarray:
        """pgvector's distances of a few versions, to the bit (see
        :mod:`loomdb.backend.pgvector_math`); recorded for the SQL functions that
        return them. A NaN (the cosine distance of a zero vector) sorts after
        every number, as in PostgreSQL; rows without a vector stay infinite, last."""
        rows = self._gather(index)
        present = ~np.isinf(approx)
        dist = np.full(len(index), np.inf)
        if present.any():
            exact = pgvector_math.distances(op, rows[present], query)
            pgvector_math.remember(op, rows[present], query, exact)
            dist[present] = np.where(np.isnan(exact), _NAN_RANK, exact)
        return dist


@dataclass(frozen=True)
class VectorPlan:
    """How one statement is answered from the cache (built once per statement and branch)."""

    physical: str  # the physical table
    phys: str  # the VECTOR column's physical name
    dim: int
    op: str  # "l2", "cosine", "ip"
    query_param: int  # $n holding the query vector (0: a literal, ``query_text``)
    limit: int
    offset: int
    filter_sql: Compiled | None  # SELECT _loom_vid, ... FROM t WHERE ... (None: no filter)
    fetch_sql: Compiled  # the projections for listed version ids, vid last
    query_text: str | None = None  # the query vector written as a literal ('[1,0,0]')


_OPERATORS = {"Distance": "l2", "CosineDistance": "cosine", "NegativeInnerProduct": "ip"}


def match_top_k(tree: exp.Expression, schemas: dict[str, TableSchema]) -> tuple[Any, ...] | None:
    """``(schema, alias, column, op, query, limit, offset)`` when ``tree`` is a top-k
    query over one table ordered by a vector operator between a VECTOR column
    and a parameter (``query`` its number) or a vector literal (``query`` its
    text); None otherwise (the SQL path answers it)."""
    if not isinstance(tree, exp.Select):
        return None
    if any(tree.args.get(a) for a in ("joins", "group", "having", "distinct", "with_", "with", "laterals")):
        return None
    order, limit = tree.args.get("order"), tree.args.get("limit")
    if order is None or limit is None or len(order.expressions) != 1:
        return None
    ordered = order.expressions[0]
    op = _OPERATORS.get(type(ordered.this).__name__)
    if op is None or ordered.args.get("desc"):
        return None
    sides = [ordered.this.this, ordered.this.expression]
    columns = [s for s in sides if isinstance(s, exp.Column)]
    queries = [q for q in (_query_side(s) for s in sides) if q is not None]
    if len(columns) != 1 or len(queries) != 1:
        return None
    source = tree.args.get("from_") or tree.args.get("from")
    if (
        source is None
        or not isinstance(source.this, exp.Table)
        or any(isinstance(t, exp.Table) for t in tree.find_all(exp.Subquery))
    ):
        return None
    table = source.this
    schema = schemas.get(table_key(table))
    if schema is None or any(isinstance(n, exp.Subquery) for n in tree.walk()):
        return None
    column = schema.column(columns[0].name if columns[0].this.quoted else columns[0].name.lower())
    if column is None or column.type.kind != "vector" or not column.type.dim or column.added_seq is not None:
        return None
    count = _integer(limit.expression)
    offset_node = tree.args.get("offset")
    offset = _integer(offset_node.expression) if offset_node is not None else 0
    if count is None or offset is None:
        return None
    return schema, table.alias_or_name, column, op, queries[0], count, offset


def _query_side(node: exp.Expression) -> int | str | None:
    """The query vector side of a distance: ``$n`` (its number) or a vector
    literal (its text, cast to vector or not); None for anything else."""
    if isinstance(node, exp.Parameter):
        return int(node.this.name)
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.VECTOR and not node.to.expressions:
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string and node.this.lstrip().startswith("["):
        return str(node.this)
    return None


def _integer(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    return None


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


def query_vector(value: Any, dim: int) -> np.ndarray:
    """The query parameter as a float32 vector of the column's dimension (DataError otherwise)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        vec = np.frombuffer(bytes(value), dtype="<f4")
    else:
        try:
            vec = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise errors.DataError(
                f"the query vector is not a list of numbers: {exc}", sqlstate="22P02"
            ) from None
    if vec.ndim != 1:
        raise errors.DataError(
            f"the query vector must be one-dimensional, got shape {vec.shape}", sqlstate="22P02"
        )
    if vec.shape[0] != dim:
        raise errors.DataError(
            f"the query vector has {vec.shape[0]} dimensions; the column is VECTOR({dim})", sqlstate="22000"
        )
    if not np.isfinite(vec).all():
        raise errors.DataError("the query vector may not contain NaN or infinity", sqlstate="22000")
    return vec
