"""Give PostgreSQL's JSON set-returning functions in FROM (``jsonb_each``,
``jsonb_array_elements``, ``jsonb_object_keys``...) their column names, as
PostgreSQL does, so that ``qualify`` expands a star over them and every
engine reads their columns by name: ``key``/``value``, ``value``, or the
alias (or the function's name) for ``jsonb_object_keys``. Column aliases the
query gives are kept. After ``qualify``, :func:`table_function_columns` tells
each such column's function and type (``type_outputs`` records them).

>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT")
>>> name_table_functions(tree_of("SELECT * FROM jsonb_each('{}')"), ctx).sql()
"SELECT * FROM JSONB_EACH('{}') AS jsonb_each(key, value)"
>>> name_table_functions(tree_of("SELECT * FROM jsonb_object_keys('{}') AS k"), ctx).sql()
"SELECT * FROM JSONB_OBJECT_KEYS('{}') AS k(k)"
"""

from __future__ import annotations

from sqlglot import exp

from .context import Context

#: On a column of such a function (after ``type_outputs``): (function, column index).
TABLE_FUNCTION = "loom_table_function"

#: Each function's columns: (name, or None for the alias; loomdb type).
TABLE_FUNCTIONS: dict[str, tuple[tuple[str | None, str], ...]] = {
    "jsonb_each": (("key", "TEXT"), ("value", "JSONB")),
    "json_each": (("key", "TEXT"), ("value", "JSON")),
    "jsonb_each_text": (("key", "TEXT"), ("value", "TEXT")),
    "json_each_text": (("key", "TEXT"), ("value", "TEXT")),
    "jsonb_array_elements": (("value", "JSONB"),),
    "json_array_elements": (("value", "JSON"),),
    "jsonb_array_elements_text": (("value", "TEXT"),),
    "json_array_elements_text": (("value", "TEXT"),),
    "jsonb_object_keys": ((None, "TEXT"),),
    "json_object_keys": ((None, "TEXT"),),
}


def _function(table: exp.Table) -> str | None:
    """The name of the JSON set-returning function ``table`` calls, else None."""
    func = table.this
    if isinstance(func, exp.Anonymous) and str(func.this).lower() in TABLE_FUNCTIONS:
        return str(func.this).lower()
    return None


def _spec(name: str, table: exp.Table) -> tuple[tuple[str | None, str], ...]:
    """The columns of ``table``'s function call, with WITH ORDINALITY's bigint last."""
    spec = TABLE_FUNCTIONS[name]
    return (*spec, ("ordinality", "BIGINT")) if table.args.get("ordinality") else spec


def name_table_functions(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with every JSON set-returning function in FROM aliased
    with its column names (the query's own column aliases kept)."""
    for table in tree.find_all(exp.Table):
        name = _function(table)
        if name is None:
            continue
        alias = table.args.get("alias")
        alias_name = alias.name if alias is not None and alias.name else name
        written = list(alias.columns) if alias is not None else []
        spec = _spec(name, table)
        names = [c.name for c in written] + [n or alias_name for n, _ in spec[len(written) :]]
        table.set(
            "alias",
            exp.TableAlias(this=exp.to_identifier(alias_name), columns=[exp.to_identifier(n) for n in names]),
        )
    return tree


def table_function_columns(tree: exp.Expression) -> dict[tuple[str, str], tuple[str, int, str]]:
    """In a qualified tree: (alias, column) -> (function, column index, loomdb type)
    for the columns of the JSON set-returning functions in FROM."""
    out = {}
    for table in tree.find_all(exp.Table):
        name = _function(table)
        alias = table.args.get("alias")
        if name is None or alias is None:
            continue
        spec = _spec(name, table)
        for i, column in enumerate(alias.columns[: len(spec)]):
            out[(alias.name, column.name)] = (name, i, spec[i][1])
    return out


def type_table_function_columns(tree: exp.Expression) -> None:
    """Type every column of a JSON set-returning function in FROM (sqlglot
    leaves them unknown) and mark it with :data:`TABLE_FUNCTION`."""
    columns = table_function_columns(tree)
    if not columns:
        return
    for column in tree.find_all(exp.Column):
        found = columns.get((column.table, column.name))
        if found is not None:
            column.type = exp.DataType.build(found[2], dialect="postgres")
            column.meta[TABLE_FUNCTION] = found[:2]
