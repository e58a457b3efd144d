"""The SQL dialects loomdb reads and writes.

loomdb reads PostgreSQL with pgvector's operators. sqlglot's Postgres dialect
knows ``<->`` but reads ``<=>`` as MySQL's null-safe equality and fails on
``<#>``; :class:`LoomPostgres` fixes both. :class:`LoomSQLite` writes what the
SQLite backend runs: vector operators become sqlite-vec / loomdb functions,
JSONB containment and NOW() become loomdb's SQL functions.

>>> parse("SELECT id FROM t ORDER BY e <=> $1 LIMIT 5").sql(dialect=LoomSQLite)
'SELECT id FROM t ORDER BY (CASE WHEN e IS NULL OR ?1 IS NULL THEN NULL ELSE vec_distance_cosine(e, ?1) END) LIMIT 5'
"""

from __future__ import annotations

import logging
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import arrow_json_extract_sql
from sqlglot.dialects.postgres import Postgres
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ParseError, TokenError
from sqlglot.generators.postgres import PostgresGenerator
from sqlglot.parsers.postgres import PostgresParser
from sqlglot.tokens import TokenType

from ..errors import NotSupportedError, ProgrammingError

# sqlglot logs a warning when it falls back to a generic Command; loomdb reports
# those statements itself with NotSupportedError.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


class CosineDistance(exp.Expression, exp.Binary):
    """pgvector's ``a <=> b``: cosine distance."""


class NegativeInnerProduct(exp.Expression, exp.Binary):
    """pgvector's ``a <#> b``: the negative inner product."""


# Token types sqlglot does not use for PostgreSQL; they carry pgvector's operators.
_COSINE_TOKEN = TokenType.NULLSAFE_EQ
_INNER_TOKEN = TokenType.DOTCARET

VECTOR_OPERATORS = (exp.Distance, CosineDistance, NegativeInnerProduct)
VECTOR_FUNCTIONS = {"l2_distance", "cosine_distance", "inner_product", "vector_dims", "vector_norm"}


class LoomPostgresParser(PostgresParser):
    """PostgreSQL's parser plus pgvector's operators, marking explicit NULLS clauses."""

    def _parse_ordered(self, parse_method=None):  # type: ignore[no-untyped-def]
        node = super()._parse_ordered(parse_method)
        # Mark an explicit NULLS FIRST/LAST: an engine whose NULL order
        # differs from SQLite's must tell it apart from the implicit one.
        if node is not None and self._prev is not None and self._prev.text.upper() in ("FIRST", "LAST"):
            before = self._tokens[self._index - 2] if self._index >= 2 else None
            if before is not None and before.text.upper() == "NULLS":
                node.meta["explicit_nulls"] = True
        return node

    # pgvector's operators bind like PostgreSQL's "any other operator":
    # looser than + and -, tighter than comparisons.
    EQUALITY = {k: v for k, v in PostgresParser.EQUALITY.items() if k != _COSINE_TOKEN}
    FACTOR = {k: v for k, v in PostgresParser.FACTOR.items() if v is not exp.Distance}
    BITWISE = {
        **PostgresParser.BITWISE,
        TokenType.LR_ARROW: exp.Distance,
        _COSINE_TOKEN: CosineDistance,
        _INNER_TOKEN: NegativeInnerProduct,
    }


class LoomPostgresGenerator(PostgresGenerator):
    """PostgreSQL's generator, writing pgvector's operators back as operators."""

    TRANSFORMS = {
        **PostgresGenerator.TRANSFORMS,
        CosineDistance: lambda self, e: self.binary(e, "<=>"),
        NegativeInnerProduct: lambda self, e: self.binary(e, "<#>"),
    }


class LoomPostgres(Postgres):
    """PostgreSQL as loomdb reads it: Postgres plus pgvector's operators.

    An ORDER BY without NULLS FIRST/LAST sorts NULLs in the engine's own
    order (SQLite: first ascending, last descending). Spelling out
    PostgreSQL's order on every ORDER BY would stop SQLite from reading an
    index in order and turn the "latest step" lookup into a sort; an explicit
    NULLS clause is always honoured. Reading with SQLite's convention marks
    the implicit case so no clause is generated for it.
    """

    NULL_ORDERING = "nulls_are_small"

    class Tokenizer(Postgres.Tokenizer):
        KEYWORDS = {
            **Postgres.Tokenizer.KEYWORDS,
            "<=>": _COSINE_TOKEN,
            "<#>": _INNER_TOKEN,
        }

    Parser = LoomPostgresParser
    Generator = LoomPostgresGenerator


def _func(name: str):
    def generate(self: SQLite.Generator, e: exp.Expression) -> str:
        return self.func(name, e.this, e.expression)

    return generate


def _null_safe(name: str):
    """sqlite-vec raises on a NULL vector; PostgreSQL's distance of NULL is NULL."""

    def generate(self: SQLite.Generator, e: exp.Expression) -> str:
        a, b = self.sql(e.this), self.sql(e.expression)
        return f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN NULL ELSE {name}({a}, {b}) END)"

    return generate


# Casts whose SQLite spelling would lose the PostgreSQL meaning.
_CAST_FUNCTIONS = {
    exp.DataType.Type.JSON: None,  # stored as JSON text already: the cast is a no-op
    exp.DataType.Type.JSONB: None,
    exp.DataType.Type.UUID: None,
    exp.DataType.Type.VECTOR: "vec_f32",
    exp.DataType.Type.TIMESTAMP: "loom_timestamp",
    exp.DataType.Type.TIMESTAMPTZ: "loom_timestamp",
    exp.DataType.Type.DATE: "loom_date",
    exp.DataType.Type.BOOLEAN: "loom_bool",
    exp.DataType.Type.DECIMAL: "loom_numeric",
}


def _cast(self: SQLite.Generator, e: exp.Cast) -> str:
    kind = e.to.this
    if kind in _CAST_FUNCTIONS:
        name = _CAST_FUNCTIONS[kind]
        return self.sql(e.this) if name is None else self.func(name, e.this)
    return self.cast_sql(e)


_RENAMED_FUNCTIONS = {
    "L2_DISTANCE": "vec_distance_l2",
    "JSONB_ARRAY_LENGTH": "json_array_length",
    "JSONB_BUILD_OBJECT": "json_object",
    "JSON_BUILD_OBJECT": "json_object",
    "JSONB_BUILD_ARRAY": "json_array",
    "JSON_BUILD_ARRAY": "json_array",
    "JSONB_AGG": "json_group_array",
    "JSONB_OBJECT_AGG": "json_group_object",
    "JSON_OBJECT_AGG": "json_group_object",
    "INNER_PRODUCT": "loom_inner_product",
    "VECTOR_DIMS": "vec_length",
    "VECTOR_NORM": "loom_vector_norm",
}


def _anonymous(self: SQLite.Generator, e: exp.Anonymous) -> str:
    name = _RENAMED_FUNCTIONS.get(str(e.this).upper())
    if name is None:
        return self.anonymous_sql(e)
    return self.func(name, *e.expressions)


def _json_path(self: SQLite.Generator, path: exp.Expression) -> str:
    """PostgreSQL's text-array path '{a,0,b}' as a SQLite JSON path '$.a[0].b'."""
    if not isinstance(path, exp.Literal) or not path.is_string:
        raise NotSupportedError("#> and #>> need a constant path such as '{a,b}'")
    out = "$"
    for part in path.this.strip("{}").split(","):
        part = part.strip().strip('"')
        out += f"[{part}]" if part.lstrip("-").isdigit() else '."' + part.replace('"', '\\"') + '"'
    return self.sql(exp.Literal.string(out))


def _json_text(self: SQLite.Generator, e: exp.Expression) -> str:
    """``->>`` returns text in PostgreSQL: numbers as their digits, booleans as true/false."""
    inner = arrow_json_extract_sql(self, e)
    doc = self.sql(e.this)
    path = self.sql(e.expression)
    if not isinstance(e.expression, exp.JSONPath):
        # A key or index given at run time (a parameter): ->> takes it as is,
        # json_type needs it as a path.
        path = f"(CASE WHEN typeof({path}) = 'integer' THEN '$[' || {path} || ']' ELSE '$.\"' || {path} || '\"' END)"
    return (
        f"(CASE json_type({doc}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        f" ELSE CAST({inner} AS TEXT) END)"
    )


def _has_key(self: SQLite.Generator, e: exp.Expression) -> str:
    key = e.expression
    if isinstance(key, exp.Literal):
        path = exp.Literal.string('$."' + key.this.replace('"', '\\"') + '"')
        return f"(json_type({self.sql(e.this)}, {self.sql(path)}) IS NOT NULL)"
    return f"(json_type({self.sql(e.this)}, '$.\"' || {self.sql(key)} || '\"') IS NOT NULL)"


class LoomSQLite(SQLite):
    """SQLite as the loomdb backend runs it (functions registered by the backend)."""

    class Generator(SQLite.Generator):
        TRANSFORMS = {
            **SQLite.Generator.TRANSFORMS,
            exp.Distance: _null_safe("vec_distance_l2"),
            CosineDistance: _null_safe("vec_distance_cosine"),
            NegativeInnerProduct: _func("loom_negative_inner_product"),
            exp.ArrayContainsAll: _func("loom_jsonb_contains"),
            exp.ArrayContainedBy: _func("loom_jsonb_contained"),
            exp.CurrentTimestamp: lambda self, e: "loom_now()",
            exp.ILike: lambda self, e: f"LOWER({self.sql(e.this)}) LIKE LOWER({self.sql(e.expression)})",
            exp.Cast: _cast,
            exp.Uuid: lambda self, e: "gen_random_uuid()",
            exp.CosineDistance: _null_safe("vec_distance_cosine"),
            exp.JSONBExtract: lambda self, e: f"({self.sql(e.this)} -> {_json_path(self, e.expression)})",
            exp.JSONBExtractScalar: lambda self, e: (
                f"CAST(({self.sql(e.this)} ->> {_json_path(self, e.expression)}) AS TEXT)"
            ),
            exp.JSONExtractScalar: _json_text,
            exp.JSONBContainsTopKey: _has_key,
            exp.Anonymous: _anonymous,
            exp.Parameter: lambda self, e: f"?{e.this.name}",
        }


@lru_cache(maxsize=4096)
def _parse_cached(sql: str) -> tuple[exp.Expression, ...]:
    try:
        statements = sqlglot.parse(sql, dialect=LoomPostgres)
    except ParseError as err:
        detail = err.errors[0] if err.errors else {}
        where = ""
        if detail.get("line") is not None:
            where = f" at line {detail['line']}, column {detail['col']}"
        near = detail.get("highlight") or ""
        desc = detail.get("description") or str(err)
        raise ProgrammingError(
            f"syntax error{where}" + (f" near {near!r}" if near else "") + f": {desc}"
        ) from None
    except TokenError as err:
        raise ProgrammingError(f"syntax error: {err}") from None
    return tuple(s for s in statements if s is not None)


def parse(sql: str) -> exp.Expression:
    """Parse one PostgreSQL statement (cached by text; callers must not mutate the result).

    Raises ProgrammingError with the position for malformed SQL, and for text
    holding no statement or more than one.
    """
    statements = _parse_cached(sql)
    if not statements:
        raise ProgrammingError("empty statement: the SQL text holds no statement")
    if len(statements) > 1:
        raise ProgrammingError(f"the SQL text holds {len(statements)} statements; execute them one at a time")
    return statements[0]
