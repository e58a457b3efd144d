"""Give the columns of a set operation's branches one numeric type where
PostgreSQL resolves them to double precision (integer or numeric meeting
double precision), by casting the other branches' columns: both engines then
compare, merge and return the same values, of the type PostgreSQL returns.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, score DOUBLE PRECISION")
>>> tree = resolve_set_types(qualify_query(tree_of("SELECT id FROM t UNION SELECT score FROM t"), ctx), ctx)
>>> tree.sql(), tree.selects[0].type.sql()
('SELECT CAST(t.id AS DOUBLE) AS id FROM t AS t UNION SELECT t.score AS score FROM t AS t', 'DOUBLE')
"""

from __future__ import annotations

from sqlglot import exp

from .context import Context

_T = exp.DataType.Type

#: The type families within which values compare and merge alike once the
#: branches share a type (what PostgreSQL's set operations resolve).
FAMILIES = {
    **dict.fromkeys((_T.TINYINT, _T.SMALLINT, _T.INT, _T.BIGINT), "integer"),
    **dict.fromkeys((_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR), "text"),
    **dict.fromkeys((_T.FLOAT, _T.DOUBLE), "double precision"),
    _T.DECIMAL: "numeric",
    _T.BOOLEAN: "boolean",
    _T.TIMESTAMPTZ: "timestamp with time zone",
    _T.TIMESTAMP: "timestamp",
    _T.DATE: "date",
    **dict.fromkeys((_T.JSON, _T.JSONB), "jsonb"),
    _T.VECTOR: "vector",
    _T.UUID: "uuid",
}

#: PostgreSQL's type categories: a set operation over two categories raises 42804.
CATEGORIES = {
    "integer": "numeric",
    "numeric": "numeric",
    "double precision": "numeric",
    "timestamp": "datetime",
    "timestamp with time zone": "datetime",
    "date": "datetime",
}


def family(node: exp.Expr) -> str | None:
    """The type family of an expression; None for NULL or an unknown type. A
    number literal with a fraction or exponent is numeric, as in PostgreSQL."""
    literal = node.this if isinstance(node, exp.Neg) else node
    if isinstance(literal, exp.Literal) and literal.is_number:
        return "integer" if str(literal.this).isdigit() else "numeric"
    dtype = node.type if isinstance(node, exp.Expression) else None
    if dtype is None or dtype.this in (_T.NULL, _T.UNKNOWN):
        return None
    return FAMILIES.get(dtype.this, dtype.sql())


def leaf_selects(query: exp.Expr) -> list[exp.Select]:
    """The SELECTs whose rows a chain of set operations combines."""
    while isinstance(query, exp.Subquery):
        query = query.this
    if isinstance(query, exp.SetOperation):
        return leaf_selects(query.this) + leaf_selects(query.expression)
    return [query] if isinstance(query, exp.Select) else []


def resolve_set_types(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with each set operation's integer and numeric columns
    cast to double precision where another branch's column is one."""
    for setop in tree.find_all(exp.SetOperation):
        if isinstance(setop.parent, exp.SetOperation):
            continue  # its chain is resolved from the top
        leaves = leaf_selects(setop)
        widths = {len(s.expressions) for s in leaves}
        if len(leaves) < 2 or len(widths) != 1:
            continue
        for i in range(widths.pop()):
            items = [s.expressions[i] for s in leaves]
            families = {family(_unalias(item)) for item in items} - {None}
            if "double precision" not in families or not families <= {
                "integer",
                "numeric",
                "double precision",
            }:
                continue
            for item in items:
                if family(_unalias(item)) in ("integer", "numeric"):
                    _cast_double(item)
    return tree


def _unalias(node: exp.Expr) -> exp.Expr:
    return node.this if isinstance(node, exp.Alias) else node


def _cast_double(item: exp.Expression) -> None:
    """Cast the result column ``item`` (aliased or not) to double precision, typed."""
    double = exp.DataType.build("DOUBLE")
    value = _unalias(item)
    cast = exp.Cast(this=value.copy(), to=double.copy())
    cast.type = double.copy()
    value.replace(cast)
    if isinstance(item, exp.Alias):
        item.type = double.copy()
