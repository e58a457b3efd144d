"""PostgreSQL's jsonb functions and operators, as SQL functions for the SQLite engine.

Stored jsonb stays compact JSON text (as :func:`loomdb.types.dump_json` writes
it: the write path is not touched); what PostgreSQL prints, compares or
changes by jsonb's rules goes through these. jsonb numbers are PostgreSQL
numerics: they are parsed as Decimal (``1.0`` stays ``1.0``, ``1e2`` becomes
``100``) and compared as numbers (``1.0 = 1``).

>>> pg_text(parse('{"b": 1, "aa": [1.50, true], "c": 1e2}'))
'{"b": 1, "c": 100, "aa": [1.50, true]}'
>>> _equal(parse('{"a": 1.0}'), parse('{"a": 1}'))
True
>>> _set_path(parse('{"a": [1, 2]}'), ["a", "-1"], 9, "replace")
{'a': [1, 9]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from ... import errors
from ...jsonb_text import dump_jsonb, load_jsonb, write_jsonb

_MISSING = object()


def parse(value: Any) -> Any:
    """A jsonb operand (JSON text) parsed, numbers with a fraction or exponent as
    Decimal; DataError 22P02 for text that is not JSON."""
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        return value
    try:
        return load_jsonb(value)
    except ValueError:
        raise errors.DataError(
            f"invalid input syntax for type json: {value[:80]!r}", sqlstate="22P02"
        ) from None


dumps = dump_jsonb


def pg_text(value: Any) -> str:
    """``value`` as PostgreSQL's jsonb output: ``", "`` and ``": "`` separators,
    an object's keys shorter first, then bytewise (jsonb's order)."""
    return write_jsonb(value, ", ", ": ", pg_order=True)


def _kind(value: Any) -> str:
    """jsonb's type of a parsed value; numbers are one kind (int and Decimal)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _equal(a: Any, b: Any) -> bool:
    """jsonb equality: numbers by value, objects whatever their key order."""
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def jsonb_contains(left: Any, right: Any, top: bool = True) -> bool:
    """PostgreSQL's jsonb ``left @> right`` over parsed values."""
    if isinstance(left, dict):
        return isinstance(right, dict) and all(
            key in left and jsonb_contains(left[key], value, False) for key, value in right.items()
        )
    if isinstance(left, list):
        if isinstance(right, list):
            return all(any(jsonb_contains(item, want, False) for item in left) for want in right)
        # Only a top-level array contains a primitive (one of its elements equal to it).
        return top and not isinstance(right, dict) and any(_equal(item, right) for item in left)
    return not isinstance(right, (dict, list)) and _equal(left, right)


def _jsonb(value: Any) -> str | None:
    """``value::jsonb``: JSON text in stored form (DataError 22P02 for text that is not JSON)."""
    return None if value is None else dumps(parse(value))


def _text(value: Any) -> str | None:
    """``jsonb::text`` (and ``->>`` of a container or a fraction): PostgreSQL's output."""
    return None if value is None else pg_text(parse(value))


def _eq(a: Any, b: Any) -> int | None:
    """jsonb ``a = b`` as SQL: NULL for a NULL side, else 1 or 0."""
    return None if a is None or b is None else int(_equal(parse(a), parse(b)))


def _contains(a: Any, b: Any) -> int | None:
    """``a @> b`` as SQL: NULL when either side is NULL, else 1 or 0."""
    return None if a is None or b is None else int(jsonb_contains(parse(a), parse(b)))


def _contained(a: Any, b: Any) -> int | None:
    """``a <@ b`` as SQL (``b @> a``)."""
    return _contains(b, a)


def _exists(doc: Any, key: Any) -> int | None:
    """jsonb's ``doc ? key``: an object's key, an array's string element, or a string equal to it."""
    if doc is None or key is None:
        return None
    value = parse(doc)
    if isinstance(value, dict):
        return int(key in value)
    if isinstance(value, list):
        return int(any(isinstance(item, str) and item == key for item in value))
    return int(isinstance(value, str) and value == key)


def _concat(a: Any, b: Any) -> str | None:
    """jsonb's ``a || b``: two objects merge (b's value wins for a shared key);
    otherwise both sides, a non-array taken as a one-element array, are joined."""
    if a is None or b is None:
        return None
    left, right = parse(a), parse(b)
    if isinstance(left, dict) and isinstance(right, dict):
        return dumps({**left, **right})
    items = (left if isinstance(left, list) else [left]) + (right if isinstance(right, list) else [right])
    return dumps(items)


def _delete(doc: Any, key: Any) -> str | None:
    """jsonb's ``doc - key``: an object without ``key``, an array without the
    string elements equal to ``key``, or (an integer ``key``) without that element."""
    if doc is None or key is None:
        return None
    value = parse(doc)
    if isinstance(key, int) and not isinstance(key, bool):
        if not isinstance(value, list):
            raise errors.DataError(
                "cannot delete from object using integer index"
                if isinstance(value, dict)
                else "cannot delete from scalar",
                sqlstate="22023",
            )
        index = key + len(value) if key < 0 else key
        return dumps([item for i, item in enumerate(value) if i != index])
    if isinstance(value, dict):
        return dumps({k: v for k, v in value.items() if k != key})
    if isinstance(value, list):
        return dumps([item for item in value if not (isinstance(item, str) and item == key)])
    raise errors.DataError("cannot delete from scalar", sqlstate="22023")


def _delete_keys(doc: Any, keys: Any) -> str | None:
    """jsonb's ``doc - $n``: a parameter holding a Python list (bound as a JSON
    array of strings) is ``jsonb - text[]``: every such key (or string element) goes."""
    if isinstance(keys, str) and keys.startswith("["):
        try:
            names = json.loads(keys)
        except ValueError:
            names = None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            if doc is None:
                return None
            value = parse(doc)
            if isinstance(value, dict):
                return dumps({k: v for k, v in value.items() if k not in names})
            if isinstance(value, list):
                return dumps([item for item in value if not (isinstance(item, str) and item in names)])
            raise errors.DataError("cannot delete from scalar", sqlstate="22023")
    return _delete(doc, keys)


# -- paths: PostgreSQL text arrays '{a,0,b}' (or a parameter's JSON list) ----------------


def path_elements(value: Any) -> list[str | None]:
    """A text[] path: PostgreSQL's array literal ``'{a,"b c",0}'``, or the JSON
    list a Python list parameter is bound as; DataError 22P02 otherwise."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError:
            items = None
        if isinstance(items, list) and all(isinstance(i, (str, int, type(None))) for i in items):
            return [None if i is None else str(i) for i in items]
    elif stripped.startswith("{") and stripped.endswith("}"):
        parsed = _array_literal(stripped[1:-1])
        if parsed is not None:
            return parsed
    raise errors.DataError(f'malformed array literal: "{text}"', sqlstate="22P02")


def _array_literal(body: str) -> list[str | None] | None:
    """The elements of a one-dimensional array literal's body (None when malformed)."""
    out: list[str | None] = []
    if not body.strip():
        return out
    i, n = 0, len(body)
    while True:
        while i < n and body[i].isspace():
            i += 1
        if i < n and body[i] == '"':
            i += 1
            chars = []
            while i < n and body[i] != '"':
                if body[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(body[i])
                i += 1
            if i >= n:
                return None
            i += 1
            item: str | None = "".join(chars)
            while i < n and body[i].isspace():
                i += 1
        else:
            start = i
            while i < n and body[i] not in ',"{}':
                i += 1
            raw = body[start:i].strip()
            if not raw or (i < n and body[i] in '"{}'):
                return None
            item = None if raw.upper() == "NULL" else raw.replace("\\", "")
        out.append(item)
        if i >= n:
            return out
        if body[i] != ",":
            return None
        i += 1


def _index(part: str, position: int, strict: bool) -> int | None:
    """A path element used on an array as an integer; None (or, ``strict``, DataError) when it is not one."""
    try:
        return int(part.strip())
    except ValueError:
        if not strict:
            return None
        raise errors.DataError(
            f'path element at position {position} is not an integer: "{part}"', sqlstate="22P02"
        ) from None


def _get_path(value: Any, parts: list[str | None]) -> Any:
    """The value at ``parts`` (``#>``), or _MISSING."""
    for part in parts:
        if part is None:
            return _MISSING
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list):
            index = _index(part, 0, strict=False)
            if index is None or not -len(value) <= index < len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
        if value is _MISSING:
            return value
    return value


def _set_path(value: Any, parts: list[str | None], new: Any, op: str, level: int = 0) -> Any:
    """``value`` changed at ``parts`` as PostgreSQL's setPath does: ``op`` is
    replace (jsonb_set), create (jsonb_set creating a missing last key or
    element), before / after (jsonb_insert) or delete (``#-``)."""
    part = parts[level]
    if part is None:
        raise errors.DataError(f"path element at position {level + 1} is null", sqlstate="22004")
    last = level == len(parts) - 1
    adds = op in ("create", "before", "after")
    if isinstance(value, dict):
        out = dict(value)
        if part in value:
            if not last:
                out[part] = _set_path(value[part], parts, new, op, level + 1)
            elif op in ("before", "after"):
                raise errors.DataError("cannot replace existing key", sqlstate="22023")
            elif op == "delete":
                del out[part]
            else:
                out[part] = new
        elif last and adds:
            out[part] = new
        return out
    if isinstance(value, list):
        index = _index(part, level + 1, strict=True)
        assert index is not None
        n = len(value)
        if index < 0:
            index = n + index if -index <= n else None  # None: before the first element
        elif index > n:
            index = n
        items = list(value)
        if last:
            if index is None or (n == 0 and adds):
                return [new, *items] if adds else items
            if index == n:
                return [*items, new] if adds else items
            if op == "delete":
                del items[index]
            elif op == "before":
                items.insert(index, new)
            elif op == "after":
                items.insert(index + 1, new)
            else:
                items[index] = new
            return items
        if index is not None and index < n:
            items[index] = _set_path(items[index], parts, new, op, level + 1)
        return items
    return value


def _changed(doc: Any, path: Any, new: Any, op: str) -> str | None:
    """The jsonb ``doc`` with ``op`` applied at ``path`` (see :func:`_set_path`)."""
    if doc is None or path is None or (new is None and op != "delete"):
        return None
    if op != "delete" and not isinstance(new, (str, bytes)):
        kind = "integer" if isinstance(new, int) else "double precision"
        name = "jsonb_insert" if op in ("before", "after") else "jsonb_set"
        raise errors.ProgrammingError(
            f"function {name}(jsonb, text[], {kind}) does not exist", sqlstate="42883"
        )
    value = parse(doc)
    parts = path_elements(path)
    if not isinstance(value, (dict, list)):
        verb = "delete" if op == "delete" else "set"
        raise errors.DataError(f"cannot {verb} path in scalar", sqlstate="22023")
    if not parts:
        return dumps(value)
    return dumps(_set_path(value, parts, None if new is None else parse(new), op))


def _jsonb_set(doc: Any, path: Any, new: Any, create: Any = 1) -> str | None:
    """``jsonb_set(doc, path, new [, create_missing])``."""
    return _changed(doc, path, new, "create" if create else "replace")


def _jsonb_insert(doc: Any, path: Any, new: Any, after: Any = 0) -> str | None:
    """``jsonb_insert(doc, path, new [, insert_after])``."""
    return _changed(doc, path, new, "after" if after else "before")


def _delete_path(doc: Any, path: Any) -> str | None:
    """jsonb's ``doc #- path``."""
    return _changed(doc, path, None, "delete")


def _extract_path(doc: Any, path: Any) -> str | None:
    """jsonb's ``doc #> path``: the value there as stored jsonb, or NULL."""
    if doc is None or path is None:
        return None
    found = _get_path(parse(doc), path_elements(path))
    return None if found is _MISSING else dumps(found)


def scalar_text(value: Any) -> str | None:
    """A jsonb value as ``->>`` and ``#>>`` give it: a string unquoted, null as NULL."""
    if value is None or value is _MISSING:
        return None
    if isinstance(value, str):
        return value
    return pg_text(value)


def _extract_path_text(doc: Any, path: Any) -> str | None:
    """jsonb's ``doc #>> path``."""
    if doc is None or path is None:
        return None
    return scalar_text(_get_path(parse(doc), path_elements(path)))


def _array_length(doc: Any) -> int | None:
    """``jsonb_array_length(doc)``: DataError 22023 for an object or a scalar."""
    if doc is None:
        return None
    value = parse(doc)
    if isinstance(value, list):
        return len(value)
    what = "a non-array" if isinstance(value, dict) else "a scalar"
    raise errors.DataError(f"cannot get array length of {what}", sqlstate="22023")


def _strip_nulls(doc: Any) -> str | None:
    """``jsonb_strip_nulls(doc)``: objects' null-valued fields removed, at every depth."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return None if doc is None else dumps(strip(parse(doc)))


def _pretty_text(value: Any, level: int) -> str:
    """PostgreSQL's jsonb_pretty layout: four spaces a level, one member a line."""
    pad, inner = "\n" + "    " * level, "\n" + "    " * (level + 1)
    if isinstance(value, dict):
        members = (
            inner + json.dumps(k, ensure_ascii=False) + ": " + _pretty_text(value[k], level + 1)
            for k in sorted(value, key=_key_order)
        )
        return "{" + ",".join(members) + pad + "}"
    if isinstance(value, list):
        return "[" + ",".join(inner + _pretty_text(item, level + 1) for item in value) + pad + "]"
    return pg_text(value)


def _pretty(doc: Any) -> str | None:
    """``jsonb_pretty(doc)``."""
    return None if doc is None else _pretty_text(parse(doc), 0)


def _float_json(value: Any, bits: int) -> str | None:
    """A real (``bits`` 32) or double precision put into jsonb, as PostgreSQL
    puts it: its shortest text read as a numeric (``1e+20`` as ``100000000000000000000``),
    NaN and the infinities as strings."""
    if value is None:
        return None
    number = float(value)
    text = str(np.float32(number)) if bits == 32 else repr(number)
    if not math.isfinite(number):
        return json.dumps({"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[text.lower()])
    # PostgreSQL's shortest text has no ".0" (250, not 250.0): normalised digits.
    return dumps(Decimal(text).normalize())


# -- jsonb's ordering (its btree order) ---------------------------------------------------

# jsonb's type order: null < string < number < boolean < array < object.
_NULL, _STRING, _NUMBER, _BOOL, _ARRAY, _OBJECT = range(6)


def _scalar_type(value: Any) -> int:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, str):
        return _STRING
    return _NUMBER


def _tokens(value: Any, token: str, top: bool = False) -> Any:
    """jsonb's iterator over a parsed value: (token, type, payload...) as
    PostgreSQL's compareJsonbContainers walks it (a top-level scalar is a
    one-element "raw scalar" array; an object's keys in jsonb's order)."""
    if isinstance(value, dict):
        yield ("begin-object", _OBJECT, len(value))
        for key in sorted(value, key=_key_order):
            yield ("key", _STRING, key)
            yield from _tokens(value[key], "value")
        yield ("end",)
    elif isinstance(value, list):
        yield ("begin-array", _ARRAY, len(value), False)
        for item in value:
            yield from _tokens(item, "elem")
        yield ("end",)
    elif top:
        yield ("begin-array", _ARRAY, 1, True)
        yield ("elem", _scalar_type(value), value)
        yield ("end",)
    else:
        yield (token, _scalar_type(value), value)


def _key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode()
    return len(raw), raw


def _compare_scalars(kind: int, a: Any, b: Any) -> int:
    if kind == _NULL:
        return 0
    if kind == _STRING:
        a, b = a.encode(), b.encode()  # the C collation: bytewise
    return (a > b) - (a < b)


def jsonb_compare(a: Any, b: Any) -> int:
    """PostgreSQL's jsonb ordering of two parsed values (-1, 0, 1)."""
    done: tuple[Any, ...] = ("done",)
    ta: tuple[Any, ...]
    tb: tuple[Any, ...]
    ita, itb = _tokens(a, "elem", top=True), _tokens(b, "elem", top=True)
    while True:
        ta, tb = next(ita, done), next(itb, done)
        if ta[0] == tb[0]:
            if ta[0] == "done":
                return 0
            if ta[0] == "end":
                continue
            if ta[1] != tb[1]:
                return 1 if ta[1] > tb[1] else -1
            res = 0
            if ta[0] == "begin-array":
                if ta[3] != tb[3]:
                    res = -1 if ta[3] else 1
                if ta[2] != tb[2]:  # PostgreSQL lets the length override the raw-scalar order
                    res = 1 if ta[2] > tb[2] else -1
            elif ta[0] == "begin-object":
                res = (ta[2] > tb[2]) - (ta[2] < tb[2])
            else:
                res = _compare_scalars(ta[1], ta[2], tb[2])
        else:
            res = 1 if ta[1] > tb[1] else -1
        if res:
            return res


def jsonb_collation(a: str, b: str) -> int:
    """The ``loom_jsonb`` collation: stored jsonb texts in PostgreSQL's jsonb order."""
    return jsonb_compare(parse(a), parse(b))


def _each_source(kind: str) -> Callable[[Any], Any]:
    """The argument of a set-returning function over ``kind`` ('object' or
    'array') as it is, or DataError 22023 as PostgreSQL raises for another kind."""
    name = "jsonb_each" if kind == "object" else "jsonb_array_elements"

    def check(doc: Any) -> Any:
        if doc is None:
            return None
        value = parse(doc)
        if kind == "object" and not isinstance(value, dict):
            raise errors.DataError(f"cannot call {name} on a non-object", sqlstate="22023")
        if kind == "array" and not isinstance(value, list):
            what = "an object" if isinstance(value, dict) else "a scalar"
            raise errors.DataError(f"cannot extract elements from {what}", sqlstate="22023")
        return doc

    return check


#: The functions the SQLite dialect's jsonb rewrites call: (SQL name, function, number of arguments; -1 any).
def _object_key(key: Any, position: int) -> Any:
    """A computed key of json[b]_build_object: PostgreSQL raises 22023 for a NULL one."""
    if key is None:
        raise errors.DataError(f"argument {position}: key must not be null", sqlstate="22023")
    return key


JSON_FUNCTIONS: tuple[tuple[str, Callable[..., Any], int], ...] = (
    ("loom_jsonb", _jsonb, 1),
    ("loom_json_key", _object_key, 2),
    ("loom_jsonb_text", _text, 1),
    ("loom_jsonb_eq", _eq, 2),
    ("loom_jsonb_contains", _contains, 2),
    ("loom_jsonb_contained", _contained, 2),
    ("loom_jsonb_exists", _exists, 2),
    ("loom_jsonb_concat", _concat, 2),
    ("loom_jsonb_delete", _delete, 2),
    ("loom_jsonb_delete_keys", _delete_keys, 2),
    ("loom_jsonb_set", _jsonb_set, -1),
    ("loom_jsonb_insert", _jsonb_insert, -1),
    ("loom_jsonb_delete_path", _delete_path, 2),
    ("loom_jsonb_extract_path", _extract_path, 2),
    ("loom_jsonb_extract_path_text", _extract_path_text, 2),
    ("loom_jsonb_array_length", _array_length, 1),
    ("loom_jsonb_strip_nulls", _strip_nulls, 1),
    ("loom_json_float", _float_json, 2),
    ("loom_jsonb_pretty", _pretty, 1),
    ("loom_jsonb_object_source", _each_source("object"), 1),
    ("loom_jsonb_array_source", _each_source("array"), 1),
)
