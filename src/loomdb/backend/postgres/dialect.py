"""The SQL the PostgreSQL engine runs: loomdb's PostgreSQL, as PostgreSQL (with pgvector) takes it.

Almost PostgreSQL's own: parameters stay ``?n`` (the backend turns them into
``$n``, see ``translate_sql``), ``doc ? key`` becomes ``jsonb_exists(doc,
key)`` so that no bare ``?`` is left for the placeholder scan to misread.

>>> from loomdb.sql.dialect import parse
>>> parse("SELECT doc ? 'k' FROM t WHERE x = $1 ORDER BY y").sql(dialect=LoomPostgresOut)
"SELECT JSONB_EXISTS(doc, 'k') FROM t WHERE x = ?1 ORDER BY y"
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from ...sql.dialect import WRITTEN_NAME, LoomPostgres, LoomPostgresGenerator
from ...sql.tree import is_json


def _is_parameter(node: exp.Expr) -> bool:
    return isinstance(node, (exp.Parameter, exp.Placeholder))


def _text_array(self: LoomPostgresGenerator, param: exp.Expr) -> str:
    """A text[] parameter: loomdb binds a Python list as a JSON array, which
    PostgreSQL would read as a malformed array literal; a str stays an array literal."""
    p = self.sql(param)
    return (
        f"(CASE WHEN left({p}::text, 1) = '[' THEN ARRAY(SELECT jsonb_array_elements_text({p}::text::jsonb))"
        f" ELSE {p}::text::text[] END)"
    )


def _path_operator(op: str) -> Callable[[LoomPostgresGenerator, exp.Expr], str]:
    """``doc #> path`` (``#>>``, ``#-``), a parameter path read by :func:`_text_array`."""

    def generate(self: LoomPostgresGenerator, e: exp.Expr) -> str:
        right = _text_array(self, e.expression) if _is_parameter(e.expression) else self.sql(e.expression)
        return f"{self.sql(e.this)} {op} {right}"

    return generate


def _path_function(self: LoomPostgresGenerator, e: exp.Anonymous) -> str:
    """``jsonb_set``/``jsonb_insert`` (path parameters as :func:`_text_array`); other calls as they are."""
    name = str(e.this).lower()
    args = e.expressions
    if name in ("jsonb_set", "jsonb_insert", "jsonb_set_lax") and len(args) > 1 and _is_parameter(args[1]):
        rest = [self.sql(a) for a in args]
        rest[1] = _text_array(self, args[1])
        return f"{name.upper()}({', '.join(rest)})"
    return self.anonymous_sql(e)


def _minus(self: LoomPostgresGenerator, e: exp.Sub) -> str:
    """``doc - $n`` on jsonb: a Python list parameter (a JSON array) deletes those keys (jsonb - text[])."""
    if not (_is_parameter(e.expression) and is_json(e.this)):
        return self.binary(e, "-")
    doc, p = self.sql(e.this), self.sql(e.expression)
    return (
        f"(CASE WHEN left({p}::text, 1) = '[' THEN {doc} - {_text_array(self, e.expression)}"
        f" ELSE {doc} - {p} END)"
    )


class LoomPostgresOutGenerator(LoomPostgresGenerator):
    """The generator of :class:`LoomPostgresOut`."""

    TRANSFORMS = {
        **LoomPostgresGenerator.TRANSFORMS,
        exp.Parameter: lambda self, e: f"?{e.this.name}",
        exp.JSONBContainsTopKey: lambda self, e: self.func("jsonb_exists", e.this, e.expression),
        exp.JSONBExtract: _path_operator("#>"),
        exp.JSONBExtractScalar: _path_operator("#>>"),
        exp.JSONBDeleteAtPath: _path_operator("#-"),
        exp.Anonymous: _path_function,
        exp.Sub: _minus,
        # As written: sqlglot would cast a float to numeric, where PostgreSQL has no
        # round(double precision, integer) and raises 42883.
        exp.Round: lambda self, e: self.func("ROUND", e.this, e.args.get("decimals")),
        # date_part is double precision where EXTRACT is numeric: written as it was written.
        exp.Extract: lambda self, e: (
            self.func("DATE_PART", exp.Literal.string(e.this.name.lower()), e.expression)
            if e.meta.get(WRITTEN_NAME) == "date_part"
            else self.extract_sql(e)
        ),
    }


class LoomPostgresOut(LoomPostgres):
    """PostgreSQL (with pgvector) as the loomdb PostgreSQL engine runs it."""

    Generator = LoomPostgresOutGenerator
