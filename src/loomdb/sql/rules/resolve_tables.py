"""Check that every stored table a query names exists on the branch, and drop
the schema a name may carry (a store has one schema, ``public`` or ``main``).

>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT")
>>> resolve_tables(tree_of("WITH r AS (SELECT 1) SELECT public.t.id FROM public.t, r"), ctx).sql()
'WITH r AS (SELECT 1) SELECT t.id FROM t, r'
>>> resolve_tables(tree_of("SELECT id FROM u"), ctx)
Traceback (most recent call last):
...
loomdb.errors.ProgrammingError: relation "u" does not exist
>>> resolve_tables(tree_of("SELECT id FROM other.t"), ctx)
Traceback (most recent call last):
...
loomdb.errors.NotSupportedError: schema-qualified table 'other.t': loomdb has one schema per store
"""

from __future__ import annotations

from sqlglot import exp

from ...errors import NotSupportedError, ProgrammingError
from ..tree import table_key, user_tables
from .context import Context


def resolve_tables(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``public.`` / ``main.`` dropped from table names;
    raise NotSupportedError for another schema and ProgrammingError for a
    table the branch does not have.
    """
    for table in user_tables(tree):
        db = table.args.get("db")
        if db is not None and db.name.lower() not in ("public", "main"):
            raise NotSupportedError(
                f"schema-qualified table {table.sql()!r}: loomdb has one schema per store"
            )
        if db is not None:
            table.set("db", None)
            table.set("catalog", None)
        if table_key(table) not in ctx.schemas:
            raise ProgrammingError(f'relation "{table_key(table)}" does not exist', sqlstate="42P01")
    for column in tree.find_all(exp.Column):  # public.t.col: the column of t
        db = column.args.get("db")
        if db is not None and db.name.lower() in ("public", "main"):
            column.set("db", None)
            column.set("catalog", None)
    return tree
