"""The SQL the PostgreSQL engine runs: loomdb's PostgreSQL, as PostgreSQL (with pgvector) takes it.

Almost PostgreSQL's own: parameters stay ``?n`` (the backend turns them into
``$n``, see ``translate_sql``), ``doc ? key`` becomes ``jsonb_exists(doc,
key)`` so that no bare ``?`` is left for the placeholder scan to misread, a
cast to TIMESTAMP is a cast to timestamptz (loomdb's TIMESTAMP columns are
UTC instants), and NULLs sort as on SQLite unless a NULLS clause says
otherwise (see :class:`loomdb.sql.dialect.LoomPostgres`).

>>> from loomdb.sql.dialect import parse
>>> parse("SELECT doc ? 'k' FROM t WHERE x = $1 ORDER BY y").sql(dialect=LoomPostgresOut)
"SELECT JSONB_EXISTS(doc, 'k') FROM t WHERE x = ?1 ORDER BY y"
"""

from __future__ import annotations

from sqlglot import exp

from ...sql.dialect import LoomPostgres, LoomPostgresGenerator


def _cast(self: LoomPostgresGenerator, e: exp.Cast) -> str:
    """A cast as PostgreSQL has it, TIMESTAMP meaning timestamptz."""
    # loomdb's TIMESTAMP columns are timestamptz (UTC), so a cast to TIMESTAMP
    # means the same instant type; other casts are PostgreSQL's own.
    if e.to.this == exp.DataType.Type.TIMESTAMP:
        e = e.copy()
        e.set("to", exp.DataType.build("TIMESTAMPTZ"))
    return self.cast_sql(e)


class LoomPostgresOutGenerator(LoomPostgresGenerator):
    """The generator of :class:`LoomPostgresOut`."""

    TRANSFORMS = {
        **LoomPostgresGenerator.TRANSFORMS,
        exp.Parameter: lambda self, e: f"?{e.this.name}",
        exp.JSONBContainsTopKey: lambda self, e: self.func("jsonb_exists", e.this, e.expression),
        exp.Cast: _cast,
        # As written: sqlglot would cast a float to numeric, where PostgreSQL has no
        # round(double precision, integer) and raises 42883.
        exp.Round: lambda self, e: self.func("ROUND", e.this, e.args.get("decimals")),
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
