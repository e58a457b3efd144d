"""PostgreSQL's *unknown* literals on SQLite: a string literal takes the type of what it
meets (an operand, the other branches of a CASE or COALESCE, a boolean condition), read
by that type's input function: ``'2' + 1`` is 3, ``ok = 'yes'`` is ``ok = true``,
``coalesce(step, '7')`` is an integer, and a literal that is no such value raises 22P02
as PostgreSQL does. SQLite would compare or add the text as it is.

Shared with :mod:`.type_checks`, which also reports the operators PostgreSQL lacks.

>>> typed_literal(exp.Literal.string(" 12 "), exp.DataType.Type.INT).sql()
'12'
>>> typed_literal(exp.Literal.string("of"), exp.DataType.Type.BOOLEAN)
Traceback (most recent call last):
...
loomdb.errors.DataError: invalid input syntax for type boolean: "of"
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from ... import errors
from ...pg_input import parse_uuid

T = exp.DataType.Type
#: PostgreSQL's integer types, by their names in messages.
INTEGERS = {T.SMALLINT: "smallint", T.INT: "integer", T.BIGINT: "bigint", T.TINYINT: "smallint"}
#: The number types, by their names in messages.
NUMBERS = {**INTEGERS, T.DECIMAL: "numeric", T.FLOAT: "real", T.DOUBLE: "double precision"}
#: The character types.
STRINGS = {T.TEXT, T.VARCHAR, T.CHAR, T.NCHAR, T.NVARCHAR, T.BPCHAR}
_BPCHARS = {T.CHAR, T.NCHAR, T.BPCHAR}
#: The types sqlglot reads bytea as.
BYTEA = {T.VARBINARY, T.BINARY, T.BLOB}
#: PostgreSQL's integer input: a sign, digits and single underscores between them.
_INTEGER_INPUT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*")
_FLOAT_WORDS = {"nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"}


def kind_of(node: exp.Expr) -> Any:
    """The annotated type of ``node`` (None when unknown); a number literal's as
    PostgreSQL types it (integer, bigint, else numeric)."""
    dtype = node.type if isinstance(node, exp.Expression) else None
    if dtype is None or dtype.this in (T.UNKNOWN, T.NULL):
        return None
    if isinstance(node, exp.Literal) and node.is_number:
        text = str(node.this)
        if text.isdigit():
            value = int(text)
            return T.INT if value < 2**31 else T.BIGINT if value < 2**63 else T.DECIMAL
        return T.DECIMAL
    return dtype.this


def certain_kind(node: exp.Expr) -> Any:
    """``node``'s type when the annotation is certain (a column, a cast, a boolean or
    number literal, under parentheses and signs), else None: sqlglot types some calls
    and ANY/ALL loosely."""
    while isinstance(node, (exp.Paren, exp.Neg)):
        node = node.this
    if not isinstance(node, (exp.Column, exp.Cast, exp.Boolean, exp.Literal)) or is_unknown_literal(node):
        return None
    return kind_of(node)


def is_unknown_literal(node: exp.Expr) -> bool:
    """Whether ``node`` is a string literal: PostgreSQL's literal of unknown type."""
    return isinstance(node, exp.Literal) and node.is_string


def invalid_input(type_name: str, text: str) -> errors.Error:
    """PostgreSQL's 22P02 for a literal that is no value of the type."""
    return errors.DataError(f'invalid input syntax for type {type_name}: "{text}"', sqlstate="22P02")


def parse_bool(low: str) -> bool | None:
    """PostgreSQL's boolean input (``parse_bool``): a prefix of true/false/yes/no,
    on, off, 1 or 0; None for anything else."""
    if low in ("1", "on") or (low and any(w.startswith(low) for w in ("true", "yes"))):
        return True
    if low in ("0", "off") or (low and any(w.startswith(low) for w in ("false", "no"))):
        return False
    return None


def _typed(node: exp.Expr, kind: Any) -> exp.Expr:
    """``node`` annotated as ``kind``: it replaces a literal after type annotation, and
    the generator reads types (a numeric literal is written as exact numeric text)."""
    node.type = exp.DataType.build(kind)
    return node


def typed_literal(literal: exp.Literal, kind: Any) -> exp.Expr:
    """The unknown ``literal`` read as a value of ``kind`` (a number or boolean type,
    uuid, char(n), jsonb), or DataError 22P02 as PostgreSQL's input function raises;
    any other type leaves it as it is."""
    text = str(literal.this)
    stripped = text.strip()
    if kind == T.BOOLEAN:
        value = parse_bool(stripped.lower())
        if value is None:
            raise invalid_input("boolean", text)
        return exp.Boolean(this=value)
    if kind in INTEGERS:
        if not _INTEGER_INPUT.fullmatch(stripped):
            raise invalid_input(INTEGERS[kind], text)
        number = int(stripped.replace("_", ""))
        bits = {T.SMALLINT: 16, T.TINYINT: 16, T.INT: 32}.get(kind, 64)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise errors.DataError(
                f'value "{text}" is out of range for type {INTEGERS[kind]}', sqlstate="22003"
            )
        return _typed(exp.Literal.number(number), kind)
    if kind == T.DECIMAL:
        try:
            decimal = Decimal(stripped.replace("_", "")) if "__" not in stripped else None
        except InvalidOperation:
            decimal = None
        if decimal is None:
            raise invalid_input("numeric", text)
        return _typed(exp.Literal.number(str(decimal)), kind) if decimal.is_finite() else literal
    if kind in (T.FLOAT, T.DOUBLE):
        try:
            ok = stripped.lower() in _FLOAT_WORDS or math.isfinite(float(stripped)) and "_" not in stripped
        except ValueError:
            ok = False
        if not ok:
            raise invalid_input(NUMBERS[kind], text)
        if stripped.lower() == "nan":
            return literal  # SQLite has no NaN value (it would be NULL): left as text
        return exp.Cast(this=literal, to=exp.DataType.build(kind))  # the engine's float input
    if kind == T.UUID:
        return exp.Literal.string(parse_uuid(text))  # uuids compare in canonical form
    if kind in _BPCHARS:
        return exp.Literal.string(text.rstrip(" "))  # bpchar ignores trailing spaces
    if kind in BYTEA:
        return exp.Cast(this=literal, to=exp.DataType.build("bytea", dialect="postgres"))  # bytea input, once
    if kind in (T.JSON, T.JSONB):
        try:
            json.loads(text)
        except ValueError:
            raise invalid_input("json", text) from None
    return literal


def coerce(literal: exp.Expr, other: exp.Expr) -> exp.Expr:
    """``literal`` read as the type of ``other`` when it is an unknown literal and
    ``other`` is not; else as it is."""
    if not is_unknown_literal(literal) or is_unknown_literal(other):
        return literal
    kind = kind_of(other)
    assert isinstance(literal, exp.Literal)
    return literal if kind is None else typed_literal(literal, kind)


def coerce_branches(node: exp.Expr) -> None:
    """The unknown literals among the values of CASE, COALESCE, NULLIF, GREATEST and
    LEAST read as the type of the first typed value (PostgreSQL's common type), and
    those of ``CASE x WHEN v`` as the type of ``x``; 42804
    when typed values of different kinds meet, as PostgreSQL raises."""
    operand = node.this if isinstance(node, exp.Case) else None
    if operand is not None:  # CASE x WHEN v ...: each v is compared with x
        for when in node.args.get("ifs") or []:
            when.set("this", coerce(when.this, operand))
    values = _branch_values(node)
    typed = [v for v in values if certain_kind(v) is not None]
    if not typed:
        return
    first = typed[0]
    for value in typed[1:]:
        if _category(value) != _category(first):
            name = "CASE" if isinstance(node, exp.Case) else node.key.upper()
            raise errors.ProgrammingError(
                f"{name} types {_type_name(first)} and {_type_name(value)} cannot be matched",
                sqlstate="42804",
            )
    for value in values:
        if is_unknown_literal(value):
            value.replace(coerce(value, first))


def _branch_values(node: exp.Expr) -> list[exp.Expr]:
    """The values a conditional expression chooses among."""
    if isinstance(node, exp.Case):
        values = [when.args["true"] for when in node.args.get("ifs") or []]
        default = node.args.get("default")
        return values + ([default] if default is not None else [])
    if isinstance(node, exp.Nullif):
        return [node.this, node.expression]
    return [node.this, *node.expressions]


def _category(node: exp.Expr) -> str:
    """The kind of value ``node`` is, for matching the values of a CASE or COALESCE."""
    kind = certain_kind(node)
    if kind in NUMBERS:
        return "number"
    if kind in STRINGS:
        return "string"
    if kind in (T.DATE, T.TIMESTAMP, T.TIMESTAMPTZ, T.DATETIME):
        return "datetime"  # PostgreSQL's category: a date meets a timestamp as one
    return str(kind)


def _type_name(node: exp.Expr) -> str:
    """PostgreSQL's name of ``node``'s type in a 42804 message."""
    kind = certain_kind(node)
    if kind in NUMBERS:
        return NUMBERS[kind]
    return {T.TEXT: "text", T.VARCHAR: "character varying", T.BOOLEAN: "boolean"}.get(kind, str(kind).lower())


def as_condition(node: exp.Expr) -> exp.Expr:
    """An unknown literal used as a condition (AND, OR, NOT, WHERE) read as a boolean."""
    if is_unknown_literal(node):
        assert isinstance(node, exp.Literal)
        return typed_literal(node, T.BOOLEAN)
    return node
