"""Compile a PostgreSQL query into the backend's SQL over branch views.

The pipeline is a few pure steps over a sqlglot tree:

1. :func:`check_supported` refuses constructs loomdb cannot translate.
2. :func:`resolve_tables` checks every table exists on the handle's branch.
3. sqlglot's ``qualify`` expands ``*`` and resolves columns (unknown columns
   fail here with a clear message); ``annotate_types`` types the results.
4. :func:`parameter_types` decides how each ``$n`` binds (a list meeting a
   VECTOR is a vector, meeting JSONB it is JSON, ...).
5. :func:`rewrite_tables` swaps each table for the branch's visible view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from ..catalog import TableSchema
from ..errors import NotSupportedError, ProgrammingError
from ..types import JSON_ANY, VECTOR_ANY, ColumnType
from .dialect import VECTOR_OPERATORS, LoomPostgres

HIDDEN = ("_loom_vid", "_loom_rid", "_loom_bid", "_loom_seq")

# Constructs with no faithful translation yet, and the words users know them by.
_UNSUPPORTED: dict[type, str] = {
    exp.Interval: "INTERVAL arithmetic",
    exp.ArrayAgg: "array_agg (arrays are not supported; use jsonb_agg)",
    exp.Array: "ARRAY values (use JSONB)",
    exp.Unnest: "UNNEST",
    exp.Lateral: "LATERAL",
    exp.Pivot: "PIVOT",
    exp.Lock: "FOR UPDATE / FOR SHARE",
    exp.TimestampTrunc: "date_trunc",
    exp.Extract: "EXTRACT",
    exp.Into: "SELECT INTO",
}


@dataclass(frozen=True)
class Compiled:
    """A query ready to run: backend SQL, result names/types, parameter types."""

    sql: str
    names: tuple[str, ...]
    types: tuple[ColumnType | None, ...]
    param_types: Mapping[int, ColumnType]
    nparams: int


def check_supported(tree: exp.Expression) -> None:
    for node in tree.walk():
        if (
            isinstance(node, exp.Ordered)
            and isinstance(node.this, VECTOR_OPERATORS)
            and not node.args.get("desc")
        ):
            # Rows without a vector have no distance: they come last, as in pgvector.
            node.set("nulls_first", False)
        label = _UNSUPPORTED.get(type(node))
        if label is not None:
            raise NotSupportedError(f"{label} is not supported by loomdb")
        if isinstance(node, exp.Distinct) and node.args.get("on"):
            raise NotSupportedError("SELECT DISTINCT ON is not supported by loomdb")


def cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


def user_tables(tree: exp.Expression) -> list[exp.Table]:
    """The table references that name stored tables (not CTEs or table functions)."""
    ctes = cte_names(tree)
    out = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        if table.name in ctes and not table.args.get("db"):
            continue
        out.append(table)
    return out


def table_key(table: exp.Table) -> str:
    """The catalog name of a table reference (PostgreSQL folds unquoted names to lower case)."""
    ident = table.this
    name = ident.this if ident.quoted else ident.this.lower()
    return name


def resolve_tables(tree: exp.Expression, schemas: Mapping[str, TableSchema]) -> None:
    for table in user_tables(tree):
        db = table.args.get("db")
        if db is not None and db.name.lower() not in ("public", "main"):
            raise NotSupportedError(
                f"schema-qualified table {table.sql()!r}: loomdb has one schema per store"
            )
        if db is not None:
            table.set("db", None)
            table.set("catalog", None)
        if table_key(table) not in schemas:
            raise ProgrammingError(f'relation "{table_key(table)}" does not exist')


def _schema_mapping(schemas: Mapping[str, TableSchema]) -> dict[str, dict[str, str]]:
    return {name: {c.name: c.type.sql for c in s.columns} for name, s in schemas.items()}


def column_type_of(dtype: exp.DataType | None) -> ColumnType | None:
    """The loomdb type for a sqlglot-annotated type (None: leave the value as the engine gives it)."""
    if dtype is None:
        return None
    kind = dtype.this
    T = exp.DataType.Type
    if kind in (T.JSON, T.JSONB):
        return JSON_ANY
    if kind == T.VECTOR:
        params = dtype.expressions
        try:
            text = dtype.sql(dialect="postgres")
            return ColumnType.parse(text) if params else VECTOR_ANY
        except Exception:
            return VECTOR_ANY
    if kind == T.DECIMAL:
        try:
            return ColumnType.parse(dtype.sql(dialect="postgres").replace("DECIMAL", "NUMERIC", 1))
        except Exception:
            return ColumnType.parse("NUMERIC")
    mapping = {
        T.SMALLINT: "SMALLINT",
        T.INT: "INT",
        T.BIGINT: "BIGINT",
        T.TEXT: "TEXT",
        T.VARCHAR: "VARCHAR",
        T.CHAR: "CHAR",
        T.TIMESTAMP: "TIMESTAMP",
        T.TIMESTAMPTZ: "TIMESTAMPTZ",
        T.DATE: "DATE",
        T.DECIMAL: "NUMERIC",
        T.BOOLEAN: "BOOLEAN",
        T.UUID: "UUID",
        T.VARBINARY: "BYTEA",
        T.BINARY: "BYTEA",
        T.DOUBLE: "DOUBLE PRECISION",
        T.FLOAT: "REAL",
    }
    name = mapping.get(kind)
    return ColumnType.parse(name) if name else None


# sqlglot models these operators as functions; PostgreSQL names their results "?column?".
_OPERATOR_FUNCS = (
    exp.JSONExtract,
    exp.JSONExtractScalar,
    exp.JSONBExtract,
    exp.JSONBExtractScalar,
    exp.ArrayContainsAll,
    exp.ArrayContainedBy,
    exp.JSONBContainsTopKey,
)


def output_name(node: exp.Expression) -> str:
    """The column name PostgreSQL gives a result column."""
    if isinstance(node, exp.Alias):
        alias = node.alias
        if not alias.startswith("_col_"):
            return alias
        node = node.this
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, (_OPERATOR_FUNCS, VECTOR_OPERATORS)):
        return "?column?"
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    if isinstance(node, exp.Boolean):
        return "bool"
    return "?column?"


def parameter_types(tree: exp.Expression) -> dict[int, ColumnType]:
    """How each ``$n`` should bind, from the typed expression it meets."""
    out: dict[int, ColumnType] = {}
    for param in tree.find_all(exp.Parameter):
        index = int(param.this.name)
        parent = param.parent
        while isinstance(parent, exp.Paren):
            parent = parent.parent
        ctype: ColumnType | None = None
        if (
            isinstance(parent, (VECTOR_OPERATORS, exp.CosineDistance))
            or isinstance(parent, exp.Anonymous)
            and str(parent.this).lower()
            in (
                "l2_distance",
                "inner_product",
                "vector_dims",
                "vector_norm",
            )
        ):
            ctype = VECTOR_ANY
            # Against a VECTOR(n) column the parameter must have n dimensions,
            # whether or not any row is compared (both engines say so alike).
            for other in parent.iter_expressions():
                if other is not param and isinstance(other, exp.Column):
                    column = column_type_of(other.type)
                    if column is not None and column.kind == "vector" and column.dim:
                        ctype = column
                    break
        elif isinstance(parent, (exp.ArrayContainsAll, exp.ArrayContainedBy)):
            ctype = JSON_ANY
        elif isinstance(parent, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In)):
            for other in parent.iter_expressions():
                if other is not param and isinstance(other, exp.Column):
                    ctype = column_type_of(other.type)
                    break
        if ctype is not None:
            out[index] = ctype
    return out


def qualify_query(tree: exp.Expression, schemas: Mapping[str, TableSchema]) -> exp.Expression:
    """Resolve columns, expand stars and annotate types; errors name the problem."""
    mapping = _schema_mapping(schemas)
    try:
        tree = qualify(
            tree,
            schema=mapping,
            dialect=LoomPostgres,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=False,
        )
        tree = annotate_types(tree, schema=mapping, dialect=LoomPostgres)
    except OptimizeError as err:
        message = str(err)
        if message.startswith("Column '") or "could not be resolved" in message:
            raise ProgrammingError(f"column does not exist: {message}") from None
        raise ProgrammingError(message) from None
    except SqlglotError as err:
        raise ProgrammingError(str(err)) from None
    return tree


def projections(tree: exp.Expression) -> list[exp.Expression]:
    if isinstance(tree, exp.Query):
        return list(tree.selects)
    return []


def rewrite_tables(
    tree: exp.Expression,
    view_sql: Callable[[exp.Table, str], str],
) -> Callable[[str], str]:
    """Replace every stored table by a placeholder; return the text substitution
    that puts each table's view (from ``view_sql(table, alias)``) in its place."""
    views: dict[str, str] = {}
    for index, table in enumerate(user_tables(tree)):
        token = f"__loomview_{index}__"
        alias = table.alias_or_name
        views[token] = view_sql(table, alias)
        table.set("this", exp.to_identifier(token))
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))

    def substitute(sql: str) -> str:
        for token, view in views.items():
            sql = sql.replace(f'"{token}"', view).replace(token, view)
        return sql

    return substitute


def compile_query(
    tree: exp.Expression,
    schemas: Mapping[str, TableSchema],
    view_sql: Callable[[TableSchema, str, bool, int | None], str],
    *,
    dialect: Any,
    hidden_alias: str | None = None,
    extra_param_types: Mapping[int, ColumnType] | None = None,
    vid_param_probe: int | None = None,
    vid_alias: str | None = None,
) -> Compiled:
    """Compile a query (SELECT, set operation or VALUES) for the given branch views.

    ``hidden_alias`` names the table reference whose version columns
    (``_loom_vid`` ...) are projected first: UPDATE and DELETE use it, and
    ``vid_param_probe`` then keeps only the row identity bound to that parameter.
    ``vid_alias`` keeps only the versions whose ids are listed (as a JSON
    array) in one extra trailing parameter, and appends their ``_loom_vid``
    as the last column: RETURNING uses it.
    """
    tree = tree.copy()
    check_supported(tree)
    resolve_tables(tree, schemas)
    written = projections(tree)
    has_star = any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star) for p in written)
    # Names come from what the user wrote (qualify invents aliases such as
    # "a" for j->'a'); a star's columns are only known after qualify.
    user_names = None if has_star or not written else tuple(output_name(p) for p in written)
    tree = qualify_query(tree, schemas)
    names = user_names or tuple(output_name(p) for p in projections(tree))
    types = tuple(_refine(p, column_type_of(p.type) if p.type else None) for p in projections(tree))
    ptypes = parameter_types(tree)
    if extra_param_types:
        ptypes.update(extra_param_types)
    nparams = max((int(p.this.name) for p in tree.find_all(exp.Parameter)), default=0)
    if vid_param_probe is not None:
        nparams = max(nparams, vid_param_probe)
    vid_param = None
    if hidden_alias is not None or vid_alias is not None:
        if not isinstance(tree, exp.Select):
            raise NotSupportedError("this statement form is not supported")
        if hidden_alias is not None:
            hidden = [exp.column(h, table=hidden_alias, quoted=True) for h in HIDDEN]
            tree.set("expressions", hidden + list(tree.expressions))
            if vid_param_probe is not None:
                probe = exp.EQ(
                    this=exp.column("_loom_vid", table=hidden_alias, quoted=True),
                    expression=exp.Parameter(this=exp.Literal.number(vid_param_probe)),
                )
                where = tree.args.get("where")
                tree.set("where", exp.Where(this=probe if where is None else exp.and_(where.this, probe)))
        if vid_alias is not None:
            nparams += 1
            vid_param = nparams
            tree.set(
                "expressions",
                [*tree.expressions, exp.column("_loom_vid", table=vid_alias, quoted=True)],
            )

    def view(table: exp.Table, alias: str) -> str:
        schema = schemas[table_key(table)]
        hidden = alias in (hidden_alias, vid_alias)
        return view_sql(schema, alias, hidden, vid_param if alias == vid_alias else None)

    substitute = rewrite_tables(tree, view)
    # Quote every identifier: a column PostgreSQL accepts (nothing, isnull...) may be an SQLite keyword.
    sql = substitute(tree.sql(dialect=dialect, identify=True))
    return Compiled(sql, names, types, ptypes, nparams)


def _refine(node: exp.Expression, ctype: ColumnType | None) -> ColumnType | None:
    inner = node.this if isinstance(node, exp.Alias) else node
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if isinstance(inner, (exp.JSONExtract, exp.JSONBExtract)):
        return JSON_ANY
    if isinstance(inner, (exp.JSONExtractScalar, exp.JSONBExtractScalar)):
        return None
    return ctype
