"""PostgreSQL's ``date_trunc``, ``EXTRACT`` and ``date_part`` over the SQLite
engine's stored timestamps (``YYYY-MM-DD HH:MM:SS.ffffff+00:00``: the UTC
instant of a TIMESTAMPTZ, the wall time of a TIMESTAMP; loomdb's session time
zone is UTC, so both read the same fields).

>>> _date_trunc("hour", "2024-03-01 09:41:07.250000+00:00")
'2024-03-01 09:00:00.000000+00:00'
>>> _date_trunc("week", "2024-03-01 09:41:07.250000+00:00")  # weeks start on Monday
'2024-02-26 00:00:00.000000+00:00'
>>> _extract("epoch", "2024-03-01 09:00:00.000000+00:00", 0), _extract("second", "2024-03-01 09:00:07.250000+00:00", 0)
('1709283600.000000', '7.250000')
>>> _extract("dow", "2024-03-03 00:00:00.000000+00:00", 1)  # date_part: a float
0.0
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ... import errors
from ...time_values import format_timestamp, parse_timestamp

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _stamp(value: str) -> dt.datetime:
    """A stored timestamp (or a date's ``YYYY-MM-DD``) as an aware UTC datetime."""
    return parse_timestamp(value if len(value) > 10 else value + " 00:00:00+00:00")


def _unknown(unit: str) -> errors.Error:
    return errors.DataError(f'unit "{unit}" not recognized for type timestamp', sqlstate="22023")


def _date_trunc(unit: Any, value: Any) -> str | None:
    """``date_trunc(unit, value)`` in storage form; NULL in, NULL out."""
    if unit is None or value is None:
        return None
    t = _stamp(str(value))
    u = str(unit).lower()
    if u == "microseconds":
        return format_timestamp(t)
    if u == "milliseconds":
        return format_timestamp(t.replace(microsecond=t.microsecond // 1000 * 1000))
    steps = ("second", "minute", "hour", "day")
    if u in steps:
        keep = steps.index(u)
        t = t.replace(microsecond=0)
        if keep >= 1:
            t = t.replace(second=0)
        if keep >= 2:
            t = t.replace(minute=0)
        if keep >= 3:
            t = t.replace(hour=0)
        return format_timestamp(t)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if u == "week":
        return format_timestamp(day - dt.timedelta(days=day.weekday()))
    if u == "month":
        return format_timestamp(day.replace(day=1))
    if u == "quarter":
        return format_timestamp(day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1))
    years = {"year": day.year, "decade": day.year // 10 * 10}
    years["century"] = (day.year - 1) // 100 * 100 + 1
    years["millennium"] = (day.year - 1) // 1000 * 1000 + 1
    if u in years:
        return format_timestamp(day.replace(year=years[u], month=1, day=1))
    raise _unknown(u)


def _field(u: str, t: dt.datetime) -> Decimal:
    """The value of EXTRACT's field ``u`` of ``t``, with PostgreSQL's scale."""
    micros = t.second * 1_000_000 + t.microsecond
    if u == "epoch":
        delta = t - _EPOCH
        return (
            Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
        ).quantize(Decimal("0.000001"))
    if u == "second":
        return Decimal(micros).scaleb(-6).quantize(Decimal("0.000001"))
    if u == "milliseconds":
        return Decimal(micros).scaleb(-3).quantize(Decimal("0.001"))
    iso = t.isocalendar()
    fields = {
        "microseconds": micros,
        "minute": t.minute,
        "hour": t.hour,
        "day": t.day,
        "month": t.month,
        "year": t.year,
        "quarter": (t.month - 1) // 3 + 1,
        "dow": (t.weekday() + 1) % 7,
        "isodow": t.isoweekday(),
        "doy": t.timetuple().tm_yday,
        "week": iso.week,
        "isoyear": iso.year,
        "decade": t.year // 10,
        "century": (t.year + 99) // 100,
        "millennium": (t.year + 999) // 1000,
    }
    if u not in fields:
        raise errors.NotSupportedError(f"EXTRACT({u} FROM ...) is not supported by loomdb on SQLite")
    return Decimal(fields[u])


def _extract(field: Any, value: Any, as_float: int) -> str | float | None:
    """``EXTRACT(field FROM value)`` as numeric text, or ``date_part`` as a float."""
    if field is None or value is None:
        return None
    number = _field(str(field).lower(), _stamp(str(value)))
    return float(number) if as_float else format(number, "f")


#: (SQL name, function, number of arguments); deterministic.
FUNCTIONS = (
    ("loom_date_trunc", _date_trunc, 2),
    ("loom_extract", _extract, 3),
)
