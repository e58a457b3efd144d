"""Search filters: LangGraph's ``filter=`` dicts, checked and evaluated.

A filter maps top-level keys of an item's value to a condition:

- a plain value: JSON equality (``1 == 1.0``; ``True`` is not ``1``; lists
  compare element by element; a missing key counts as ``None``);
- a dict without ``$`` keys: each of its keys must match in the nested
  object, recursively (so ``{"meta": {"lang": "en"}}`` ignores other keys of
  ``meta``);
- a dict of operators: ``$eq``, ``$ne`` (JSON equality and its negation),
  ``$gt``, ``$gte``, ``$lt``, ``$lte`` (numbers with numbers, strings with
  strings by code point; any other pairing does not match).

Evaluation happens in Python so that both engines give the same answer
(their JSON comparisons differ, e.g. ``1 = 1.0`` on SQLite). A filter may
also give SQL conditions that every match satisfies (a pre-filter), to
narrow what the database returns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import StoreInputError
from .json import plain_json

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$ne", *COMPARISONS)


def check_filter(flt: Any) -> None:
    """Raise StoreInputError unless ``flt`` is None or a filter this module can evaluate."""
    if flt is None:
        return
    if not isinstance(flt, Mapping):
        raise StoreInputError(f"a search filter must be a dict, got {type(flt).__name__}")
    _check_conditions(flt, "filter")


def _check_conditions(conditions: Mapping[Any, Any], where: str) -> None:
    for key, cond in conditions.items():
        if not isinstance(key, str):
            raise StoreInputError(f"{where}: keys must be strings, got {key!r}")
        if key.startswith("$"):
            raise StoreInputError(
                f"{where}: unsupported operator {key!r} (use one of {', '.join(OPERATORS)})"
            )
        if isinstance(cond, Mapping) and _is_operator_dict(cond):
            _check_operators(cond, f"{where}[{key!r}]")
        elif isinstance(cond, Mapping):
            _check_conditions(cond, f"{where}[{key!r}]")
        else:
            plain_json(cond, f"{where}[{key!r}]")


def _is_operator_dict(cond: Mapping[Any, Any]) -> bool:
    return any(isinstance(k, str) and k.startswith("$") for k in cond)


def _check_operators(ops: Mapping[Any, Any], where: str) -> None:
    for op, operand in ops.items():
        if op not in OPERATORS:
            raise StoreInputError(f"{where}: unsupported operator {op!r} (use one of {', '.join(OPERATORS)})")
        if op in COMPARISONS and not (_is_number(operand) or isinstance(operand, str)):
            raise StoreInputError(
                f"{where}: {op} needs a number or a string to compare with, got {type(operand).__name__}"
            )
        plain_json(operand, f"{where}[{op!r}]")


def matches(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Whether an item's value satisfies a (checked) filter."""
    return not flt or all(_match(value.get(key), cond) for key, cond in flt.items())


def _match(actual: Any, cond: Any) -> bool:
    if isinstance(cond, Mapping):
        if _is_operator_dict(cond):
            return all(_apply(actual, op, operand) for op, operand in cond.items())
        return isinstance(actual, Mapping) and all(_match(actual.get(k), c) for k, c in cond.items())
    return json_equal(actual, cond)


def _apply(actual: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return json_equal(actual, operand)
    if op == "$ne":
        return not json_equal(actual, operand)
    if _is_number(actual) and _is_number(operand) or isinstance(actual, str) and isinstance(operand, str):
        if op == "$gt":
            return actual > operand
        if op == "$gte":
            return actual >= operand
        if op == "$lt":
            return actual < operand
        return actual <= operand
    return False


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values: numbers by value, booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b) and not (a is None or b is None):
        return False
    return a == b


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def prefilter(flt: Mapping[str, Any] | None, column: str) -> tuple[list[str], list[Any]]:
    """SQL conditions on JSONB ``column`` that every value matching ``flt`` satisfies.

    Only string equalities on plainly named keys qualify: ``column->>'key' =
    'text'`` holds for every value whose ``key`` is that string on both
    engines. The result narrows the candidates; ``matches`` still decides.
    """
    sql: list[str] = []
    params: list[Any] = []
    for key, cond in (flt or {}).items():
        if not _PLAIN_KEY.fullmatch(key):
            # The key is written into the SQL (loomdb's SQLite engine takes no
            # parameter there), so only keys that need no quoting are used.
            continue
        wanted = cond
        if isinstance(cond, Mapping) and _is_operator_dict(cond):
            wanted = cond.get("$eq")
        if isinstance(wanted, str):
            sql.append(f"{column}->>'{key}' = %s")
            params.append(wanted)
    return sql, params
