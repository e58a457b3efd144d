"""Record how each ``$n`` binds, from the typed expression it meets, in the
root's ``meta[PARAM_TYPES]``: a list meeting a VECTOR binds as a vector,
meeting JSONB containment as JSON, compared with a column as that column's
type. The context's ``extra_param_types`` override what is found.

>>> from loomdb.sql.rules.context import PARAM_TYPES, Context, tree_of
>>> from loomdb.sql.rules.qualify_query import qualify_query
>>> ctx = Context.example(t="id INT, j JSONB, e VECTOR(3)")
>>> tree = qualify_query(tree_of("SELECT id FROM t WHERE id = $1 AND j @> $2 ORDER BY e <-> $3"), ctx)
>>> {n: t.sql for n, t in type_parameters(tree, ctx).meta[PARAM_TYPES].items()}
{1: 'INT', 2: 'JSONB', 3: 'VECTOR(3)'}
"""

from __future__ import annotations

from sqlglot import exp

from ...types import JSON_ANY, VECTOR_ANY, ColumnType
from ..dialect import VECTOR_OPERATORS
from ..tree import column_type_of
from .context import PARAM_TYPES, Context

# The functions of pgvector whose parameters are vectors.
_VECTOR_FUNCTIONS = (
    "l2_distance",
    "inner_product",
    "cosine_distance",
    "l1_distance",
    "vector_dims",
    "vector_norm",
    "l2_normalize",
    "subvector",
)

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In)


def type_parameters(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` with ``meta[PARAM_TYPES]`` set to ``{n: type}`` for the
    parameters whose type could be told, then the context's overrides."""
    out: dict[int, ColumnType] = {}
    for param in tree.find_all(exp.Parameter):
        ctype = _parameter_type(param)
        if ctype is not None:
            out[int(param.this.name)] = ctype
    if ctx.extra_param_types:
        out.update(ctx.extra_param_types)
    tree.meta[PARAM_TYPES] = out
    return tree


def _parameter_type(param: exp.Parameter) -> ColumnType | None:
    """How ``param`` binds, from the expression around it (None: as given)."""
    parent = param.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    if isinstance(parent, exp.Anonymous) and str(parent.this).lower() == "subvector":
        # subvector(vector, start, count): only the first argument is a vector
        return VECTOR_ANY if parent.expressions and parent.expressions[0] is param else None
    if isinstance(parent, (VECTOR_OPERATORS, exp.CosineDistance)) or (
        isinstance(parent, exp.Anonymous) and str(parent.this).lower() in _VECTOR_FUNCTIONS
    ):
        # Against a VECTOR(n) column the parameter must have n dimensions,
        # whether or not any row is compared (both engines say so alike).
        for other in parent.iter_expressions():
            if other is not param and isinstance(other, exp.Column):
                column = column_type_of(other.type)
                if column is not None and column.kind == "vector" and column.dim:
                    return column
                break
        return VECTOR_ANY
    if isinstance(parent, (exp.ArrayContainsAll, exp.ArrayContainedBy)):
        return JSON_ANY
    if isinstance(parent, _COMPARISONS):
        for other in parent.iter_expressions():
            if other is not param and isinstance(other, exp.Column):
                return column_type_of(other.type)
    return None
