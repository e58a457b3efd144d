"""Parameter styles: ``%s``, ``%(name)s`` (psycopg) and ``$1`` (PostgreSQL).

:func:`normalize` rewrites a statement's text so that every placeholder is
``$n`` numbered in text order, and returns how to build the positional
parameter list from what the caller passed.

>>> normalize("SELECT %(a)s, '100%%', %(b)s,%(a)s", True)
("SELECT $1 , '100%', $2 ,$1 ", ('named', 2, ('a', 'b')))
>>> bind(('named', 2, ('a', 'b')), {'a': 1, 'b': 2})
[1, 2]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..errors import ProgrammingError

# A binding plan: (style, count, names). style is "none", "positional",
# "named", "numbered" or "mixed"; for "named", names[i] is the name of $i+1.
Plan = tuple[str, int, tuple[str, ...]]


@lru_cache(maxsize=4096)
def normalize(sql: str, has_params: bool) -> tuple[str, Plan]:
    """Return ``(text with $n placeholders, binding plan)``.

    ``has_params`` follows psycopg: only when parameters are given does
    ``%%`` stand for a literal ``%`` and ``%s`` for a placeholder.
    """
    if not has_params or "%" not in sql:
        top = _max_dollar(sql)
        if top:
            return _space_dollars(sql), ("numbered", top, ())
        return sql, ("none", 0, ())
    out: list[str] = []
    i, n = 0, len(sql)
    positional = 0
    names: list[str] = []
    while i < n:
        c = sql[i]
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1].replace("%%", "%"))
            i = j + 1
        elif c == '"':
            j = sql.find('"', i + 1)
            j = n - 1 if j < 0 else j
            out.append(sql[i : j + 1])
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif c == "%":
            if sql.startswith("%%", i):
                out.append("%")
                i += 2
            elif sql.startswith("%s", i):
                if names:
                    raise ProgrammingError("cannot mix %s and %(name)s placeholders in one statement")
                positional += 1
                out.append(f"${positional} ")
                i += 2
            elif sql.startswith("%(", i):
                end = sql.find(")s", i)
                if end < 0:
                    raise ProgrammingError(f"malformed named placeholder near {sql[i : i + 20]!r}")
                if positional:
                    raise ProgrammingError("cannot mix %s and %(name)s placeholders in one statement")
                name = sql[i + 2 : end]
                if name not in names:
                    names.append(name)
                out.append(f"${names.index(name) + 1} ")
                i = end + 2
            else:
                raise ProgrammingError(
                    f"only '%s' and '%(name)s' placeholders are supported, found {sql[i : i + 2]!r}"
                    " (write '%%' for a literal '%' when passing parameters)"
                )
        else:
            out.append(c)
            i += 1
    text = _end_clear("".join(out))
    if positional:
        if _max_dollar(sql):
            raise ProgrammingError("cannot mix %s and $n placeholders in one statement")
        return text, ("positional", positional, ())
    if names:
        return text, ("named", len(names), tuple(names))
    top = _max_dollar(sql)
    if top:
        return _space_dollars(text), ("numbered", top, ())
    return text, ("none", 0, ())


def _end_clear(sql: str) -> str:
    """``sql`` with a space after a closing quote at its very end: sqlglot's
    tokenizer fails on a statement with a $n placeholder that ends with the
    literal ``''`` (sqlglot 30.x)."""
    return sql + " " if sql.endswith("'") else sql


def _space_dollars(sql: str) -> str:
    """Put a space after each $n placeholder outside quotes: sqlglot's tokenizer
    reads ``$1,$2`` as the start of a dollar-quoted string."""
    out: list[str] = []
    i, n = 0, len(sql)
    in_quote = False
    while i < n:
        c = sql[i]
        out.append(c)
        if c == "'":
            in_quote = not in_quote
        elif c == "$" and not in_quote and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            if j > i + 1:
                out.append(sql[i + 1 : j])
                if j < n and not sql[j].isspace():
                    out.append(" ")
                i = j
                continue
        i += 1
    return _end_clear("".join(out))


def _max_dollar(sql: str) -> int:
    """The largest $n placeholder outside quotes (0 when there is none)."""
    if "$" not in sql:
        return 0
    top = 0
    i, n = 0, len(sql)
    in_quote = False
    while i < n:
        c = sql[i]
        if c == "'":
            in_quote = not in_quote
        elif c == "$" and not in_quote:
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            if j > i + 1 and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                top = max(top, int(sql[i + 1 : j]))
            i = j
            continue
        i += 1
    return top


def bind(plan: Plan, params: Any) -> list[Any]:
    """Arrange the caller's parameters as the list ``[$1, $2, ...]``.

    Raises ProgrammingError when the count or the names do not match.
    """
    style, count, names = plan
    if type(params) in (list, tuple) and style != "named":  # the common case, without ABC checks
        if len(params) != count:
            raise ProgrammingError(
                f"the statement has {count} placeholder(s) but {len(params)} parameter(s) were given"
            )
        return list(params)
    if style == "named":
        if not isinstance(params, Mapping):
            raise ProgrammingError(
                f"the statement uses %(name)s placeholders; pass a dict, not {type(params).__name__}"
            )
        missing = [name for name in names if name not in params]
        if missing:
            raise ProgrammingError(f"no value for named parameter(s): {', '.join(missing)}")
        return [params[name] for name in names]
    if params is None:
        if count:
            raise ProgrammingError(f"the statement has {count} placeholder(s) but no parameters were given")
        return []
    if isinstance(params, Mapping):
        if count or params:
            raise ProgrammingError("a dict of parameters needs %(name)s placeholders")
        return []
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise ProgrammingError(f"parameters must be a list or tuple, not {type(params).__name__}")
    if len(params) != count:
        raise ProgrammingError(
            f"the statement has {count} placeholder(s) but {len(params)} parameter(s) were given"
        )
    return list(params)
