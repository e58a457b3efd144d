"""SERIAL columns' counters.

Where the engine has sequences of its own (PostgreSQL's ``NativeSerials``),
each counter is one, so writers on different branches never wait for each
other on it; elsewhere a counter is a row of the catalog's ``loom_serial``.
Counters are shared by all branches: a value handed out is never handed out
again, on any branch.
"""

from __future__ import annotations

from ...backend.protocol import Backend, NativeSerials
from ...layout import physical_table


class SerialCounters:
    """The counters of one store's SERIAL columns, by (table id, physical column)."""

    def __init__(self, backend: Backend, native: NativeSerials | None):
        self._backend = backend
        self._native = native

    def next(self, tid: int, phys: str) -> int:
        """The counter's next value (inside the write transaction)."""
        if self._native is not None:
            return self._native.serial_next(physical_table(tid), phys)
        row = next(
            self._backend.execute(
                "INSERT INTO loom_serial (tid, phys, value) VALUES (?, ?, 1)"
                " ON CONFLICT (tid, phys) DO UPDATE SET value = loom_serial.value + 1 RETURNING value",
                (tid, phys),
            )
        )
        return int(row[0])

    def bump(self, tid: int, phys: str, value: int) -> None:
        """Keep the counter ahead of an explicitly inserted ``value``."""
        if self._native is not None:
            self._native.serial_bump(physical_table(tid), phys, value)
            return
        self._backend.execute(
            "INSERT INTO loom_serial (tid, phys, value) VALUES (?, ?, ?)"
            " ON CONFLICT (tid, phys) DO UPDATE SET value = CASE WHEN excluded.value > loom_serial.value"
            " THEN excluded.value ELSE loom_serial.value END",
            (tid, phys, value),
        )

    def value(self, tid: int, phys: str) -> int:
        """The last value the counter handed out (0: none yet)."""
        if self._native is not None:
            return self._native.serial_value(physical_table(tid), phys)
        row = next(
            self._backend.execute("SELECT value FROM loom_serial WHERE tid = ? AND phys = ?", (tid, phys)),
            None,
        )
        return 0 if row is None else int(row[0])

    def set(self, tid: int, phys: str, value: int) -> None:
        """Make the counter hand out ``value + 1`` next (a copy restores counters)."""
        if self._native is not None:
            self._native.serial_set(physical_table(tid), phys, value)
            return
        self._backend.execute(
            "INSERT INTO loom_serial (tid, phys, value) VALUES (?, ?, ?)"
            " ON CONFLICT (tid, phys) DO UPDATE SET value = excluded.value",
            (tid, phys, value),
        )
