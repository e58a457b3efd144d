"""pgvector's operators, casts, functions and aggregates as the SQLite engine writes them.

Each becomes a call of a function of :mod:`.vector_functions`, which computes
pgvector's value to the bit (sqlite-vec's float32 distances differ in the
last digits) and is NULL when a side is NULL. Whether ``=``, ``+`` or
``avg`` work on vectors is read from the operands' annotated types.

>>> from loomdb.sql.dialect import parse
>>> from loomdb.backend.sqlite.dialect import LoomSQLite
>>> parse("SELECT id FROM t ORDER BY e <=> $1 LIMIT 5").sql(dialect=LoomSQLite)
'SELECT id FROM t ORDER BY LOOM_COSINE_RANK(e, ?1) LIMIT 5'
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.generators.sqlite import SQLiteGenerator

from ... import errors
from ...sql.dialect import CosineDistance, L1Distance, NegativeInnerProduct

_T = exp.DataType.Type
_Transform = Callable[[SQLiteGenerator, exp.Expr], str]

#: pgvector's functions, by upper-case name, as the SQLite functions computing them.
VECTOR_CALLS = {
    "L2_DISTANCE": "loom_l2_distance",
    "COSINE_DISTANCE": "loom_cosine_distance",
    "INNER_PRODUCT": "loom_inner_product",
    "L1_DISTANCE": "loom_l1_distance",
    "VECTOR_DIMS": "loom_vector_dims",
    "VECTOR_NORM": "loom_vector_norm",
    "L2_NORMALIZE": "loom_l2_normalize",
    "SUBVECTOR": "loom_subvector",
}


#: pgvector's functions whose result is a vector (sqlglot does not type them).
_VECTOR_RESULTS = frozenset({"L2_NORMALIZE", "SUBVECTOR"})


def is_vector(node: exp.Expr | None) -> bool:
    """Whether ``node`` is annotated as a vector (or calls a function giving one)."""
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in _VECTOR_RESULTS:
        return True
    dtype = node.type if isinstance(node, exp.Expression) else None
    return dtype is not None and dtype.this == _T.VECTOR


def vector_call(name: str) -> str | None:
    """The SQLite function computing pgvector's function ``name`` (None: not one of
    pgvector's); ``l2_norm`` raises PostgreSQL's error (it has no vector form:
    pgvector's are for halfvec and sparsevec, so a vector argument is ambiguous)."""
    upper = name.upper()
    if upper == "L2_NORM":
        raise errors.ProgrammingError("function l2_norm(vector) is not unique", sqlstate="42725")
    return VECTOR_CALLS.get(upper)


def _binary_call(name: str) -> _Transform:
    """A binary operator as ``name(left, right)``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(left, right)``."""
        return self.func(name, e.this, e.expression)

    return generate


def _comparison(op: str) -> Callable[[SQLiteGenerator, exp.Binary], str]:
    """A comparison; between vectors, pgvector's order (element-wise, then the dimension)."""

    def generate(self: SQLiteGenerator, e: exp.Binary) -> str:
        """``loom_vector_cmp(a, b) op 0`` for vectors, else the comparison as it is."""
        if is_vector(e.this) or is_vector(e.expression):
            return f"({self.func('loom_vector_cmp', e.this, e.expression)} {op} 0)"
        return self.binary(e, op)

    return generate


def vector_arithmetic(self: SQLiteGenerator, e: exp.Expr) -> str | None:
    """``a + b``, ``a - b``, ``a * b`` between vectors as pgvector's element-wise
    functions; None when neither side is a vector."""
    if not (is_vector(e.this) or is_vector(e.expression)):
        return None
    name = {"add": "loom_vector_add", "sub": "loom_vector_sub", "mul": "loom_vector_mul"}.get(e.key)
    if name is None:
        raise errors.ProgrammingError(f"operator does not exist: vector {e.key} vector", sqlstate="42883")
    return self.func(name, e.this, e.expression)


def _arithmetic(op: str) -> Callable[[SQLiteGenerator, exp.Binary], str]:
    """``+`` or ``*``: pgvector's between vectors, else as SQLite writes it."""

    def generate(self: SQLiteGenerator, e: exp.Binary) -> str:
        """The vector function or the plain operator."""
        return vector_arithmetic(self, e) or self.binary(e, op)

    return generate


def vector_aggregate(self: SQLiteGenerator, e: exp.Expr) -> str | None:
    """``avg``/``sum`` of vectors as pgvector's (None when the argument is no vector)."""
    arg = e.this
    if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1 and is_vector(arg.expressions[0]):
        # SQLite's DISTINCT compares the stored bytes, where pgvector's equality has -0 = 0.
        raise errors.NotSupportedError(f"{e.key}(DISTINCT vector) is not supported by loomdb on SQLite")
    if not is_vector(arg):
        return None
    return self.func("loom_vector_avg" if isinstance(e, exp.Avg) else "loom_vector_sum", arg)


def vector_cast(self: SQLiteGenerator, e: exp.Cast) -> str | None:
    """``x::vector[(n)]`` (checking the dimension) and ``vector::text`` (pgvector's
    text); None for other casts."""
    kind = e.to.this
    if kind == _T.VECTOR:
        params = e.to.expressions
        dim = params[0].this if params and isinstance(params[0], exp.DataTypeParam) else None
        width = dim if isinstance(dim, exp.Literal) else exp.Literal.number(0)
        return self.func("loom_vector", e.this, width)
    if is_vector(e.this) and kind in (_T.TEXT, _T.VARCHAR, _T.CHAR):
        return self.func("loom_vector_text", e.this)
    return None


def _cosine(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``a <=> b`` and ``cosine_distance(a, b)``. As an ORDER BY key, the rank:
    PostgreSQL sorts the NaN of a zero vector after every number (and before
    NULL), which infinity does too, where the value itself cannot be returned."""
    name = "loom_cosine_rank" if isinstance(e.parent, exp.Ordered) else "loom_cosine_distance"
    return self.func(name, e.this, e.expression)


def _in(self: SQLiteGenerator, e: exp.In) -> str:
    """``v IN (...)`` over vectors: pgvector's equality, through ``loom_vector_key``."""
    if not is_vector(e.this) or e.args.get("query") is not None:
        return self.in_sql(e)
    keyed = e.copy()
    keyed.set("this", exp.Anonymous(this="loom_vector_key", expressions=[e.this.copy()]))
    keyed.set(
        "expressions",
        [exp.Anonymous(this="loom_vector_key", expressions=[item.copy()]) for item in e.expressions],
    )
    return self.in_sql(keyed)


def _no_vector_extreme(name: str, fallback: Callable[[SQLiteGenerator, exp.Expr], str]) -> _Transform:
    """``max``/``min``: pgvector defines none over vectors (PostgreSQL's 42883)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """The aggregate, or the error PostgreSQL raises for a vector argument."""
        if is_vector(e.this):
            raise errors.ProgrammingError(f"function {name}(vector) does not exist", sqlstate="42883")
        return fallback(self, e)

    return generate


def _ordered(self: SQLiteGenerator, e: exp.Ordered) -> str:
    """An ORDER BY key; a vector sorts by pgvector's order (element-wise, then
    the dimension) through ``loom_vector_key``, a blob SQLite compares as bytes."""
    if not is_vector(e.this):
        return self.ordered_sql(e)
    keyed = e.copy()
    keyed.set("this", exp.Anonymous(this="loom_vector_key", expressions=[e.this.copy()]))
    return self.ordered_sql(keyed)


#: The transforms the SQLite generator takes over.
VECTOR_TRANSFORMS: dict[type[exp.Expr], Callable[..., str]] = {
    exp.Distance: _binary_call("loom_l2_distance"),
    CosineDistance: _cosine,
    NegativeInnerProduct: _binary_call("loom_negative_inner_product"),
    L1Distance: _binary_call("loom_l1_distance"),
    exp.CosineDistance: _cosine,
    exp.EQ: _comparison("="),
    exp.NEQ: _comparison("<>"),
    exp.LT: _comparison("<"),
    exp.LTE: _comparison("<="),
    exp.GT: _comparison(">"),
    exp.GTE: _comparison(">="),
    exp.Add: _arithmetic("+"),
    exp.Mul: _arithmetic("*"),
    exp.Ordered: _ordered,
    exp.In: _in,
    exp.Max: _no_vector_extreme("max", SQLiteGenerator.TRANSFORMS.get(exp.Max, SQLiteGenerator.max_sql)),
    exp.Min: _no_vector_extreme("min", SQLiteGenerator.TRANSFORMS.get(exp.Min, SQLiteGenerator.min_sql)),
}
