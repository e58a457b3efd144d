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


def _timestamp_json(value: Any, with_tz: int) -> str | None:
    """A stored timestamp as the JSON string PostgreSQL's JSON builders write:
    ISO 8601 with a ``T``, the fraction only when not zero, ``+00:00`` for a timestamptz."""
    if value is None:
        return None
    text = timestamp_text(str(value), False).replace(" ", "T", 1)
    return text + "+00:00" if with_tz else text


def _in_range(build: Callable[[], dt.datetime], shown: str) -> dt.datetime:
    """``build()``, DataError 22008 when PostgreSQL's fields are out of range
    (NotSupportedError beyond Python's years 1 to 9999)."""
    try:
        return build()
    except (ValueError, OverflowError):
        raise errors.DataError(f"date/time field value out of range: {shown}", sqlstate="22008") from None


def _make_date(year: Any, month: Any, day: Any) -> str | None:
    """PostgreSQL's ``make_date(year, month, day)``."""
    if year is None or month is None or day is None:
        return None
    if isinstance(year, int) and year < 1:
        raise errors.NotSupportedError("make_date() of a year before 1 AD is not supported by loomdb")
    shown = f"{year}-{month:02}-{day:02}" if all(isinstance(v, int) for v in (year, month, day)) else "?"
    value = _in_range(lambda: dt.datetime(_int(year), _int(month), _int(day)), shown)
    return value.date().isoformat()


def _int(value: Any) -> int:
    """An integer argument (DataError for another type)."""
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise errors.DataError(f'invalid input syntax for type integer: "{value}"', sqlstate="22P02")


def _make_timestamp(year: Any, month: Any, day: Any, hour: Any, minute: Any, sec: Any) -> str | None:
    """PostgreSQL's ``make_timestamp(year, month, day, hour, min, sec)`` (sec a double)."""
    if any(v is None for v in (year, month, day, hour, minute, sec)):
        return None
    seconds = float(sec)
    if not 0 <= _int(hour) <= 23 or not 0 <= _int(minute) <= 59 or not 0 <= seconds <= 60:
        raise errors.DataError(f"time field value out of range: {hour}:{minute}:{sec}", sqlstate="22008")
    day_start = _in_range(lambda: dt.datetime(_int(year), _int(month), _int(day)), f"{year}-{month}-{day}")
    time = dt.timedelta(hours=_int(hour), minutes=_int(minute), microseconds=round(seconds * 1_000_000))
    return format_timestamp(day_start + time)


#: PostgreSQL's epoch (2000-01-01) in Unix seconds.
_PG_EPOCH = 946_684_800


def _to_timestamp(seconds: Any) -> str | None:
    """PostgreSQL's ``to_timestamp(double precision)``: Unix seconds as a timestamptz,
    rounded to microseconds as PostgreSQL rounds (from its own epoch, half to even)."""
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise errors.DataError(
            f'invalid input syntax for type double precision: "{seconds}"', sqlstate="22P02"
        ) from None
    if value != value:
        raise errors.DataError("timestamp cannot be NaN", sqlstate="22008")
    if value in (float("inf"), float("-inf")):
        raise errors.NotSupportedError(
            "to_timestamp() of infinity is not supported by loomdb (no infinite datetime)"
        )
    micros = round((value - _PG_EPOCH) * 1_000_000)
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    try:
        return format_timestamp(start + dt.timedelta(microseconds=micros))
    except OverflowError:
        raise errors.NotSupportedError(
            "timestamps outside the years 1 to 9999 are not supported by loomdb (Python's datetime)"
        ) from None


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


def _zone_instant(value: Any, zone: str) -> str | None:
    """``timestamp AT TIME ZONE zone``: the instant of that wall time there. A wall
    time a transition skips or repeats takes the smaller of its two offsets: the
    one before a spring-forward gap, the one after a fall-back (PostgreSQL's choice)."""
    if value is None or zone is None:
        return None
    wall = _stamp(str(value)).replace(tzinfo=None)
    where = zoneinfo.ZoneInfo(zone)
    offsets = [wall.replace(tzinfo=where, fold=fold).utcoffset() or dt.timedelta(0) for fold in (0, 1)]
    return format_timestamp((wall - min(offsets)).replace(tzinfo=dt.UTC))


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
    ("loom_zone_instant", _zone_instant, 2),
    ("loom_timestamp_json", _timestamp_json, 2),
    ("loom_make_date", _make_date, 3),
    ("loom_make_timestamp", _make_timestamp, 6),
    ("loom_to_timestamp", _to_timestamp, 1),
)

#: Every SQL name :func:`register` defines.
NAMES = ("loom_timestamp", "loom_timestamptz", "loom_date", *(f[0] for f in FUNCTIONS))
