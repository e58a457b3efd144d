"""TIMESTAMP, TIMESTAMPTZ and DATE values as PostgreSQL (with TimeZone UTC) reads and writes them.

Storage form, on both engines' upper layers: fixed-width text
``YYYY-MM-DD HH:MM:SS.ffffff+00:00``. A TIMESTAMPTZ keeps its UTC instant; a
TIMESTAMP keeps its wall time written the same way, which is the instant that
PostgreSQL with TimeZone UTC gives it, so the two compare (and sort, as text)
as PostgreSQL compares them. A DATE is ``YYYY-MM-DD``.

>>> parse_input("2024-03-01 12:00+02", with_tz=False)
datetime.datetime(2024, 3, 1, 12, 0)
>>> parse_input("2024-03-01T10:00:00Z", with_tz=True)
datetime.datetime(2024, 3, 1, 10, 0, tzinfo=datetime.timezone.utc)
>>> timestamp_text("2024-03-01 12:00:00.500000+00:00", with_tz=False)
'2024-03-01 12:00:00.5'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from .errors import DataError, NotSupportedError

UTC = dt.UTC

#: What answers "now" for the special inputs 'now', 'today', 'yesterday' and 'tomorrow'
#: (an aware UTC datetime); None where no statement time is known.
NowFunction = Callable[[], dt.datetime] | None

# PostgreSQL's ISO input: a date, optionally a time (one-digit hours, seconds and
# a fraction optional) and a UTC offset (Z, +hh, +hh:mm, +hhmm) or UTC.
_INPUT = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:\s+|T|\s*T\s*)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d*))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2}(?::?\d{2})?)?)?\s*",
    re.IGNORECASE,
)
_RELATIVE_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}
_UNREPRESENTABLE = ("infinity", "+infinity", "-infinity")


def format_timestamp(value: dt.datetime) -> str:
    """Fixed-width UTC text that sorts chronologically (naive input is taken as UTC wall time)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # isoformat is implemented in C and, for an aware UTC value with
    # timespec="microseconds", always yields "YYYY-MM-DD HH:MM:SS.ffffff+00:00".
    return value.isoformat(sep=" ", timespec="microseconds")


def parse_timestamp(text: str) -> dt.datetime:
    """Inverse of :func:`format_timestamp`: an aware UTC datetime (also reads
    ISO text a user wrote; naive text counts as UTC)."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now_text() -> str:
    """The current time in storage form, with microsecond precision."""
    return format_timestamp(dt.datetime.now(UTC))


def _out_of_range(text: str) -> DataError:
    return DataError(f'date/time field value out of range: "{text}"', sqlstate="22008")


def _special(word: str, type_name: str, now: NowFunction) -> dt.datetime | None:
    """The value of PostgreSQL's special input ``word`` (aware UTC), None when it is none."""
    if word == "epoch":
        return dt.datetime(1970, 1, 1, tzinfo=UTC)
    if word in _UNREPRESENTABLE:
        raise NotSupportedError(
            f"{type_name} '{word}' is not supported by loomdb (Python's datetime has no infinity)"
        )
    if word != "now" and word not in _RELATIVE_DAYS:
        return None
    if now is None:
        raise NotSupportedError(
            f"{type_name} '{word}' is supported by loomdb only in a cast or comparison of a query"
            " (here it has no transaction time to read)"
        )
    current = now()
    if word == "now":
        return current
    day = current.date() + dt.timedelta(days=_RELATIVE_DAYS[word])
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _plain_iso(text: str) -> bool:
    """Whether ``text`` is shaped YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or YYYY-MM-DD HH:MM:SS.ffffff."""
    size = len(text)
    if size not in (10, 19, 26) or text[4] != "-" or text[7] != "-":
        return False
    if size == 10:
        return True
    return text[10] in " T" and text[13] == ":" and text[16] == ":" and (size == 19 or text[19] == ".")


def parse_input(text: str, with_tz: bool, now: NowFunction = None) -> dt.datetime:
    """PostgreSQL's timestamp (``with_tz`` False: a naive datetime, any offset
    ignored) or timestamptz input (an aware UTC datetime, naive text taken as
    UTC), for the ISO forms and special words PostgreSQL accepts.

    DataError 22007 for text that is no timestamp, 22008 for a field out of
    range; NotSupportedError for 'infinity' and, without ``now``, for 'now' /
    'today' / 'yesterday' / 'tomorrow'.
    """
    if _plain_iso(text):
        # Plain ISO text (a date, a time to the second or microsecond, no zone): read
        # by Python's own parser, which reads these exactly as PostgreSQL does.
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC) if with_tz else value
    type_name = "timestamp with time zone" if with_tz else "timestamp without time zone"
    special = _special(text.strip().lower(), type_name, now)
    if special is not None:
        return special if with_tz else special.replace(tzinfo=None)
    match = _INPUT.fullmatch(text)
    if match is None:
        raise DataError(f'invalid input syntax for type {type_name}: "{text}"', sqlstate="22007")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = 0
    if fraction:
        digits = (fraction + "000000")[:7]
        micro = (int(digits) + 5) // 10  # rounded to microseconds, as PostgreSQL does
    h, m, s = int(hour or 0), int(minute or 0), int(second or 0)
    if h > 24 or m > 59 or s > 60 or (h == 24 and (m or s or micro)):
        raise _out_of_range(text)
    try:
        if h < 24 and s < 60 and micro < 1_000_000:
            value = dt.datetime(int(year), int(month), int(day), h, m, s, micro)
        else:  # 24:00:00 is the next midnight, a 60th second the next minute, as in PostgreSQL
            value = dt.datetime(int(year), int(month), int(day))
            value += dt.timedelta(hours=h, minutes=m, seconds=s, microseconds=micro)
    except (ValueError, OverflowError):
        raise _out_of_range(text) from None
    if not with_tz:
        return value
    offset = _offset(zone) if zone else dt.timedelta(0)
    return (value - offset).replace(tzinfo=UTC)


def _offset(zone: str) -> dt.timedelta:
    """A UTC offset as written after a time (Z, UTC, +hh, +hh:mm, +hhmm, +hh:mm:ss)."""
    if zone.upper() in ("Z", "UTC", "GMT"):
        return dt.timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    if len(digits) % 2:
        digits = "0" + digits
    hours, minutes, seconds = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    return sign * dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def timestamp_storage(value: object, with_tz: bool, now: NowFunction = None) -> str | None:
    """A value bound or written to a TIMESTAMP (``with_tz`` False) or TIMESTAMPTZ, in
    storage form: an aware datetime converted to UTC (PostgreSQL with TimeZone
    UTC), a naive one taken as UTC, a date as its midnight, text read as
    :func:`parse_input` reads it; None for a value of another type."""
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return format_timestamp(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        if len(value) == 32 and value[10] == " " and value.endswith("+00:00"):
            dt.datetime.fromisoformat(value)  # checked: already the storage form
            return value
        return format_timestamp(parse_input(value, with_tz, now))
    return None


def parse_date_input(text: str, now: NowFunction = None) -> dt.date:
    """PostgreSQL's date input (a time after the date is read and dropped);
    errors as :func:`parse_input`."""
    special = _special(text.strip().lower(), "date", now)
    if special is not None:
        return special.date()
    try:
        return parse_input(text, with_tz=False).date()
    except DataError as exc:
        if exc.sqlstate == "22007":
            raise DataError(f'invalid input syntax for type date: "{text}"', sqlstate="22007") from None
        raise


def timestamp_text(stored: str, with_tz: bool) -> str:
    """A stored timestamp as PostgreSQL's text output: the fraction only when it
    is not zero (trailing zeros dropped), ``+00`` for a timestamptz."""
    text = stored[:26].rstrip("0").rstrip(".") if stored[20:26] != "000000" else stored[:19]
    return text + "+00" if with_tz else text
