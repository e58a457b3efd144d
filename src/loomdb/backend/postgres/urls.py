"""Store URLs of the PostgreSQL engine: ``postgresql://...?schema=name``.

loomdb's ``?schema=`` names the schema that holds the store; libpq never
sees it. Messages show a URL without its password.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ... import errors

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def split_url(url: str, schema: str | None) -> tuple[str, str]:
    """``(libpq URL, schema)``: loomdb's ``?schema=`` taken out of ``url``; the
    schema is ``schema``, else the URL's, else ``public``. Raises
    ProgrammingError when the two disagree or the name is not a plain identifier."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    from_url = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    if schema is None:
        schema = from_url[-1] if from_url else "public"
    elif from_url and from_url[-1] != schema:
        raise errors.ProgrammingError(
            f"schema {schema!r} contradicts ?schema={from_url[-1]} in the URL; give one of them"
        )
    if not _SCHEMA_NAME.match(schema) or schema.lower().startswith("pg_"):
        raise errors.ProgrammingError(
            f"invalid schema name {schema!r}: use letters, digits and _ (at most 63, not starting with"
            " a digit or with pg_, which PostgreSQL reserves)"
        )
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), schema


def display(conninfo: str) -> str:
    """The URL without its password and query, for messages."""
    parts = urlsplit(conninfo)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = user.split(":", 1)[0] + "@" + host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``?schema=schema`` (replacing any it had): what reopens the store."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    query.append(("schema", schema))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
