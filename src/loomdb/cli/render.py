"""How the ``loomdb`` command shows what the API returns: pure functions from
values, rows, changes and conflicts to Rich text and tables."""

from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text

#: Longest JSON text shown in a cell before it is cut with an ellipsis.
JSON_MAX_CHARS = 80
#: Longest BYTEA value (in bytes) shown in a cell before it is cut.
BYTES_MAX = 16
#: A vector with more components than this is shown abbreviated.
VECTOR_SHOWN = 4

# --------------------------------------------------------------------------
# Formatting: pure functions from API values to text.


def _fmt_float(x: float) -> str:
    return f"{x:.4g}"


def format_vector(vec: np.ndarray) -> str:
    """A vector as a short list: ``[0.12, -0.5, … 1536 dims]``.

    >>> format_vector(np.array([0.125, -0.5, 1.0], dtype=np.float32))
    '[0.125, -0.5, 1]'
    >>> format_vector(np.zeros(1536, dtype=np.float32))
    '[0, 0, … 1536 dims]'
    """
    flat = np.asarray(vec).ravel()
    n = flat.shape[0]
    if n <= VECTOR_SHOWN:
        return "[" + ", ".join(_fmt_float(float(x)) for x in flat) + "]"
    head = ", ".join(_fmt_float(float(x)) for x in flat[:2])
    return f"[{head}, … {n} dims]"


def format_json(value: Any, max_chars: int = JSON_MAX_CHARS) -> str:
    """Compact JSON, cut to ``max_chars`` with an ellipsis.

    >>> format_json({"plan": ["a", "b"], "tokens_used": 10})
    '{"plan":["a","b"],"tokens_used":10}'
    >>> format_json(list(range(100)), max_chars=12)
    '[0,1,2,3,4,…'
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) > max_chars:
        return text[: max_chars - 1] + "…"
    return text


def format_bytes(value: bytes) -> str:
    r"""BYTEA in PostgreSQL's hex form, cut after :data:`BYTES_MAX` bytes.

    >>> format_bytes(b"\x01\xff")
    '\\x01ff'
    """
    if len(value) > BYTES_MAX:
        return "\\x" + value[:BYTES_MAX].hex() + f"… ({len(value)} bytes)"
    return "\\x" + value.hex()


def format_value(value: Any) -> Text:
    """One cell of a result table."""
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, np.ndarray):
        return Text(format_vector(value), style="cyan")
    if isinstance(value, dict | list):
        return Text(format_json(value), style="green")
    if isinstance(value, bytes | bytearray | memoryview):
        return Text(format_bytes(bytes(value)), style="magenta")
    if isinstance(value, _dt.datetime):
        return Text(value.isoformat(sep=" "))
    if isinstance(value, _dt.date):
        return Text(value.isoformat())
    if isinstance(value, float):
        return Text(repr(value))
    if isinstance(value, int | Decimal | uuid.UUID | str):
        return Text(str(value))
    return Text(str(value))


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def rows_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A Rich table of rows; numeric columns are right-aligned."""
    table = Table(show_header=True, header_style="bold", show_lines=False)
    for i, name in enumerate(headers):
        first = next((r[i] for r in rows if r[i] is not None), None)
        table.add_column(name, justify="right" if _is_numeric(first) else "left")
    for row in rows:
        table.add_row(*(format_value(v) for v in row))
    return table


def format_when(t: _dt.datetime) -> str:
    """A commit's time to the millisecond: ``2025-01-31 12:00:00.123+00:00``."""
    return t.isoformat(sep=" ", timespec="milliseconds")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 row``, ``3 rows``, ``2 branches``.

    >>> plural(1, "row"), plural(3, "row"), plural(2, "branch", "branches")
    ('1 row', '3 rows', '2 branches')
    """
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def format_key(key: dict[str, Any]) -> str:
    """A row's key as ``col=value`` pairs.

    >>> format_key({"run_id": "run-42", "step": 3})
    'run_id=run-42, step=3'
    """
    return ", ".join(f"{name}={format_value(value).plain}" for name, value in key.items())


def format_snapshot(value: str) -> int | str:
    """A snapshot argument: a commit id when it is an integer, else a branch name.

    >>> format_snapshot("12"), format_snapshot("run-42/approach-a")
    (12, 'run-42/approach-a')
    """
    return int(value) if re.fullmatch(r"[0-9]+", value) else value


#: How each kind of change is marked in ``loomdb diff``.
CHANGE_MARKS = {
    "added": ("+", "green"),
    "removed": ("\u2212", "red"),
    "modified": ("~", "yellow"),
}


def _columns_text(row: dict[str, Any] | None, columns: Sequence[str], skip: Sequence[str] = ()) -> Text:
    """``col: value`` lines of ``row`` for ``columns`` (``(deleted)`` when there is no row)."""
    if row is None:
        return Text("(deleted)", style="dim")
    lines = [
        Text(f"{name}: ", style="bold") + format_value(row.get(name)) for name in columns if name not in skip
    ]
    return Text("\n").join(lines)


def change_text(change: Any) -> Text:
    """What changed in one row: ``col: before → after`` per changed column of a
    modified row, the row's other columns for an added or removed one."""
    if change.kind == "modified":
        lines = [
            Text(f"{name}: ", style="bold")
            + format_value(change.before.get(name))
            + Text(" → ", style="dim")
            + format_value(change.after.get(name))
            for name in change.columns
        ]
        return Text("\n").join(lines)
    row = change.after if change.kind == "added" else change.before
    return _columns_text(row, list(row), skip=list(change.key))


def changes_table(changes: Sequence[Any]) -> Table:
    """A Rich table of :class:`loomdb.Change` rows."""
    table = Table(show_header=True, header_style="bold", show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("table")
    table.add_column("key")
    table.add_column("change")
    for change in changes:
        mark, style = CHANGE_MARKS[change.kind]
        table.add_row(
            Text(mark, style=f"bold {style}"),
            Text(change.table),
            Text(format_key(change.key), style=style),
            change_text(change),
        )
    return table


def diff_summary(stats: dict[str, Any]) -> str:
    """One line from ``db.diff_stat``.

    >>> from loomdb import DiffStat
    >>> diff_summary({"steps": DiffStat(added=3, removed=1, modified=2)})
    '6 rows differ: 3 added, 1 removed, 2 modified (steps: +3 −1 ~2)'
    >>> diff_summary({})
    'no differences'
    """
    added = sum(s.added for s in stats.values())
    removed = sum(s.removed for s in stats.values())
    modified = sum(s.modified for s in stats.values())
    total = added + removed + modified
    if not total:
        return "no differences"
    per_table = ", ".join(
        f"{name}: +{s.added} \u2212{s.removed} ~{s.modified}" for name, s in sorted(stats.items())
    )
    return (
        f"{plural(total, 'row')} {'differs' if total == 1 else 'differ'}: "
        f"{added} added, {removed} removed, {modified} modified ({per_table})"
    )


def conflicts_table(conflicts: Sequence[Any]) -> Table:
    """A Rich table of :class:`loomdb.Conflict` rows: ours against theirs."""
    table = Table(show_header=True, header_style="bold", show_lines=True)
    for name in ("table", "key", "kind", "columns", "ours", "theirs"):
        table.add_column(name)
    for c in conflicts:
        shown: Sequence[str] = c.columns
        if c.kind == "insert/insert" and c.ours is not None and c.theirs is not None:
            # The clash is on the key; show where the two rows differ as well.
            differ = [n for n in c.theirs if n not in c.columns and not _same(c.ours.get(n), c.theirs[n])]
            shown = [*c.columns, *differ]
        table.add_row(
            Text(c.table),
            Text(format_key(c.key)),
            Text(c.kind, style="red"),
            Text(", ".join(c.columns)),
            _columns_text(c.ours, shown),
            _columns_text(c.theirs, shown),
        )
    return table


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)
