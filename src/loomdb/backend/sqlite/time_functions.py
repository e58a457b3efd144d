"""PostgreSQL's time casts, text and arithmetic on SQLite, registered by :mod:`.functions`.

Values arrive in loomdb's storage forms (see :mod:`loomdb.time_values`): a
TIMESTAMP or TIMESTAMPTZ as ``YYYY-MM-DD HH:MM:SS.ffffff+00:00``, a DATE as
``YYYY-MM-DD``; string literals as the user wrote them.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import apsw

from ... import errors
from ...time_values import format_timestamp, parse_timestamp, timestamp_text
from ...types import ColumnType, to_storage

if TYPE_CHECKING:
    from apsw import SQLiteValue

_TYPES = {
    "TIMESTAMP": ColumnType.parse("TIMESTAMP"),
    "TIMESTAMPTZ": ColumnType.parse("TIMESTAMPTZ"),
    "DATE": ColumnType.parse("DATE"),
}


def _cast(kind: str, now: Callable[[], dt.datetime]) -> Callable[..., SQLiteValue]:
    """``CAST(value AS kind)`` for a time type: the value in its storage form,
    DataError (22007 / 22008) when it is no such time."""
    ctype = _TYPES[kind]

    def cast(value: SQLiteValue) -> SQLiteValue:
        """``value`` in ``kind``'s storage form (NULL stays NULL)."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise errors.ProgrammingError(
                f"cannot cast type {type(value).__name__} to {kind.lower()}", sqlstate="42846"
            )
        return to_storage(value, ctype, "value", now)

    return cast


def _stamp(value: str) -> dt.datetime:
    """A stored timestamp or date as an aware UTC datetime."""
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        raise errors.DataError(
            f'invalid input syntax for type timestamp: "{value}"', sqlstate="22007"
        ) from None


def _timestamp_text(value: Any, with_tz: int) -> str | None:
    """``value::text`` of a stored timestamp (``with_tz``: a timestamptz), as PostgreSQL writes it."""
    return None if value is None else timestamp_text(str(value), bool(with_tz))


def _date_add(day: Any, days: Any) -> str | None:
    """PostgreSQL's ``date + integer`` (and ``date - integer`` with ``-days``): a date."""
    if day is None or days is None:
        return None
    if not isinstance(days, int):
        raise errors.ProgrammingError(
            "operator does not exist: date + " + type(days).__name__, sqlstate="42883"
        )
    try:
        return (dt.date.fromisoformat(str(day)[:10]) + dt.timedelta(days=days)).isoformat()
    except OverflowError:
        raise errors.DataError("date out of range", sqlstate="22008") from None


def _date_diff(a: Any, b: Any) -> int | None:
    """PostgreSQL's ``date - date``: the number of days between them."""
    if a is None or b is None:
        return None
    return (dt.date.fromisoformat(str(a)[:10]) - dt.date.fromisoformat(str(b)[:10])).days


def _stamp_diff(a: Any, b: Any) -> int | None:
    """PostgreSQL's ``timestamp - timestamp`` (an interval) in microseconds (decoded
    to a timedelta by the result type)."""
    if a is None or b is None:
        return None
    delta = _stamp(str(a)) - _stamp(str(b))
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@functools.cache
def zone_exists(name: str) -> bool:
    """Whether ``name`` is a time zone of the IANA database Python reads."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zone_wall_time(value: Any, zone: str) -> str | None:
    """``timestamptz AT TIME ZONE zone``: the wall time there, as a stored timestamp."""
    if value is None or zone is None:
        return None
    wall = _stamp(str(value)).astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    return format_timestamp(wall)


def register(conn: apsw.Connection, now: Callable[[], str]) -> None:
    """Register the time functions on ``conn``; ``now`` answers the statement's
    time in storage form (for 'now', 'today', 'yesterday' and 'tomorrow')."""

    def current() -> dt.datetime:
        """The statement's time."""
        return parse_timestamp(now())

    # Not deterministic: 'today' changes with the statement's time.
    for name, kind in (
        ("loom_timestamp", "TIMESTAMP"),
        ("loom_timestamptz", "TIMESTAMPTZ"),
        ("loom_date", "DATE"),
    ):
        conn.create_scalar_function(name, _cast(kind, current), 1, deterministic=False)
    for name, function, nargs in FUNCTIONS:
        conn.create_scalar_function(name, function, nargs, deterministic=True)


#: The deterministic time functions: (SQL name, function, number of arguments).
FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_timestamp_text", _timestamp_text, 2),
    ("loom_date_add", _date_add, 2),
    ("loom_date_diff", _date_diff, 2),
    ("loom_stamp_diff", _stamp_diff, 2),
    ("loom_zone_wall_time", _zone_wall_time, 2),
)

#: Every SQL name :func:`register` defines.
NAMES = ("loom_timestamp", "loom_timestamptz", "loom_date", *(f[0] for f in FUNCTIONS))
