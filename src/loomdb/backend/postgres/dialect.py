"""The SQL the PostgreSQL engine runs: loomdb's PostgreSQL, as PostgreSQL (with pgvector) takes it.

Almost PostgreSQL's own: parameters stay ``?n`` (the backend turns them into
``$n``, see ``translate_sql``), ``doc ? key`` becomes ``jsonb_exists(doc,
key)`` so that no bare ``?`` is left for the placeholder scan to misread, and NULLs sort as on SQLite unless a NULLS clause says
otherwise (see :class:`loomdb.sql.dialect.LoomPostgres`).

>>> from loomdb.sql.dialect import parse
>>> parse("SELECT doc ? 'k' FROM t WHERE x = $1 ORDER BY y").sql(dialect=LoomPostgresOut)
"SELECT JSONB_EXISTS(doc, 'k') FROM t WHERE x = ?1 ORDER BY y"
"""

from __future__ import annotations

from sqlglot import exp

from ...sql.dialect import LoomPostgres, LoomPostgresGenerator


class LoomPostgresOutGenerator(LoomPostgresGenerator):
    """The generator of :class:`LoomPostgresOut`."""

    TRANSFORMS = {
        **LoomPostgresGenerator.TRANSFORMS,
        exp.Parameter: lambda self, e: f"?{e.this.name}",
        exp.JSONBContainsTopKey: lambda self, e: self.func("jsonb_exists", e.this, e.expression),
    }

    def ordered_sql(self, expression: exp.Ordered) -> str:
        """ORDER BY items with SQLite's NULL order unless a NULLS clause was written."""
        # Implicit NULL order is the engine's own (as on SQLite, see
        # LoomPostgres); an explicit NULLS clause is always spelled out.
        plain = expression.copy()
        plain.set("nulls_first", not expression.args.get("desc"))
        text = super().ordered_sql(plain)
        if expression.meta.get("explicit_nulls"):
            text += " NULLS FIRST" if expression.args.get("nulls_first") else " NULLS LAST"
        return text


class LoomPostgresOut(LoomPostgres):
    """PostgreSQL (with pgvector) as the loomdb PostgreSQL engine runs it."""

    Generator = LoomPostgresOutGenerator
