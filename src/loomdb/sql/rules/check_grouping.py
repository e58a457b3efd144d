"""Refuse, as PostgreSQL does (42803), a grouped or aggregated query that
reads a column outside an aggregate which is neither grouped nor
functionally dependent on its table's grouped primary key.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, body TEXT")
>>> check = lambda sql: check_grouping(qualify_query(tree_of(sql), ctx), ctx).sql()
>>> check("SELECT lower(body), count(*) FROM t GROUP BY lower(body)")
'SELECT LOWER(t.body) AS _col_0, COUNT(*) AS _col_1 FROM t AS t GROUP BY LOWER(t.body)'
>>> check("SELECT body, count(*) FROM t")
Traceback (most recent call last):
...
loomdb.errors.ProgrammingError: column "t.body" must appear in the GROUP BY clause or be used in an aggregate function
"""

from __future__ import annotations

from sqlglot import exp

from ...errors import ProgrammingError
from ..dialect import LoomPostgres
from ..tree import table_key
from .context import Context


def check_grouping(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` unchanged, or raise ProgrammingError (42803) for the
    first ungrouped column of a grouped or aggregated SELECT in it."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for select in tree.find_all(exp.Select):
        group = select.args.get("group")
        if group is not None and any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets")):
            continue  # grouping sets: not checked here (PostgreSQL still checks them)
        clauses = [*select.expressions, select.args.get("having"), select.args.get("order")]
        if group is None and not any(_has_aggregate(c) for c in clauses if c is not None):
            continue
        keys = list(group.expressions) if group is not None else []
        grouped = {_key(e) for e in keys}
        dependent: dict[str, exp.Column] = {}
        # Plain grouped columns also by (table, name), for the primary-key test;
        # a JOIN ... USING column (COALESCE(a.x, b.x) once qualified) groups each side's.
        columns = [c for e in keys for c in ([e] if isinstance(e, exp.Column) else _using_columns(e))]
        grouped |= {f"column:{c.table}.{c.name}" for c in columns} | {_key(c) for c in columns}
        sources = _sources(select, ctes, ctx)
        for clause in clauses:
            if clause is not None:
                _check(clause, grouped, sources, dependent)
        # Group by the columns found dependent on a grouped primary key too: the
        # groups stay the same, and PostgreSQL, which reads each table through a
        # view, cannot see the key itself.
        for column in dependent.values():
            if group is not None:
                group.append("expressions", column.copy())
    return tree


def _key(node: exp.Expr) -> str:
    return node.sql(dialect=LoomPostgres)


def _using_columns(node: exp.Expr) -> list[exp.Column]:
    """The columns a JOIN ... USING column merges (sqlglot's COALESCE of them)."""
    if isinstance(node, exp.Coalesce):
        args = [node.this, *node.expressions]
        if all(isinstance(a, exp.Column) for a in args):
            return [a for a in args if isinstance(a, exp.Column)]
    return []


def _own_children(node: exp.Expr) -> list[exp.Expr]:
    """The child expressions of ``node`` that belong to its own query level."""
    return [c for c in node.iter_expressions() if not isinstance(c, (exp.Query, exp.Subquery))]


#: PostgreSQL's aggregates that sqlglot parses as plain (anonymous) calls.
_ANONYMOUS_AGGREGATES = frozenset(
    [
        "jsonb_agg",
        "json_agg",
        "jsonb_object_agg",
        "json_object_agg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "bit_and",
        "bit_or",
        "bit_xor",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "variance",
        "var_pop",
        "var_samp",
        "corr",
        "covar_pop",
        "covar_samp",
        "regr_avgx",
        "regr_avgy",
        "regr_count",
        "regr_intercept",
        "regr_r2",
        "regr_slope",
        "regr_sxx",
        "regr_sxy",
        "regr_syy",
        "percentile_cont",
        "percentile_disc",
        "mode",
        "any_value",
        "range_agg",
        "range_intersect_agg",
        "xmlagg",
    ]
)


def _is_aggregate_call(node: exp.Expr) -> bool:
    """Whether ``node`` calls an aggregate function (known to sqlglot or by name)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower() in _ANONYMOUS_AGGREGATES
    return isinstance(node, exp.AggFunc)


def _is_grouping_aggregate(node: exp.Expr) -> bool:
    """An aggregate call that groups rows (not a window function's call), with
    its FILTER or WITHIN GROUP clause."""
    if isinstance(node, (exp.Filter, exp.WithinGroup)):
        return _is_aggregate_call(node.this) and not isinstance(node.parent, exp.Window)
    return _is_aggregate_call(node) and not isinstance(node.parent, (exp.Window, exp.Filter, exp.WithinGroup))


def _has_aggregate(node: exp.Expr) -> bool:
    """Whether ``node`` calls an aggregate at its own query level."""
    if _is_grouping_aggregate(node):
        return True
    return any(_has_aggregate(c) for c in _own_children(node))


def _sources(select: exp.Select, ctes: set[str], ctx: Context) -> dict[str, tuple[str, ...]]:
    """Each table alias of ``select``'s FROM and JOINs, with the primary key
    of its stored table (empty for a CTE, a subquery, a table function)."""
    out: dict[str, tuple[str, ...]] = {}
    from_ = select.args.get("from_")
    items = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
    for item in items:
        key: tuple[str, ...] = ()
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            name = table_key(item)
            schema = ctx.schemas.get(name)
            if schema is not None and (name not in ctes or item.args.get("db")):
                key = schema.primary_key
        out[item.alias_or_name] = key
    return out


def _check(
    node: exp.Expr,
    grouped: set[str],
    sources: dict[str, tuple[str, ...]],
    dependent: dict[str, exp.Column],
) -> None:
    """Raise for an ungrouped column of this query level in ``node``; record in
    ``dependent`` those functionally dependent on a grouped primary key."""
    if _is_grouping_aggregate(node) or _key(node) in grouped:
        return
    if isinstance(node, (exp.Query, exp.Subquery)):
        _check_outer_references(node, grouped, sources)
        return
    if isinstance(node, exp.Column):
        alias = node.table
        if not alias or alias not in sources:
            return  # an output name, or an outer query's column
        pkey = sources[alias]
        if pkey and all(f"column:{alias}.{c}" in grouped for c in pkey):
            dependent[_key(node)] = node  # functionally dependent on the grouped primary key
            return
        raise ProgrammingError(
            f'column "{alias}.{node.name}" must appear in the GROUP BY clause or be used in an aggregate function',
            sqlstate="42803",
        )
    for child in node.iter_expressions():
        _check(child, grouped, sources, dependent)


def _check_outer_references(query: exp.Expr, grouped: set[str], sources: dict[str, tuple[str, ...]]) -> None:
    """Raise for a column of the grouped query read, ungrouped, by a subquery
    (one outside the subquery's aggregates and not one of its own tables)."""
    for column in query.find_all(exp.Column):
        alias = column.table
        if not alias or alias not in sources or f"column:{alias}.{column.name}" in grouped:
            continue
        if any(alias in _aliases(s) for s in _enclosing_selects(column, query)):
            continue  # the subquery's own table of that name
        around = _ancestors(column, query)
        if any(_is_aggregate_call(a) for a in around):
            continue  # an aggregate over the outer query's rows is the outer query's
        if _key(column) in grouped or any(_key(a) in grouped for a in around):
            continue
        raise ProgrammingError(
            f'subquery uses ungrouped column "{alias}.{column.name}" from outer query', sqlstate="42803"
        )


def _aliases(select: exp.Select) -> set[str]:
    """The table aliases ``select``'s FROM and JOINs define."""
    from_ = select.args.get("from_")
    items = ([from_.this] if from_ is not None else []) + [j.this for j in select.args.get("joins") or []]
    return {item.alias_or_name for item in items}


def _enclosing_selects(node: exp.Expr, top: exp.Expr) -> list[exp.Select]:
    """The SELECTs between ``node`` and ``top`` (inclusive)."""
    out = []
    current: exp.Expr | None = node
    while current is not None:
        if isinstance(current, exp.Select):
            out.append(current)
        if current is top:
            break
        current = current.parent
    return out


def _ancestors(node: exp.Expr, top: exp.Expr) -> list[exp.Expr]:
    """The expressions between ``node`` and ``top`` (exclusive)."""
    out = []
    current = node.parent
    while current is not None and current is not top:
        out.append(current)
        current = current.parent
    return out
