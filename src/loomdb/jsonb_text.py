"""jsonb's JSON text: reading numbers as PostgreSQL's numerics and writing them back.

PostgreSQL keeps a jsonb number as a numeric: ``1e2`` is ``100``, ``1.50``
stays ``1.50``. :func:`load_jsonb` reads them as Decimal, :func:`dump_jsonb`
writes compact stored text, :func:`write_jsonb` any layout (PostgreSQL's
output: ``", "`` and ``": "``, keys shorter first).

>>> write_jsonb(load_jsonb('{"bb": 1e2, "a": [1.50, -0.0]}'), ", ", ": ", pg_order=True)
'{"a": [1.50, 0.0], "bb": 100}'
>>> dump_jsonb(load_jsonb('{"b": 1, "a": 2.0}'))
'{"a":2.0,"b":1}'
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson


def _no_constant(token: str) -> Any:
    raise ValueError(f"invalid JSON token {token}")


def load_jsonb(text: str | bytes) -> Any:
    """Parse JSON text as jsonb reads it: numbers with a fraction or an exponent
    as Decimal (PostgreSQL's numeric), no NaN or Infinity; ValueError when it is not JSON."""
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def jsonb_number_text(value: Decimal) -> str:
    """A jsonb number as PostgreSQL prints a numeric: no exponent, ``-0`` as ``0``."""
    return format(value.copy_abs() if value.is_zero() else value, "f")


def _jsonb_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(jsonb_number_text(value))
    raise TypeError(f"{type(value).__name__} is not JSON")


def _jsonb_key(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return len(raw), raw


def write_jsonb(value: Any, comma: str = ",", colon: str = ":", pg_order: bool = False) -> str:
    """JSON text of a value :func:`load_jsonb` read, with the given separators;
    an object's keys sorted bytewise, or (``pg_order``) shorter first as jsonb orders them."""
    if isinstance(value, dict):
        keys = sorted(value, key=_jsonb_key) if pg_order else sorted(value)
        items = (
            json.dumps(k, ensure_ascii=False) + colon + write_jsonb(value[k], comma, colon, pg_order)
            for k in keys
        )
        return "{" + comma.join(items) + "}"
    if isinstance(value, list):
        return "[" + comma.join(write_jsonb(item, comma, colon, pg_order) for item in value) + "]"
    if isinstance(value, Decimal):
        return jsonb_number_text(value)
    if isinstance(value, float):
        return jsonb_number_text(Decimal(repr(value)))
    return json.dumps(value, ensure_ascii=False)


def dump_jsonb(value: Any) -> str:
    """:func:`loomdb.types.dump_json` for a value :func:`load_jsonb` read: Decimals written as
    PostgreSQL prints numerics (``1e2`` as ``100``, ``1.50`` as ``1.50``)."""
    try:
        return orjson.dumps(
            value, default=_jsonb_number, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:  # integers beyond 64 bits
        return write_jsonb(value)
