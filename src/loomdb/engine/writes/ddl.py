"""DDL: CREATE TABLE / INDEX, DROP, ALTER TABLE as new schema versions of the writing branch."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sqlglot import exp

from ... import errors
from ...catalog import Column, Index, TableSchema
from ...sql.compile import table_key
from ...types import ColumnType
from .common import Defaults, WriteResult, column_of, ident, target_schema

if TYPE_CHECKING:
    from ..session import Session

# ----------------------------------------------------------------------------- DDL


# The serial type an IDENTITY column of each integer type becomes.
_IDENTITY_TYPES = {
    **dict.fromkeys(("SMALLINT", "INT2"), "SMALLSERIAL"),
    **dict.fromkeys(("INT", "INTEGER", "INT4"), "SERIAL"),
    **dict.fromkeys(("BIGINT", "INT8"), "BIGSERIAL"),
}


def _identity_type(name: str, ctype: ColumnType, k: exp.GeneratedAsIdentityColumnConstraint) -> ColumnType:
    """The serial type of an IDENTITY column: NotSupportedError for a generated
    column or sequence options, ProgrammingError for a type that is no integer."""
    if k.expression is not None:
        raise errors.NotSupportedError(
            f'generated column "{name}" (GENERATED ALWAYS AS (...)) is not supported by loomdb'
        )
    options = ("start", "increment", "minvalue", "maxvalue", "cycle", "order")
    if any(k.args.get(o) not in (None, False) for o in options):
        raise errors.NotSupportedError(
            f'identity sequence options (START WITH, INCREMENT BY ...) on "{name}" are not supported by loomdb'
        )
    serial = _IDENTITY_TYPES.get(ctype.sql.upper())
    if serial is None:
        raise errors.ProgrammingError(
            f'identity column type must be smallint, integer, or bigint (column "{name}")', sqlstate="22023"
        )
    return ColumnType.parse(serial)


def _column_from_def(coldef: exp.ColumnDef, phys: str) -> tuple[Column, bool, bool]:
    """A Column from its definition, and whether it is a PRIMARY KEY / UNIQUE by itself."""
    name = ident(coldef.this)
    kind = coldef.args.get("kind")
    if kind is None:
        raise errors.ProgrammingError(f'column "{name}" needs a type', sqlstate="42601")
    ctype = ColumnType.parse(kind.sql(dialect="postgres"))
    not_null = primary = unique = False
    default: str | None = None
    identity: str | None = None
    for constraint in coldef.args.get("constraints") or []:
        k = constraint.args.get("kind")
        if isinstance(k, exp.NotNullColumnConstraint):
            not_null = not k.args.get("allow_null")
        elif isinstance(k, exp.PrimaryKeyColumnConstraint):
            primary = not_null = True
        elif isinstance(k, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(k, exp.DefaultColumnConstraint):
            default = k.this.sql(dialect="postgres")
        elif isinstance(k, exp.GeneratedAsIdentityColumnConstraint):
            ctype = _identity_type(name, ctype, k)
            identity = "always" if k.this else "by default"
            not_null = True
        else:
            raise errors.NotSupportedError(
                f'column constraint {constraint.sql(dialect="postgres")!r} on "{name}" is not supported'
            )
    return Column(name, ctype, phys, not_null, default, identity=identity), primary, unique


def _phys_name(name: str, taken: dict[str, str]) -> str:
    """A physical column name for ``name``: letters, digits and underscores, not starting
    with one, and not among ``taken``."""
    base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) or "col"
    if base.startswith("_"):
        base = "c" + base
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}__{n}"
        n += 1
    return candidate


def run_create_table(session: Session, stmt: exp.Create) -> WriteResult:
    """CREATE TABLE: a new physical table (with an index per key) and the table's
    first schema on this branch."""
    txn = session.require_txn()
    store = session.store
    schema_node = stmt.this
    if not isinstance(schema_node, exp.Schema):
        raise errors.NotSupportedError(
            "CREATE TABLE ... AS SELECT is not supported; create the table, then INSERT ... SELECT"
        )
    props = stmt.args.get("properties")
    if props is not None:
        raise errors.NotSupportedError(f"table options {props.sql(dialect='postgres')!r} are not supported")
    table = schema_node.this
    name = table_key(table)
    if table.args.get("db") is not None and table.args["db"].name.lower() not in ("public", "main"):
        raise errors.NotSupportedError(
            f"schema-qualified table {table.sql()!r}: loomdb has one schema per store"
        )
    if name in session.schemas():
        if stmt.args.get("exists"):
            return WriteResult(0)
        raise errors.ProgrammingError(
            f'relation "{name}" already exists on branch {session.name!r}', sqlstate="42P07"
        )
    if name.startswith(("loom_", "sqlite_")):
        raise errors.ProgrammingError(
            f'table names starting with "loom_" or "sqlite_" are reserved: {name!r}'
        )
    columns: list[Column] = []
    taken: dict[str, str] = {}
    primary: tuple[str, ...] = ()
    uniques: list[tuple[str, ...]] = []
    for node in schema_node.expressions:
        if isinstance(node, exp.ColumnDef):
            phys = _phys_name(ident(node.this), taken)
            column, is_pk, is_unique = _column_from_def(node, phys)
            if column.name in {c.name for c in columns}:
                raise errors.ProgrammingError(
                    f'column "{column.name}" specified more than once', sqlstate="42701"
                )
            taken[phys] = column.type.affinity
            columns.append(column)
            if is_pk:
                if primary:
                    raise errors.ProgrammingError(
                        f'multiple primary keys for table "{name}" are not allowed', sqlstate="42P16"
                    )
                primary = (column.name,)
            if is_unique:
                uniques.append((column.name,))
        elif isinstance(node, exp.PrimaryKey):
            if primary:
                raise errors.ProgrammingError(
                    f'multiple primary keys for table "{name}" are not allowed', sqlstate="42P16"
                )
            primary = tuple(ident(c.this if isinstance(c, exp.Ordered) else c) for c in node.expressions)
        elif isinstance(node, exp.Constraint):
            for part in node.expressions:
                if isinstance(part, exp.PrimaryKey):
                    primary = tuple(
                        ident(c.this if isinstance(c, exp.Ordered) else c) for c in part.expressions
                    )
                elif isinstance(part, exp.UniqueColumnConstraint):
                    uniques.append(_unique_columns(part))
                else:
                    raise errors.NotSupportedError(
                        f"table constraint {node.sql(dialect='postgres')!r} is not supported"
                    )
        elif isinstance(node, exp.UniqueColumnConstraint):
            uniques.append(_unique_columns(node))
        else:
            raise errors.NotSupportedError(f"table element {node.sql(dialect='postgres')!r} is not supported")
    if not columns:
        raise errors.ProgrammingError(f'table "{name}" needs at least one column')
    known = {c.name for c in columns}
    for key in ((primary,) if primary else ()) + tuple(uniques):
        for col in key:
            if col not in known:
                raise errors.ProgrammingError(f'column "{col}" named in key does not exist', sqlstate="42703")
    columns = [replace(c, not_null=c.not_null or c.name in primary) for c in columns]
    tid = store.new_table_id()
    physical = f"loom_t{tid}"
    store.ensure_commit(txn)
    store.backend.create_physical_table(physical, [(c.phys, c.type) for c in columns])
    store.record_physical(tid, physical, {c.phys: c.type.affinity for c in columns})
    indexes = []
    for position, key in enumerate(((primary,) if primary else ()) + tuple(uniques)):
        phys_index = f"{physical}__key{position}"
        store.backend.create_physical_index(
            physical, phys_index, [next(c.phys for c in columns if c.name == k) for k in key]
        )
        indexes.append(Index(f"{name}_key{position}", key, True, phys_index))
    schema = TableSchema(
        name, tid, physical, tuple(columns), primary, tuple(dict.fromkeys(uniques)), tuple(indexes)
    )
    store.write_schema(txn, name, schema)
    return WriteResult(0)


def _unique_columns(node: exp.UniqueColumnConstraint) -> tuple[str, ...]:
    """The columns of a table-level UNIQUE (...) constraint."""
    target = node.this
    if isinstance(target, exp.Schema):
        return tuple(ident(c) for c in target.expressions)
    raise errors.NotSupportedError(f"constraint {node.sql(dialect='postgres')!r} is not supported")


def run_drop(session: Session, stmt: exp.Drop) -> WriteResult:
    """DROP TABLE / DROP INDEX: a new schema on this branch without it; the physical
    table, rows and index stay for other branches and history."""
    txn = session.require_txn()
    kind = str(stmt.args.get("kind") or "").upper()
    if kind == "TABLE":
        schemas = session.schemas()
        names = [table_key(t) for t in stmt.args.get("tables") or [stmt.this]]
        for name in names:
            if name not in schemas and not stmt.args.get("exists"):
                raise errors.ProgrammingError(f'table "{name}" does not exist', sqlstate="42P01")
        for name in names:
            if name in schemas:
                session.store.write_schema(txn, name, None)
        return WriteResult(0)
    if kind == "INDEX":
        names = [ident(t.this) for t in stmt.args.get("tables") or [stmt.this]]
        for index_name in names:
            owner = next(
                (s for s in session.schemas().values() if any(i.name == index_name for i in s.indexes)),
                None,
            )
            if owner is None:
                if stmt.args.get("exists"):
                    continue
                raise errors.ProgrammingError(f'index "{index_name}" does not exist', sqlstate="42704")
            index = next(i for i in owner.indexes if i.name == index_name)
            uniques = tuple(u for u in owner.uniques if not (index.unique and u == index.columns))
            indexes = tuple(i for i in owner.indexes if i.name != index_name)
            session.store.write_schema(txn, owner.name, owner.evolve(indexes=indexes, uniques=uniques))
        return WriteResult(0)
    raise errors.NotSupportedError(f"DROP {kind} is not supported")


# pgvector's approximate indexes. The embedded engine searches exactly from
# memory and records them without building anything; PostgreSQL builds them.
_VECTOR_INDEX_METHODS = ("hnsw", "ivfflat")
_VECTOR_OPCLASSES = {"vector_l2_ops", "vector_cosine_ops", "vector_ip_ops"}


def run_create_index(session: Session, stmt: exp.Create) -> WriteResult:
    """CREATE [UNIQUE] INDEX (B-tree, or pgvector's hnsw / ivfflat on one VECTOR
    column): built physically and recorded in a new schema on this branch."""
    txn = session.require_txn()
    index = stmt.this
    table = index.args.get("table")
    schema = target_schema(session, table)
    params = index.args.get("params")
    if not isinstance(params, exp.IndexParameters):
        raise errors.InternalError(
            f"CREATE INDEX {stmt.sql(dialect='postgres')!r} parsed without its index parameters"
        )
    using = params.args.get("using")
    method: str | None = None
    if using is not None:
        method = using.name.lower()
        if method not in ("btree", *_VECTOR_INDEX_METHODS):
            raise errors.NotSupportedError(f"index method {using.name!r} is not supported")
    if params.args.get("with_storage") and method not in _VECTOR_INDEX_METHODS:
        raise errors.NotSupportedError("index storage parameters (WITH ...) are not supported")
    columns: list[Column] = []
    opclass = None
    for item in params.args.get("columns") or []:
        node = item.this if isinstance(item, exp.Ordered) else item
        if isinstance(node, exp.Opclass) and method in _VECTOR_INDEX_METHODS:
            opclass = node.expression.name.lower()
            node = node.this
        if not isinstance(node, exp.Column):
            raise errors.NotSupportedError(
                f"index on expression {node.sql(dialect='postgres')!r} is not supported"
            )
        columns.append(column_of(schema, ident(node)))
    if not columns:
        # PostgreSQL's grammar needs the parenthesised column list.
        raise errors.ProgrammingError(
            "syntax error at end of input: CREATE INDEX needs a column list, ON table (column, ...)",
            sqlstate="42601",
        )
    cols = [c.name for c in columns]
    if method in _VECTOR_INDEX_METHODS:
        if len(columns) != 1 or columns[0].type.kind != "vector":
            raise errors.ProgrammingError(f"a {method} index is built on one VECTOR column")
        if opclass not in _VECTOR_OPCLASSES:
            raise errors.NotSupportedError(
                f"a {method} index needs an operator class: one of {', '.join(sorted(_VECTOR_OPCLASSES))}"
            )
        if stmt.args.get("unique"):
            raise errors.ProgrammingError(f"a {method} index cannot be UNIQUE")
    name = ident(index.this) if index.this is not None else f"{schema.name}_{'_'.join(cols)}_idx"
    if any(i.name == name for s in session.schemas().values() for i in s.indexes):
        if stmt.args.get("exists"):
            return WriteResult(0)
        raise errors.ProgrammingError(f'relation "{name}" already exists', sqlstate="42P07")
    unique = bool(stmt.args.get("unique"))
    if unique:
        dup = session.first_duplicate(schema, tuple(cols))
        if dup is not None:
            raise errors.IntegrityError(
                f'could not create unique index "{name}": key ({", ".join(cols)})=({", ".join(map(repr, dup))}) is duplicated',
                sqlstate="23505",
            )
    phys_index = f"{schema.physical}__{_phys_name(name, {})}"
    vector_method = method if method in _VECTOR_INDEX_METHODS else None
    session.store.ensure_commit(txn)
    session.store.backend.create_physical_index(
        schema.physical, phys_index, [c.phys for c in columns], method, opclass
    )
    new = schema.evolve(
        indexes=schema.indexes + (Index(name, tuple(cols), unique, phys_index, vector_method, opclass),),
        uniques=schema.uniques + ((tuple(cols),) if unique else ()),
    )
    session.store.write_schema(txn, schema.name, new)
    return WriteResult(0)


def run_alter(session: Session, stmt: exp.Alter) -> WriteResult:
    """ALTER TABLE ADD / DROP / RENAME COLUMN and RENAME TO: one new schema on this
    branch for all of its actions."""
    txn = session.require_txn()
    store = session.store
    table = stmt.this
    schemas = session.schemas()
    name = table_key(table)
    schema = schemas.get(name)
    if schema is None:
        if stmt.args.get("exists"):
            return WriteResult(0)
        raise errors.ProgrammingError(f'relation "{name}" does not exist', sqlstate="42P01")
    for action in stmt.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            col_name = ident(action.this)
            if schema.column(col_name) is not None:
                if action.args.get("exists"):
                    continue
                raise errors.ProgrammingError(
                    f'column "{col_name}" of relation "{name}" already exists', sqlstate="42701"
                )
            physical = store.physical_columns(schema.tid)
            phys = _phys_name(col_name, physical)
            column, is_pk, is_unique = _column_from_def(action, phys)
            if is_pk:
                raise errors.NotSupportedError("ALTER TABLE ADD COLUMN ... PRIMARY KEY is not supported")
            if column.type.kind == "serial" and session.count_rows(schema) > 0:
                # PostgreSQL gives every existing row its own value; a column
                # added here reads one fill value for all of them.
                raise errors.NotSupportedError(
                    f'ALTER TABLE ADD COLUMN "{col_name}" SERIAL / IDENTITY on a table with rows'
                    " is not supported by loomdb"
                )
            seq = store.ensure_commit(txn)
            fill = None
            if column.default is not None:
                fill = Defaults(session, schema, txn).value(column)
            if column.not_null and fill is None and session.count_rows(schema) > 0:
                raise errors.IntegrityError(
                    f'column "{col_name}" of relation "{name}" contains null values', sqlstate="23502"
                )
            store.backend.add_physical_column(schema.physical, phys, column.type)
            physical[phys] = column.type.affinity
            store.record_physical(schema.tid, schema.physical, physical)
            column = replace(column, phys=phys, added_seq=seq, fill=fill)
            schema = schema.with_columns(schema.columns + (column,))
            if is_unique:
                schema = schema.evolve(uniques=schema.uniques + ((col_name,),))
        elif isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == "COLUMN":
            for target in action.args.get("tables") or []:
                col_name = ident(target)
                if schema.column(col_name) is None:
                    if action.args.get("exists"):
                        continue
                    raise errors.ProgrammingError(
                        f'column "{col_name}" of relation "{name}" does not exist', sqlstate="42703"
                    )
                if any(col_name in key for key in schema.keys):
                    raise errors.NotSupportedError(f'cannot drop column "{col_name}": it is part of a key')
                schema = schema.with_columns(tuple(c for c in schema.columns if c.name != col_name)).evolve(
                    indexes=tuple(i for i in schema.indexes if col_name not in i.columns)
                )
        elif isinstance(action, exp.RenameColumn):
            old, new = ident(action.this), ident(action.args["to"])
            column_of(schema, old)
            if schema.column(new) is not None:
                raise errors.ProgrammingError(
                    f'column "{new}" of relation "{name}" already exists', sqlstate="42701"
                )
            cols = tuple(replace(c, name=new) if c.name == old else c for c in schema.columns)

            def rename(key: tuple[str, ...], old: str = old, new: str = new) -> tuple[str, ...]:
                return tuple(new if k == old else k for k in key)

            schema = schema.with_columns(cols).evolve(
                primary_key=rename(schema.primary_key),
                uniques=tuple(rename(u) for u in schema.uniques),
                indexes=tuple(replace(i, columns=rename(i.columns)) for i in schema.indexes),
            )
        elif isinstance(action, exp.AlterRename):
            new_name = table_key(action.this)
            if new_name in schemas:
                raise errors.ProgrammingError(f'relation "{new_name}" already exists', sqlstate="42P07")
            store.write_schema(txn, name, None)
            schema = schema.evolve(name=new_name)
            name = new_name
        else:
            raise errors.NotSupportedError(
                f"ALTER TABLE action {action.sql(dialect='postgres')!r} is not supported"
            )
    store.write_schema(txn, name, schema)
    return WriteResult(0)
