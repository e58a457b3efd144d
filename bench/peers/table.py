"""The side-by-side table: one row per system, one column per measurement.

Each cell is the system's median with, in parentheses, its ratio to loomdb
measured in the same run on the same kind of storage (the embedded systems
against loomdb on SQLite, the PostgreSQL ones against loomdb on PostgreSQL);
"absent" where the system lacks the capability, "error" where it failed. The
last two columns are words: the durability each system ran at, and whether a
conflicting edit was reported by its merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import REFERENCE

ABSENT = "absent"

# (key, header); the values are in Summary.values under the same key.
COLUMNS = [
    ("persist_median", "persist / step, median"),
    ("persist_p95", "p95"),
    ("growth", "first → last {w} steps (medians)"),
    ("disk", "disk / step"),
    ("resume", "resume @ {large}"),
    ("top10", "exact top-10 @ {large}"),
    ("branch_small", "branch @ {small}"),
    ("branch_large", "branch @ {large}"),
    ("merge", "merge 1,000 rows @ {large}"),
]


@dataclass
class Summary:
    """One system's results: ``values`` (key -> number in ms or bytes, ``ABSENT``, or
    None on error), ``texts`` (key -> a cell written out instead, or key + "_suffix"
    -> words after the number), ``note`` (its footnote)."""

    key: str
    name: str
    family: str
    durability: str
    matches_full: bool
    values: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    conflict: str = ""
    note: str = ""
    error: str | None = None
    met: bool | None = None  # no goals here; _report's table and JSON read it


def ms_text(ms: float) -> str:
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 100:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def bytes_text(b: float) -> str:
    return f"{b / 1000:.1f} kB" if b < 1e6 else f"{b / 1e6:.2f} MB"


def headers(small: int, large: int, window: int) -> list[str]:
    fill = {"small": f"{small // 1000}k", "large": f"{large // 1000}k", "w": f"{window:,}"}
    return ["system"] + [h.format(**fill) for _, h in COLUMNS] + ["durability", "conflict reported?"]


def cell(s: Summary, key: str, ref: Summary | None) -> str:
    if key in s.texts:
        return s.texts[key]
    v = s.values.get(key)
    if v == ABSENT:
        return ABSENT
    if v is None:
        return "error" if key in s.values else "—"
    text = bytes_text(v) if key == "disk" else ms_text(v)
    r = None if ref is None or ref is s else ref.values.get(key)
    if isinstance(r, int | float) and r > 0:
        text += f" ({v / r:.2f}×)"
    return text + s.texts.get(key + "_suffix", "")


def rows(summaries: list[Summary]) -> list[list[str]]:
    by_key = {s.key: s for s in summaries}
    out = []
    for s in summaries:
        ref = by_key.get(REFERENCE[s.family])
        durability = s.durability + ("" if s.matches_full else " — weaker than loomdb's full")
        out.append([s.name] + [cell(s, k, ref) for k, _ in COLUMNS] + [durability, s.conflict or "—"])
    return out
