"""Refuse the constructs loomdb cannot translate faithfully, by the words
users know them by.

>>> from loomdb.sql.rules.context import Context, tree_of
>>> ctx = Context.example(t="id INT, at TIMESTAMPTZ")
>>> refuse_unsupported(tree_of("SELECT id FROM t WHERE id > 1"), ctx).sql()
'SELECT id FROM t WHERE id > 1'
>>> refuse_unsupported(tree_of("SELECT id FROM t, LATERAL (SELECT 1) s"), ctx)
Traceback (most recent call last):
...
loomdb.errors.NotSupportedError: LATERAL is not supported by loomdb
>>> refuse_unsupported(tree_of("SELECT DISTINCT ON (id) id FROM t"), ctx)
Traceback (most recent call last):
...
loomdb.errors.NotSupportedError: SELECT DISTINCT ON is not supported by loomdb
>>> refuse_unsupported(tree_of("WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d"), ctx)
Traceback (most recent call last):
...
loomdb.errors.NotSupportedError: data-modifying statements in WITH are not supported by loomdb
"""

from __future__ import annotations

from sqlglot import exp

from ...errors import NotSupportedError
from ..dialect import BitDistance
from .context import Context

# Constructs with no faithful translation yet, and the words users know them by.
UNSUPPORTED: dict[type, str] = {
    exp.Interval: "INTERVAL arithmetic",
    exp.ArrayAgg: "array_agg (arrays are not supported; use jsonb_agg)",
    exp.Array: "ARRAY values (use JSONB)",
    exp.Unnest: "UNNEST",
    exp.Lateral: "LATERAL",
    exp.Pivot: "PIVOT",
    exp.Lock: "FOR UPDATE / FOR SHARE",
    exp.Into: "SELECT INTO",
}


#: pgvector's types other than vector, and its functions over them (loomdb has vector only).
PGVECTOR_OTHER_TYPES = frozenset({"halfvec", "sparsevec"})
PGVECTOR_OTHER_FUNCTIONS = frozenset({"binary_quantize", "hamming_distance", "jaccard_distance"})


def _refuse_pgvector_other(node: exp.Expression) -> None:
    """NotSupportedError for pgvector's halfvec, sparsevec and bit-vector constructs."""
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.USERDEFINED:
        kind = node.args.get("kind")
        name = kind.name.lower() if isinstance(kind, exp.Identifier) else ""
        if name in PGVECTOR_OTHER_TYPES:
            raise NotSupportedError(f"pgvector's {name} type is not supported by loomdb (vector only)")
    if isinstance(node, BitDistance):
        raise NotSupportedError(
            "pgvector's bit-vector operators <~> and <%> are not supported by loomdb (vector only)"
        )
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in PGVECTOR_OTHER_FUNCTIONS:
        raise NotSupportedError(
            f"{str(node.this).lower()}() is not supported by loomdb (pgvector's bit vectors)"
        )


def refuse_unsupported(tree: exp.Expression, ctx: Context) -> exp.Expression:
    """Return ``tree`` unchanged, or raise NotSupportedError naming the first
    construct of :data:`UNSUPPORTED` (or ``DISTINCT ON``, or one of pgvector's
    types other than vector) found in it.
    """
    for node in tree.walk():
        _refuse_pgvector_other(node)
        label = UNSUPPORTED.get(type(node))
        if label is not None:
            raise NotSupportedError(f"{label} is not supported by loomdb")
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.MONEY:
            raise NotSupportedError("the money type is not supported by loomdb (use NUMERIC)")
        if isinstance(node, exp.Distinct) and node.args.get("on"):
            raise NotSupportedError("SELECT DISTINCT ON is not supported by loomdb")
        if isinstance(node, exp.CTE) and isinstance(node.this, _DATA_MODIFYING):
            raise NotSupportedError(DATA_MODIFYING_WITH)
    return tree


_DATA_MODIFYING = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
DATA_MODIFYING_WITH = "data-modifying statements in WITH are not supported by loomdb"


def refuse_data_modifying_with(tree: exp.Expression) -> None:
    """Raise NotSupportedError when a WITH clause of ``tree`` holds an INSERT,
    UPDATE, DELETE or MERGE (a writable CTE), whatever the statement."""
    for cte in tree.find_all(exp.CTE):
        if isinstance(cte.this, _DATA_MODIFYING):
            raise NotSupportedError(DATA_MODIFYING_WITH)
