"""How the SQLite dialect writes PostgreSQL's text functions, regular expressions
and boolean and float aggregates: as the ``loom_*`` functions of
:mod:`.text_functions`, or a NotSupportedError naming what it cannot do right."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.generators.sqlite import SQLiteGenerator

from ... import errors
from ...errors import NotSupportedError
from ...sql.dialect import WRITTEN_NAME
from .functions import sqlite_function_names
from .pg_functions import PG_FUNCTIONS

_Transform = Callable[[SQLiteGenerator, exp.Expr], str]
_T = exp.DataType.Type
#: The float types sqlglot annotates (real and double precision).
FLOAT_TYPES = {_T.FLOAT, _T.DOUBLE}


# -- PostgreSQL's string functions, as the loom_* functions of .functions


def check_function(name: str, known: bool = False) -> None:
    """Nothing when SQLite (or loomdb on it) has function ``name``; else
    NotSupportedError (0A000) for a function PostgreSQL has (or one sqlglot
    ``known`` from PostgreSQL's grammar), ProgrammingError (42883,
    undefined_function, as PostgreSQL raises) for one it does not."""
    if name.lower() in sqlite_function_names():
        return
    shown = name.lower()
    if known or shown in PG_FUNCTIONS:
        raise NotSupportedError(f"{shown}() is not supported by loomdb on SQLite")
    raise errors.ProgrammingError(f"function {shown}() does not exist", sqlstate="42883")


def _call(name: str) -> _Transform:
    """A function written as ``name(its arguments)``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(args...)``."""
        args = [e.args.get(key) for key in e.arg_types]
        flat: list[exp.Expr] = []
        for arg in args:
            if isinstance(arg, list):
                flat.extend(arg)
            elif isinstance(arg, exp.Expression):
                flat.append(arg)
        return self.func(name, *flat)

    return generate


def _refuse(name: str) -> _Transform:
    """A PostgreSQL function the SQLite engine cannot run exactly: NotSupportedError."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """Raises."""
        raise NotSupportedError(f"{name}() is not supported by loomdb on SQLite")

    return generate


def _pad(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``lpad``/``rpad(s, n [, fill])``."""
    name = "loom_lpad" if e.args.get("is_left") else "loom_rpad"
    return self.func(name, e.this, e.expression, e.args.get("fill_pattern"))


def _regexp_like(insensitive: bool) -> _Transform:
    """``s ~ pattern`` / ``s ~* pattern`` (flags refused)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``loom_regexp_match(s, pattern, insensitive)``."""
        if e.args.get("flag"):
            raise NotSupportedError("regular expression flags are not supported by loomdb on SQLite")
        return self.func("loom_regexp_match", e.this, e.expression, exp.Literal.number(int(insensitive)))

    return generate


def _regexp_replace(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``regexp_replace(s, pattern, replacement [, flags])`` (no start position)."""
    if e.args.get("position") or e.args.get("occurrence"):
        raise NotSupportedError("regexp_replace() with a start position is not supported by loomdb on SQLite")
    if e.args.get("replacement") is None:
        raise errors.ProgrammingError("function regexp_replace() needs a replacement", sqlstate="42883")
    return self.func(
        "loom_regexp_replace", e.this, e.expression, e.args.get("replacement"), e.args.get("modifiers")
    )


def _str_position(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``strpos(s, sub)`` / ``position(sub IN s)`` as SQLite's instr (1-based, 0 when absent)."""
    if e.args.get("position") or e.args.get("occurrence"):
        raise NotSupportedError("strpos() with a start position is not supported by loomdb on SQLite")
    return self.func("INSTR", e.this, e.args.get("substr"))


def _not_over_window(pg_name: str, e: exp.Expr) -> None:
    """NotSupportedError for loomdb's aggregate ``pg_name`` used as a window
    function (``OVER``): they are plain aggregates on SQLite."""
    if isinstance(e.parent, exp.Window):
        raise NotSupportedError(f"{pg_name}() OVER (...) is not supported by loomdb on SQLite")


def _bool_agg(name: str) -> _Transform:
    """``bool_and`` / ``bool_or`` as loomdb's aggregate ``name``."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(value)``."""
        _not_over_window(e.meta.get(WRITTEN_NAME) or name.removeprefix("loom_"), e)
        return self.func(name, e.this)

    return generate


def _is_float(node: exp.Expr) -> bool:
    """Whether sqlglot typed ``node`` as a float."""
    dtype = node.type if isinstance(node, exp.Expression) else None
    return dtype is not None and dtype.this in FLOAT_TYPES


def _is_float8(value: exp.Expr) -> bool:
    """Whether ``value`` is double precision in PostgreSQL: typed as a float and
    made from a float column (of a table, or of a subquery or CTE whose column
    is such a value) or a cast to double precision. sqlglot types a literal
    such as 1.5 as a float too, but PostgreSQL's is numeric; a cast to real is
    float4, whose values PostgreSQL rounds first."""
    if not _is_float(value):
        return False
    if isinstance(value, exp.Column):
        source = _derived_projection(value)
        return source is True or (isinstance(source, exp.Expression) and _is_float8(source))
    if isinstance(value, exp.Cast):
        return value.to.this == _T.DOUBLE
    if isinstance(value, exp.Literal):
        return False
    return any(_is_float8(node) for node in value.iter_expressions())


def _derived_projection(column: exp.Column) -> exp.Expr | bool:
    """What ``column`` reads: True for a table's column, the projection for a
    subquery's or CTE's, False when not known (VALUES, a set operation...)."""
    select = column.find_ancestor(exp.Select)
    if select is None:
        return False
    sources = [select.args.get("from_") or select.args.get("from")] + list(select.args.get("joins") or [])
    for source in sources:
        node = source.this if isinstance(source, (exp.From, exp.Join)) else None
        if node is None or node.alias_or_name != column.table:
            continue
        inner: exp.Expr | None = None
        if isinstance(node, exp.Subquery):
            inner = node.this
        elif isinstance(node, exp.Table):
            inner = _cte(select, node.name)
            if inner is None:
                return True
        if not isinstance(inner, exp.Select):
            return False
        for projection in inner.expressions:
            if projection.alias_or_name == column.name:
                return projection.unalias()
        return False
    return False


def _cte(node: exp.Expr, name: str) -> exp.Expr | None:
    """The query of the CTE ``name`` visible from ``node``, if any."""
    scope: exp.Expr | None = node
    while scope is not None:
        with_ = scope.args.get("with_") or scope.args.get("with")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                if cte.alias == name:
                    return cte.this
        scope = scope.parent
    return None


def _float_aggregate(pg_name: str, name: str) -> _Transform:
    """``stddev`` / ``variance`` & co. as loomdb's aggregate ``name`` over double
    precision (float8 result, as PostgreSQL's); refused over integers and
    numerics, whose result is a NUMERIC of PostgreSQL's scale in PostgreSQL."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``name(value)``, or NotSupportedError."""
        _not_over_window(pg_name, e)
        if not _is_float8(e.this):
            raise NotSupportedError(
                f"{pg_name}() is not supported by loomdb on SQLite"
                " (over double precision only: over integers and numerics PostgreSQL's result is NUMERIC)"
            )
        return self.func(name, e.this)

    return generate


# -- LIKE, ILIKE, SIMILAR TO, substr, to_hex, COLLATE

_BACKSLASH = "\\"
_TEXT = {_T.TEXT, _T.VARCHAR}


def _like_body(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``a [NOT] LIKE b`` (ILIKE as LIKE of both sides lower-cased: the C locale's
    ASCII case folding, as SQLite's LOWER), without the ESCAPE clause."""
    left, right = self.sql(e.this), self.sql(e.expression)
    if isinstance(e, exp.ILike):
        left, right = f"LOWER({left})", f"LOWER({right})"
    op = "NOT LIKE" if e.args.get("negate") else "LIKE"
    return f"{left} {op} {right}"


def _like(self: SQLiteGenerator, e: exp.Expr) -> str:
    """LIKE / ILIKE with PostgreSQL's default escape character, the backslash
    (SQLite has none by default); LIKE ANY/ALL refused."""
    if isinstance(e.expression, (exp.Any, exp.All)):
        raise NotSupportedError("LIKE ANY/ALL (...) is not supported by loomdb on SQLite")
    body = _like_body(self, e)
    if isinstance(e.parent, exp.Escape) and e.parent.this is e:
        return body
    pattern = e.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string and _BACKSLASH not in pattern.this:
        return body  # nothing to escape: no ESCAPE clause, which keeps SQLite's LIKE optimisation
    return f"{body} ESCAPE '{_BACKSLASH}'"


def _escape(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``... LIKE b ESCAPE c`` (an empty ``c``: no escape character, as in
    PostgreSQL) and ``... SIMILAR TO b ESCAPE c``."""
    inner = e.this
    if isinstance(inner, exp.SimilarTo):
        return _similar_sql(self, inner, e.expression)
    if not isinstance(inner, (exp.Like, exp.ILike)):
        return f"{self.sql(inner)} ESCAPE {self.sql(e.expression)}"
    if isinstance(inner.expression, (exp.Any, exp.All)):
        raise NotSupportedError("LIKE ANY/ALL (...) is not supported by loomdb on SQLite")
    escape = e.expression
    if isinstance(escape, exp.Literal) and escape.is_string and escape.this == "":
        return _like_body(self, inner)
    return f"{_like_body(self, inner)} ESCAPE {self.sql(escape)}"


def _similar_sql(self: SQLiteGenerator, e: exp.Expr, escape: exp.Expr | None) -> str:
    """``s [NOT] SIMILAR TO pattern`` as loomdb's translation to a regular expression."""
    call = self.func("loom_similar", e.this, e.expression, escape or exp.Literal.string(_BACKSLASH))
    return f"NOT {call}" if e.args.get("negate") else call


def _substring(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``substr``/``substring(s FROM start FOR length)`` with PostgreSQL's start before
    the first character and its error for a negative length (SQLite's SUBSTR counts a
    negative start from the end): SQLite's own for a positive start and a length that
    is a literal not below zero; ``substring(s FROM pattern)`` as a regular expression."""
    start, length = e.args.get("start"), e.args.get("length")
    textual = (isinstance(start, exp.Literal) and start.is_string) or (
        isinstance(start, exp.Expression) and start.type is not None and start.type.this in _TEXT
    )
    if textual and length is None and e.meta.get(WRITTEN_NAME) == "substring":
        return self.func("loom_substring_regex", e.this, start)
    positive = isinstance(start, exp.Literal) and start.is_int and int(start.this) >= 1
    if positive and (length is None or (isinstance(length, exp.Literal) and length.is_int)):
        return self.func("SUBSTR", e.this, start, length)
    return self.func("loom_substr", e.this, start, length)


def _to_hex(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``to_hex(n)``: a negative integer as its 32-bit (64-bit for bigint) two's complement;
    ProgrammingError 42883 for a type PostgreSQL has no to_hex for."""
    kind = e.this.type.this if isinstance(e.this, exp.Expression) and e.this.type else None
    if kind == _T.SMALLINT:
        raise errors.ProgrammingError("function to_hex(smallint) is not unique", sqlstate="42725")
    literal = e.this if isinstance(e.this, exp.Literal) and e.this.is_int else None
    bits = 64 if kind == _T.BIGINT or (literal is not None and abs(int(literal.this)) >= 2**31) else 32
    if kind not in (_T.INT, _T.SMALLINT, _T.TINYINT, _T.BIGINT, _T.UNKNOWN, _T.NULL, None) or (
        isinstance(e.this, exp.Literal) and not e.this.is_int
    ):
        shown = (
            "numeric"
            if kind == _T.DOUBLE or kind == _T.DECIMAL
            else str(kind.value).lower()
            if kind
            else "unknown"
        )
        raise errors.ProgrammingError(f"function to_hex({shown}) does not exist", sqlstate="42883")
    return self.func("loom_to_hex", e.this, exp.Literal.number(bits))


#: The meta key marking a COLLATE loomdb added (jsonb's order), which is passed through.
LOOMDB_COLLATION = "loom_collation"
#: PostgreSQL's collations SQLite has, by exact name: "C", "POSIX" and ucs_basic are byte
#: (code point) order, SQLite's BINARY; "default" is the database's, which SQLite uses.
_COLLATIONS = {"C": "BINARY", "POSIX": "BINARY", "ucs_basic": "BINARY", "default": None}


def _collation_name(e: exp.Expr) -> str:
    """The collation a COLLATE clause names (PostgreSQL folds an unquoted name to lower case)."""
    name = e.expression
    text = name.name if isinstance(name, exp.Expression) else str(name)
    return text if isinstance(name, exp.Identifier) and name.quoted else text.lower()


def _collate(self: SQLiteGenerator, e: exp.Expr) -> str:
    """``x COLLATE "C"`` (or "POSIX", ucs_basic) as SQLite's BINARY; another collation
    refused; two different explicit collations meeting in one operator raise 42P21."""
    if e.meta.get(LOOMDB_COLLATION):
        return f"{self.sql(e.this)} COLLATE {e.expression.name}"
    text = _collation_name(e)
    parent = e.parent
    if isinstance(parent, exp.Binary):
        other = parent.expression if parent.this is e else parent.this
        while isinstance(other, exp.Paren):
            other = other.this
        if isinstance(other, exp.Collate) and _collation_name(other) != text:
            first, second = (
                (text, _collation_name(other)) if parent.this is e else (_collation_name(other), text)
            )
            raise errors.ProgrammingError(
                f'collation mismatch between explicit collations "{first}" and "{second}"', sqlstate="42P21"
            )
    if text not in _COLLATIONS:
        raise NotSupportedError(
            f'COLLATE "{text}" is not supported by loomdb on SQLite (only "C", "POSIX" and ucs_basic, byte order)'
        )
    collation = _COLLATIONS[text]
    return self.sql(e.this) if collation is None else f"{self.sql(e.this)} COLLATE {collation}"


#: Anonymous calls (functions sqlglot does not know) of PostgreSQL's that loomdb implements.
def _quote(nullable: bool) -> _Transform:
    """``quote_literal(value)`` / ``quote_nullable(value)`` (``NULL`` for NULL) over text
    and integers; other types refused (their text form differs on SQLite)."""

    def generate(self: SQLiteGenerator, e: exp.Expr) -> str:
        """``loom_quote_literal(value)``, or NotSupportedError."""
        name = "quote_nullable" if nullable else "quote_literal"
        args = e.expressions
        kind = args[0].type.this if len(args) == 1 and args[0].type is not None else None
        if len(args) != 1 or kind not in (*_TEXT, _T.INT, _T.BIGINT, _T.SMALLINT, _T.UNKNOWN, _T.NULL):
            raise NotSupportedError(
                f"{name}() is not supported by loomdb on SQLite (over text and integers only)"
            )
        call = self.func("loom_quote_literal", args[0])
        return f"COALESCE({call}, 'NULL')" if nullable else call

    return generate


STRING_CALLS: dict[str, _Transform] = {
    "QUOTE_LITERAL": _quote(nullable=False),
    "QUOTE_NULLABLE": _quote(nullable=True),
}

#: sqlglot's expressions for PostgreSQL's string functions.
STRING_TRANSFORMS: dict[type[exp.Expr], _Transform] = {
    exp.Left: _call("loom_left"),
    exp.Right: _call("loom_right"),
    exp.Repeat: lambda self, e: self.func("loom_repeat", e.this, e.args.get("times")),
    exp.Reverse: _call("loom_reverse"),
    exp.Initcap: lambda self, e: self.func("loom_initcap", e.this),
    exp.Pad: _pad,
    exp.MD5: _call("loom_md5"),
    exp.SplitPart: lambda self, e: self.func(
        "loom_split_part", e.this, e.args.get("delimiter"), e.args.get("part_index")
    ),
    exp.Translate: lambda self, e: self.func("loom_translate", e.this, e.args.get("from_"), e.args.get("to")),
    exp.StartsWith: _call("loom_starts_with"),
    exp.Ascii: _call("loom_ascii"),
    exp.Chr: lambda self, e: (
        self.func("loom_chr", *e.expressions) if len(e.expressions) == 1 else _refuse("chr")(self, e)
    ),
    exp.Hex: _to_hex,
    exp.Like: _like,
    exp.ILike: _like,
    exp.Escape: _escape,
    exp.SimilarTo: lambda self, e: _similar_sql(self, e, None),
    exp.Substring: _substring,
    exp.Collate: _collate,
    exp.RegexpLike: _regexp_like(insensitive=False),
    exp.RegexpILike: _regexp_like(insensitive=True),
    exp.RegexpReplace: _regexp_replace,
    exp.StrPosition: _str_position,
    exp.LogicalAnd: _bool_agg("loom_bool_and"),
    exp.LogicalOr: _bool_agg("loom_bool_or"),
    exp.Stddev: _float_aggregate("stddev", "loom_stddev_samp"),
    exp.StddevSamp: _float_aggregate("stddev_samp", "loom_stddev_samp"),
    exp.StddevPop: _float_aggregate("stddev_pop", "loom_stddev_pop"),
    exp.Variance: _float_aggregate("variance", "loom_var_samp"),
    exp.VariancePop: _float_aggregate("var_pop", "loom_var_pop"),
}
