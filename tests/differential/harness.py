"""Run a corpus entry on loomdb and on raw PostgreSQL, and classify what loomdb did.

An *entry* is one statement, or a write followed by ``+`` follow-up
statements run on the same fresh copy (see README.md). A *result* is what
one side produced for one statement: its column names and rows (or its
rowcount when it returns no rows), or the error it raised. ``classify``
turns the raw PostgreSQL results and loomdb's into an outcome.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import sqlglot
from pgvector import Vector
from sqlglot import exp

import loomdb

OUTCOMES = ("same", "error-same", "refused", "different", "crash")
# A failure where PostgreSQL failed too but with another SQLSTATE (or loomdb's
# class is not the one psycopg gives that SQLSTATE) is "different".
# The outcomes the ratchet file lists (the others are passes).
LISTED = ("refused", "different", "crash")

# Statements that change data run on a fresh copy (a branch / a rolled-back transaction).
_WRITE_WORDS = re.compile(r"\b(INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|TRUNCATE|MERGE)\b", re.IGNORECASE)
# Float aggregates: their float results are compared within FLOAT_REL_TOL.
_FLOAT_AGGREGATES = re.compile(
    r"\b(avg|sum|stddev\w*|var\w*|variance|corr|covar_\w+|regr_\w+)\s*\(", re.IGNORECASE
)
FLOAT_REL_TOL = 1e-12


@dataclass
class Entry:
    """One corpus case: its file, stable id, statements and where it starts."""

    file: str
    id: str
    statements: list[str]
    line: int

    @property
    def key(self) -> str:
        return f"{self.file}:{self.id}"

    @property
    def isolated(self) -> bool:
        """True when the entry writes, so it must run on a fresh copy."""
        return self.file.startswith("writes") or any(_WRITE_WORDS.search(s) for s in self.statements)

    @property
    def tolerant(self) -> bool:
        return any(_FLOAT_AGGREGATES.search(s) for s in self.statements)


@dataclass
class Result:
    """What one side did with one statement."""

    columns: list[str] | None = None
    rows: list[tuple[Any, ...]] | None = None
    rowcount: int | None = None
    ordered: bool = False
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class Outcome:
    """An entry's outcome on one loomdb engine, with a one-line explanation."""

    entry: Entry
    engine: str
    outcome: str
    detail: str = ""
    kind: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def entry_id(statements: list[str]) -> str:
    """A stable id: the first 8 hex digits of the SHA-1 of the whitespace-normalised SQL."""
    text = "\n".join(" ".join(s.split()) for s in statements)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def parse_corpus(path: Path) -> list[Entry]:
    """The entries of one corpus file.

    A statement ends at a line ending with ``;``. Lines starting with ``--``
    are comments. A statement whose first line starts with ``+`` is a
    follow-up of the entry before it (run after it on the same copy).
    """
    entries: list[Entry] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        if not buf:
            start = n
        buf.append(line)
        if line.endswith(";"):
            text = "\n".join(buf).strip().rstrip(";").strip()
            buf = []
            if text.startswith("+"):
                if not entries:
                    raise ValueError(f"{path.name}:{start}: a follow-up (+) with no entry before it")
                entries[-1].statements.append(text[1:].strip())
                entries[-1].id = entry_id(entries[-1].statements)
            else:
                entries.append(Entry(path.name, entry_id([text]), [text], start))
    if buf:
        raise ValueError(f"{path.name}:{start}: statement without a closing ';'")
    return entries


def load_corpus(directory: Path) -> list[Entry]:
    """Every entry of every ``*.sql`` file, in file order; ids must be unique per file."""
    entries: list[Entry] = []
    for path in sorted(directory.glob("*.sql")):
        file_entries = parse_corpus(path)
        seen: dict[str, int] = {}
        for e in file_entries:
            if e.id in seen:
                raise ValueError(f"{path.name}:{e.line} repeats the statement at line {seen[e.id]}")
            seen[e.id] = e.line
        entries.extend(file_entries)
    return entries


def top_level_ordered(sql: str) -> bool:
    """True when the statement's outermost query has an ORDER BY (rows compared in order)."""
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except Exception:
        return False
    if isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)):
        return bool(tree.args.get("order"))
    return False


# ----------------------------------------------------------------- running


def run_raw(conn: psycopg.Connection, entry: Entry) -> list[Result]:
    """The entry on raw PostgreSQL (writes in a transaction rolled back afterwards)."""
    if not entry.isolated:
        return _run_statements(lambda s: _raw_one(conn, s), entry.statements)
    with conn.transaction(force_rollback=True):
        return _run_statements(lambda s: _raw_one(conn, s), entry.statements)


def run_loomdb(db: loomdb.Database, entry: Entry) -> list[Result]:
    """The entry on a loomdb store (writes on a fresh branch of it)."""
    if not entry.isolated:
        return _run_statements(lambda s: _loom_one(db, s), entry.statements)
    name = f"diff-{uuid.uuid4().hex[:12]}"
    branch = db.branch(name)
    try:
        return _run_statements(lambda s: _loom_one(branch, s), entry.statements)
    finally:
        branch.close()
        db.drop_branch(name)


def _run_statements(one: Any, statements: list[str]) -> list[Result]:
    results = []
    for sql in statements:
        results.append(one(sql))
        if results[-1].failed:
            break
    return results


def _raw_one(conn: psycopg.Connection, sql: str) -> Result:
    try:
        with conn.cursor() as cur:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                with conn.transaction():  # a savepoint: an error leaves the outer transaction usable
                    cur.execute(sql)
                    return _collect(cur, sql)
            cur.execute(sql)
            return _collect(cur, sql)
    except psycopg.Error as e:
        return Result(error=e)


def _loom_one(db: loomdb.Database, sql: str) -> Result:
    try:
        cur = db.execute(sql)
        return _collect(cur, sql)
    except Exception as e:  # classified later: a non-loomdb exception is a crash
        return Result(error=e)


def _collect(cur: Any, sql: str) -> Result:
    if cur.description is None:
        return Result(rowcount=cur.rowcount)
    columns = [d[0] for d in cur.description]
    return Result(columns=columns, rows=[tuple(r) for r in cur.fetchall()], ordered=top_level_ordered(sql))


# ----------------------------------------------------------------- comparing


def canon(v: Any) -> Any:
    """A hashable, type-tagged form of a value: equal only for equal values of equal Python types."""
    if v is None:
        return ("NULL",)
    if isinstance(v, Vector):  # what pgvector's register_vector loads (its to_numpy() is float32)
        v = v.to_numpy()
    if isinstance(v, np.ndarray):
        return ("vector", tuple(float(x) for x in v.ravel()))
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, float):
        return ("float", "nan" if math.isnan(v) else v)
    if isinstance(v, Decimal):
        return ("Decimal", v.as_tuple())
    if isinstance(v, dict):
        return ("dict", tuple(sorted((k, canon(x)) for k, x in v.items())))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(canon(x) for x in v))
    if isinstance(v, dt.datetime):
        offset = v.utcoffset()
        return ("datetime", "aware" if offset is not None else "naive", offset, v.replace(tzinfo=None))
    if isinstance(v, memoryview):
        return ("bytes", bytes(v))
    if isinstance(v, (int, str, bytes, dt.date, dt.time, dt.timedelta, uuid.UUID)):
        return (type(v).__name__, v)
    return (type(v).__name__, repr(v))


def _close(a: Any, b: Any, tolerant: bool) -> bool:
    """Equality of canonical values; floats within FLOAT_REL_TOL when tolerant."""
    if a == b:
        return True
    if not tolerant or type(a) is not type(b):
        return False
    if isinstance(a, tuple) and len(a) == 2 and a[0] == "float" == b[0]:
        x, y = a[1], b[1]
        return isinstance(x, float) and isinstance(y, float) and math.isclose(x, y, rel_tol=FLOAT_REL_TOL)
    if isinstance(a, tuple) and len(a) == len(b):
        return all(_close(x, y, tolerant) for x, y in zip(a, b, strict=True))
    return False


def _sort_key(row: tuple[Any, ...]) -> str:
    return re.sub(r"\d\.\d{8,}", lambda m: m.group(0)[:10], repr(row))


def _describe(v: Any) -> str:
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}"


def compare(pg: Result, lo: Result, tolerant: bool) -> tuple[str, str] | None:
    """None when equal, else (kind, detail) naming the first difference.

    Shape first, then row count, then values (in order when the statement
    has a top-level ORDER BY, else as multisets), then column names.
    """
    if pg.columns is None or lo.columns is None:
        if pg.columns != lo.columns:
            return "result shape", f"pg columns {pg.columns} vs loomdb {lo.columns}"
        # DDL and TRUNCATE: psycopg reports -1 (PEP 249's "unknown"); compare only real counts.
        if pg.rowcount is not None and pg.rowcount >= 0 and pg.rowcount != lo.rowcount:
            return "rowcount", f"pg rowcount {pg.rowcount} vs loomdb {lo.rowcount}"
        return None
    if len(pg.columns) != len(lo.columns):
        return "column count", f"pg {pg.columns} vs loomdb {lo.columns}"
    assert lo.rows is not None
    if len(pg.rows) != len(lo.rows):
        return "row count", f"pg {len(pg.rows)} rows vs loomdb {len(lo.rows)}"
    a = [tuple(canon(v) for v in r) for r in pg.rows]
    b = [tuple(canon(v) for v in r) for r in lo.rows]
    if not pg.ordered:
        a, b = sorted(a, key=_sort_key), sorted(b, key=_sort_key)
    for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
        for j, (va, vb) in enumerate(zip(ra, rb, strict=True)):
            if _close(va, vb, tolerant):
                continue
            col = pg.columns[j] if pg.columns else j
            if pg.ordered and sorted(a, key=_sort_key) == sorted(b, key=_sort_key):
                return "row order", f"same rows, other order (first at row {i})"
            pv, lv = _value(pg.rows, a, i, j, pg.ordered), _value(lo.rows, b, i, j, pg.ordered)
            if va[0] != vb[0]:
                return (
                    f"type {va[0]} -> {vb[0]}",
                    f"row {i} {col}: pg {_describe(pv)} vs loomdb {_describe(lv)}",
                )
            return f"value ({va[0]})", f"row {i} {col}: pg {_describe(pv)} vs loomdb {_describe(lv)}"
    if pg.columns != lo.columns:
        return "column names", f"pg {pg.columns} vs loomdb {lo.columns}"
    return None


def _value(rows: list[tuple[Any, ...]], canon_rows: list[Any], i: int, j: int, ordered: bool) -> Any:
    """The original value behind canon_rows[i][j] (rows may have been sorted)."""
    if ordered:
        return rows[i][j]
    target = canon_rows[i]
    for r in rows:
        if tuple(canon(v) for v in r) == target:
            return r[j]
    return canon_rows[i][j]


def classify(entry: Entry, engine: str, pg: list[Result], lo: list[Result]) -> Outcome:
    """Compare the statements' results in turn and name loomdb's outcome."""
    for k, (p, q) in enumerate(zip(pg, lo, strict=False)):
        where = f"statement {k + 1}: " if len(entry.statements) > 1 else ""
        if q.failed and not isinstance(q.error, loomdb.Error):
            return Outcome(entry, engine, "crash", where + _err(q.error), "crash " + type(q.error).__name__)
        if p.failed and q.failed:
            return _both_failed(entry, engine, where, p.error, q.error)
        if p.failed:
            return Outcome(
                entry,
                engine,
                "different",
                where + f"pg raised {_err(p.error)}, loomdb succeeded",
                f"succeeds where pg raises {getattr(p.error, 'sqlstate', '')}",
            )
        if isinstance(q.error, loomdb.NotSupportedError):
            return Outcome(entry, engine, "refused", where + _err(q.error), "refused")
        if q.failed:
            return Outcome(
                entry,
                engine,
                "different",
                where + f"loomdb raised {_err(q.error)}, pg succeeded",
                f"raises {type(q.error).__name__} where pg succeeds",
            )
        diff = compare(p, q, entry.tolerant)
        if diff:
            return Outcome(entry, engine, "different", where + diff[1], diff[0])
    return Outcome(entry, engine, "same")


def _both_failed(entry: Entry, engine: str, where: str, pg_error: Any, loom_error: Any) -> Outcome:
    """Both sides raised: the same error when loomdb's SQLSTATE is PostgreSQL's and its class
    the one psycopg gives that SQLSTATE; an honest refusal when loomdb raised NotSupportedError;
    else a difference (another error than PostgreSQL's)."""
    detail = where + f"{_err(pg_error)} / {_err(loom_error)}"
    want = getattr(pg_error, "sqlstate", None)
    got = getattr(loom_error, "sqlstate", None)
    if isinstance(loom_error, loomdb.NotSupportedError) and want != "0A000":
        return Outcome(entry, engine, "refused", detail, "refused")
    if got != want or not isinstance(loom_error, loomdb.errors.class_for_sqlstate(want)):
        return Outcome(
            entry, engine, "different", detail, f"error {want} -> {got} {type(loom_error).__name__}"
        )
    return Outcome(entry, engine, "error-same", detail)


def _err(e: BaseException | None) -> str:
    if isinstance(e, psycopg.Error):
        first = str(e).splitlines()[0] if str(e) else ""
        return f"SQLSTATE {e.sqlstate} ({first[:80]})"
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {first[:120]}"
