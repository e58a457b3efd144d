"""Translating between loomdb and PostgreSQL: placeholders on the way in, errors on the way out."""

from __future__ import annotations

import re

import psycopg
from psycopg import errors as pgerrors

from ... import errors

# One scan over SQL text: quoted strings, quoted identifiers and comments are
# copied; ?n / $n / bare ? become native $k placeholders, numbered in order.
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\?(\d*)|\$(\d+)""")


def translate_sql(sql: str) -> tuple[str, tuple[int, ...]]:
    """``sql`` with loomdb's placeholders as PostgreSQL's ``$1, $2, ...`` in
    order of appearance, and the 0-based parameter index each one takes."""
    order: list[int] = []
    sequential = 0

    def replace(match: re.Match[str]) -> str:
        """A placeholder as ``$k`` (recording its parameter); other tokens as they are."""
        nonlocal sequential
        text = match.group(0)
        if text[0] == "?":
            if match.group(1):
                order.append(int(match.group(1)) - 1)
            else:
                order.append(sequential)
                sequential += 1
        elif text[0] == "$":
            order.append(int(match.group(2)) - 1)
        else:
            return text
        return f"${len(order)}"

    return _TOKEN.sub(replace, sql), tuple(order)


def translate(exc: Exception) -> errors.Error:
    """The loomdb error for a psycopg exception, with the first line of
    PostgreSQL's message and its SQLSTATE; the class follows the SQLSTATE as
    psycopg's does (:func:`loomdb.errors.class_for_sqlstate`). A loomdb error
    is returned as it is."""
    if isinstance(exc, errors.Error):
        return exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None
    if isinstance(exc, (pgerrors.LockNotAvailable, pgerrors.QueryCanceled, pgerrors.DeadlockDetected)):
        return errors.OperationalError(
            f"the store stayed locked by another writer: {message}", sqlstate=sqlstate
        )
    if sqlstate:
        cls = errors.class_for_sqlstate(sqlstate)
        if sqlstate.startswith(("08", "57P")):  # connection_exception, the server shutting down
            message = f"PostgreSQL connection failed: {message}"
        return cls(message, sqlstate=sqlstate)
    # No SQLSTATE: psycopg's own errors (a lost connection, a closed one, ...).
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return errors.OperationalError(f"PostgreSQL connection failed: {message}")
    if isinstance(exc, psycopg.Error):
        return errors.DatabaseError(message)
    return errors.InternalError(message)
