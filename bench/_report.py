"""Reporting shared by the benchmark scripts: timing, machine, table, JSON and docs.

Each script keeps its own ``Metric`` (the columns differ) and turns its
metrics into rows of strings; this module times the work, summarises it,
describes the machine, prints the rows as a Rich table, writes the results
JSON and rewrites the script's section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apsw
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

pc = time.perf_counter_ns


# --------------------------------------------------------------------------- running


def log(msg: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def close_quietly(handle: Any) -> None:
    """Close ``handle``, ignoring any error."""
    with contextlib.suppress(Exception):
        handle.close()


def remove_store(path: str) -> None:
    """Delete an SQLite file and its ``-wal`` and ``-shm`` companions, where present."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


# --------------------------------------------------------------------------- timing


def stats(ns: Sequence[int], unit: str = "us") -> dict[str, float]:
    """Median, p95 and mean of durations in ns, in ``unit`` ("us" or "ms").

    The keys carry the unit: ``median_us``, ``p95_us``, ``mean_us`` (or ``_ms``)."""
    a = np.asarray(ns, dtype=np.float64) / {"us": 1e3, "ms": 1e6}[unit]
    return {
        "n": int(a.size),
        f"median_{unit}": float(np.median(a)),
        f"p95_{unit}": float(np.percentile(a, 95)),
        f"mean_{unit}": float(a.mean()),
    }


def timed_each(fn: Callable[[Any], Any], args: Sequence[Any]) -> list[int]:
    """Call ``fn(a)`` for every ``a``; the duration of each call in ns."""
    out: list[int] = []
    append = out.append
    for a in args:
        t0 = pc()
        fn(a)
        append(pc() - t0)
    return out


def interleaved(
    sides: dict[str, Callable[[Any], Any]],
    blocks: Sequence[Sequence[Any]],
) -> dict[str, list[int]]:
    """Run each block on every side, rotating which side goes first."""
    names = list(sides)
    out: dict[str, list[int]] = {n: [] for n in names}
    for i, block in enumerate(blocks):
        order = names[i % len(names) :] + names[: i % len(names)]
        for n in order:
            out[n].extend(timed_each(sides[n], block))
    return out


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` cut into consecutive blocks of ``size`` (the last may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else ``platform.processor()``."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return cpu


def tmp_filesystem() -> str:
    """``"<fstype> on <mountpoint>"`` of the filesystem holding the temporary directory."""
    fs = ""
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        best = ""
        tmp = os.path.realpath(tempfile.gettempdir())
        for line in f:
            parts = line.split()
            if len(parts) > 2 and tmp.startswith(parts[1]) and len(parts[1]) >= len(best):
                best, fs = parts[1], f"{parts[2]} on {parts[1]}"
    return fs


def machine(**extra: Any) -> dict[str, Any]:
    """Platform, CPU, Python, SQLite, apsw, numpy and loomdb versions, then ``extra``."""
    try:
        import loomdb

        loom_version = getattr(loomdb, "__version__", "?")
    except Exception:
        loom_version = "not importable"
    av = getattr(apsw, "apsw_version", None) or apsw.apswversion
    sv = getattr(apsw, "sqlite_lib_version", None) or apsw.sqlitelibversion
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sv(),
        "apsw": av(),
        "numpy": np.__version__,
        "loomdb": loom_version,
        **extra,
    }


def describe(mach: dict[str, Any]) -> str:
    """One line for a ``machine(tmp_filesystem=...)`` dict."""
    return (
        f"{mach['cpu']} ({mach['cpu_count']} CPUs), {mach['platform']}, Python {mach['python']}, "
        f"SQLite {mach['sqlite']}, apsw {mach['apsw']}, numpy {mach['numpy']}, "
        f"loomdb {mach['loomdb']}, stores on {mach['tmp_filesystem'] or '?'}"
    )


# --------------------------------------------------------------------------- formatting

_MS_PLACES = 3


def fmt(v: float | None, unit: str, ms_places: int = _MS_PLACES) -> str:
    """A value with its unit; milliseconds with ``ms_places`` decimals."""
    if v is None:
        return "—"
    if unit == "rows/s":
        return f"{v:,.0f}"
    if unit == "B":
        return f"{v:,.0f} B"
    if unit == "ms":
        return f"{v:.{ms_places}f} ms"
    if unit == "µs":
        return f"{v:.1f} µs"
    if unit == "×":
        return f"{v:.2f}×"
    return f"{v:.3g}"


def fmt_value(value: float | None, compare: str | None, unit: str, places: int = 1) -> str:
    """A comparison: ``+1.2 µs`` for a delta, ``1.23×`` for a ratio."""
    if value is None:
        return "—"
    if compare == "delta":
        return f"{value:+.{places}f} {unit}"
    return f"{value:.2f}×"


def met_text(met: bool | None) -> str:
    """The "met?" column: yes, NO or — (no goal)."""
    return {True: "yes", False: "NO", None: "—"}[met]


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    """The metrics of one run, in order, and the raw figures behind them."""

    config: Any
    metrics: list[Any] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, m: Any) -> Any:
        self.metrics.append(m)
        return m


def notes(metrics: Sequence[Any]) -> list[tuple[str, str]]:
    """(name, note) of every metric that has a note and no error."""
    return [(m.name, m.note) for m in metrics if m.note and not m.error]


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    metrics: Sequence[Any],
    machine_line: str,
    width: int = 150,
) -> None:
    """Print ``rows`` as a Rich table (green: goal met, red: missed or error), the notes
    and the machine. ``width`` applies when stdout is not a terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in headers:
        table.add_column(h, justify="left" if h in ("metric", "goal") else "right")
    for row, m in zip(rows, metrics, strict=True):
        style = None if m.met is None and not m.error else ("green" if m.met and not m.error else "red")
        table.add_row(*row, style=style)
    console = Console(width=None if sys.stdout.isatty() else width)
    console.print(table)
    for name, note in notes(metrics):
        console.print(f"  {name}: {note}")
    console.print(f"  machine: {machine_line}")


def markdown(
    markers: tuple[str, str],
    script: str,
    date: str,
    mode: str,
    command: str,
    machine_line: str,
    workload: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    metrics: Sequence[Any],
) -> str:
    """The docs block between ``markers``: provenance, workload, the table, the notes.

    The first column and the last two (goal, met?) are left-aligned, the rest right."""
    start, end = markers
    lines = [
        start,
        f"_Generated by `{script}` on {date} ({mode} mode)._",
        "",
        f"Reproduce: `{command}`",
        "",
        f"Machine: {machine_line}.",
        "",
        workload,
        "",
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(headers) - 3) + ["---", "---"]) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    note_lines = [f"- {name}: {note}" for name, note in notes(metrics)]
    if note_lines:
        lines += ["", *note_lines]
    lines.append(end)
    return "\n".join(lines)


def update_docs(
    path: Path, block: str, markers: tuple[str, str], heading: str = "", new_file: str = "# Benchmarks\n"
) -> None:
    """Replace the text between ``markers`` in ``path`` with ``block``; where the markers
    are missing, append ``heading`` and ``block``. A missing file starts as ``new_file``."""
    start, end = markers
    text = path.read_text() if path.exists() else new_file
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + heading + block + "\n"
    path.write_text(text)
    print(f"updated {path.relative_to(ROOT)}")


def write_json(out: Path, report: Report, mach: dict[str, Any], command: str, started: Any) -> None:
    """Write the run (config, machine, metrics, details) to ``out``."""
    judged = [m for m in report.metrics if m.met is not None or m.error]
    payload = {
        "date": started.strftime("%Y-%m-%d"),
        "started": started.isoformat(),
        "command": command,
        "config": asdict(report.config),
        "machine": mach,
        "metrics": [asdict(m) for m in report.metrics],
        "details": report.details,
        "goals_met": all(m.met for m in judged) if judged else None,  # None: no metric has a goal
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


# --------------------------------------------------------------------------- command line


def add_output_args(ap: argparse.ArgumentParser) -> None:
    """``--seed``, ``--no-docs`` and ``--no-json``, common to every script."""
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """How to reproduce this run: ``.venv/bin/python <script> <args>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join([f".venv/bin/python {script}", *args])
