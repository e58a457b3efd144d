"""The SQL dialect loomdb reads: PostgreSQL with pgvector's operators.

sqlglot's Postgres dialect knows ``<->`` but reads ``<=>`` as MySQL's
null-safe equality and fails on ``<#>``; :class:`LoomPostgres` fixes both.
The dialects loomdb writes are each engine's own, beside the engine
(``loomdb.backend.sqlite.dialect``, ``loomdb.backend.postgres.dialect``).

>>> parse("SELECT id FROM t ORDER BY e <=> $1 LIMIT 5").sql(dialect=LoomPostgres)
'SELECT id FROM t ORDER BY e <=> $1 LIMIT 5'
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, TokenError
from sqlglot.generators.postgres import PostgresGenerator
from sqlglot.helper import seq_get
from sqlglot.parser import binary_range_parser
from sqlglot.parsers.postgres import PostgresParser
from sqlglot.tokens import TokenType

from ..errors import NotSupportedError, ProgrammingError

# sqlglot logs a warning when it falls back to a generic Command; loomdb reports
# those statements itself with NotSupportedError.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


class CosineDistance(exp.Expression, exp.Binary):
    """pgvector's ``a <=> b``: cosine distance."""


class NegativeInnerProduct(exp.Expression, exp.Binary):
    """pgvector's ``a <#> b``: the negative inner product."""


class L1Distance(exp.Expression, exp.Binary):
    """pgvector's ``a <+> b``: the L1 (taxicab) distance."""


class BitDistance(exp.Expression, exp.Binary):
    """pgvector's ``a <~> b`` (Hamming) or ``a <%> b`` (Jaccard) over bit vectors,
    which loomdb does not have: parsed only to be refused by name."""


# Token types sqlglot does not use for PostgreSQL; they carry pgvector's operators.
_COSINE_TOKEN = TokenType.NULLSAFE_EQ
_INNER_TOKEN = TokenType.DOTCARET
_L1_TOKEN = TokenType.COLON_GT
_BIT_TOKEN = TokenType.NCOLON_GT

VECTOR_OPERATORS = (exp.Distance, CosineDistance, NegativeInnerProduct, L1Distance)

#: The meta key of the function name as written (``substr``, ``strpos``, ``mod``): sqlglot
#: reads many names into one node (``substr`` and ``substring`` are both ``Substring``),
#: and PostgreSQL names a result column after the name written.
WRITTEN_NAME = "loom_name"

# The FUNCTION_PARSERS that read a cast, not a function call.
_CAST_PARSERS = frozenset({"CAST", "TRY_CAST", "SAFE_CAST", "CONVERT", "TRY_CONVERT"})


def _recording_name(name: str, parser):  # type: ignore[no-untyped-def]
    """``parser`` (a FUNCTION_PARSERS entry), recording ``name`` as the written name."""

    def parse_named(self):  # type: ignore[no-untyped-def]
        node = parser(self)
        if isinstance(node, exp.Expression) and WRITTEN_NAME not in node.meta:
            node.meta[WRITTEN_NAME] = name.lower()
        return node

    return parse_named


def _unicode_escapes(text: str, escape: exp.Expression | None) -> str:
    """The value of PostgreSQL's ``U&'...'`` string: ``\\XXXX`` and ``\\+XXXXXX``
    (or the UESCAPE character's) code points; ProgrammingError (42601) for an invalid one."""
    mark = str(escape.this) if isinstance(escape, exp.Literal) else "\\"
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char != mark:
            out.append(char)
            i += 1
            continue
        if text[i + 1 : i + 2] == mark:
            out.append(mark)
            i += 2
            continue
        width = 6 if text[i + 1 : i + 2] == "+" else 4
        start = i + (2 if width == 6 else 1)
        digits = text[start : start + width]
        if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ProgrammingError("invalid Unicode escape in U&'...' string", sqlstate="42601")
        out.append(chr(int(digits, 16)))
        i = start + width
    return "".join(out)


def _delete_path(self: PostgresParser, this: exp.Expr | None) -> exp.Expr | None:
    """jsonb's ``a #- b``; PostgreSQL's ``#-`` and ``||`` share a precedence, left
    to right, so ``a #- b || c`` is ``(a #- b) || c`` (sqlglot reads ``a #- (b || c)``)."""
    node = _DELETE_PATH(self, this)
    top = node.expression if node is not None else None
    if not isinstance(top, exp.DPipe):
        return node
    leftmost = top
    while isinstance(leftmost.this, exp.DPipe):
        leftmost = leftmost.this
    leftmost.set("this", exp.JSONBDeleteAtPath(this=this, expression=leftmost.this))
    return top


_DELETE_PATH = binary_range_parser(exp.JSONBDeleteAtPath)


class LoomPostgresParser(PostgresParser):
    """PostgreSQL's parser plus pgvector's operators."""

    # Special-syntax functions (TRIM, POSITION, SUBSTRING, STRING_AGG...) record their name as the
    # other calls do (the dialect's ORIGINAL_NAME_META_KEY); casts are no calls.
    FUNCTION_PARSERS = {
        name: parser if name in _CAST_PARSERS else _recording_name(name, parser)
        for name, parser in PostgresParser.FUNCTION_PARSERS.items()
    }

    RANGE_PARSERS = {**PostgresParser.RANGE_PARSERS, TokenType.HASH_DASH: _delete_path}

    # every() is the SQL standard's bool_and(), named after the name written.
    FUNCTIONS = {
        **PostgresParser.FUNCTIONS,
        "EVERY": lambda args: exp.LogicalAnd(this=seq_get(args, 0)),
    }

    # E'...' (escape strings, unescaped by the tokenizer) and U&'...' are text
    # literals: sqlglot reads them as byte and unicode strings.
    PRIMARY_PARSERS = {
        **PostgresParser.PRIMARY_PARSERS,
        TokenType.UNICODE_STRING: lambda self, token: self.expression(
            exp.Literal.string(
                _unicode_escapes(
                    token.text, self._parse_string() if self._match_text_seq("UESCAPE") else None
                )
            ),
            token,
        ),
    }
    NUMERIC_PARSERS = {
        **PostgresParser.NUMERIC_PARSERS,
        TokenType.BYTE_STRING: lambda self, token: self.expression(exp.Literal.string(token.text), token),
    }
    PRIMARY_PARSERS[TokenType.BYTE_STRING] = NUMERIC_PARSERS[TokenType.BYTE_STRING]

    # pgvector's operators bind like PostgreSQL's "any other operator":
    # looser than + and -, tighter than comparisons.
    EQUALITY = {k: v for k, v in PostgresParser.EQUALITY.items() if k != _COSINE_TOKEN}
    FACTOR = {k: v for k, v in PostgresParser.FACTOR.items() if v is not exp.Distance}
    BITWISE = {
        **PostgresParser.BITWISE,
        TokenType.LR_ARROW: exp.Distance,
        _COSINE_TOKEN: CosineDistance,
        _INNER_TOKEN: NegativeInnerProduct,
        _L1_TOKEN: L1Distance,
        _BIT_TOKEN: BitDistance,
    }


_PG_SUBSTRING = PostgresGenerator.TRANSFORMS[exp.Substring]


def _substring_sql(self: PostgresGenerator, e: exp.Substring) -> str:
    """``substr(s, start[, n])`` as written: sqlglot would write SUBSTRING(s FROM start),
    which PostgreSQL reads as a regular expression match when ``start`` is a string."""
    if e.meta.get(WRITTEN_NAME) == "substr":
        return self.func("substr", e.this, e.args.get("start"), e.args.get("length"))
    return _PG_SUBSTRING(self, e)


class LoomPostgresGenerator(PostgresGenerator):
    """PostgreSQL's generator, writing pgvector's operators back as operators."""

    TRANSFORMS = {
        **PostgresGenerator.TRANSFORMS,
        CosineDistance: lambda self, e: self.binary(e, "<=>"),
        NegativeInnerProduct: lambda self, e: self.binary(e, "<#>"),
        L1Distance: lambda self, e: self.binary(e, "<+>"),
        # sqlglot reads to_hex() as its Hex node and would write hex(), which PostgreSQL lacks.
        exp.Hex: lambda self, e: self.func("to_hex", e.this),
        exp.Substring: _substring_sql,
    }

    def function_name(self, expression: exp.Func) -> str:
        """sqlglot's name of the function, not the written one the parser records."""
        return expression.sql_name()


# -- PostgreSQL's result types of sum, avg and float4 arithmetic ---------------------------

_D = exp.DataType.Type
_INTEGERS = {_D.TINYINT, _D.SMALLINT, _D.INT, _D.BIGINT}
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)


def _arg_type(e: exp.Expression) -> Any:
    """The annotated type of an aggregate's argument (None when unknown)."""
    arg = e.this
    if isinstance(arg, exp.Distinct) and arg.expressions:
        arg = arg.expressions[0]
    return arg.type.this if isinstance(arg, exp.Expression) and arg.type else None


def _annotate_avg(self: Any, e: exp.Avg) -> exp.Avg:
    """avg: numeric for integers and numerics, a vector for vectors, double precision otherwise."""
    kind = _arg_type(e)
    if kind == _D.VECTOR:
        self._set_type(e, e.this.type)
        return e
    self._set_type(e, _D.DECIMAL if kind in _INTEGERS or kind == _D.DECIMAL else _D.DOUBLE)
    return e


def _annotate_distance(self: Any, e: exp.Expression) -> exp.Expression:
    """pgvector's distances are double precision."""
    self._set_type(e, _D.DOUBLE)
    return e


def _annotate_variance(self: Any, e: exp.Expression) -> exp.Expression:
    """stddev/variance & co.: numeric for integers and numerics, double precision otherwise."""
    kind = _arg_type(e)
    self._set_type(e, _D.DECIMAL if kind in _INTEGERS or kind == _D.DECIMAL else _D.DOUBLE)
    return e


def _annotate_sum(self: Any, e: exp.Sum) -> exp.Sum:
    """sum: bigint for smallint and integer, numeric for bigint and numeric,
    the argument's type for the float types."""
    _SUM_FALLBACK(self, e)
    kind = _arg_type(e)
    if kind in (_D.SMALLINT, _D.INT, _D.TINYINT):
        self._set_type(e, _D.BIGINT)
    elif kind in (_D.BIGINT, _D.DECIMAL):
        self._set_type(e, _D.DECIMAL)
    elif kind in (_D.FLOAT, _D.DOUBLE):
        self._set_type(e, kind)
    return e


def _annotate_arithmetic(self: Any, e: exp.Binary) -> exp.Binary:
    """+ - * / %: a real with anything but a real gives double precision (PostgreSQL's
    float48 operators), where sqlglot would say real; numeric with numeric or an
    integer gives numeric."""
    self._annotate_binary(e)
    kinds = {side.type.this if side.type else None for side in (e.left, e.right)}
    if _D.VECTOR in kinds:  # pgvector's element-wise + - * give a vector
        self._set_type(e, next(s.type for s in (e.left, e.right) if s.type and s.type.this == _D.VECTOR))
        return e
    if e.type is not None and e.type.this == _D.FLOAT and kinds != {_D.FLOAT}:
        self._set_type(e, _D.DOUBLE)
    elif kinds & {_D.FLOAT, _D.DOUBLE} and kinds & ({_D.DECIMAL} | _INTEGERS):
        self._set_type(e, _D.DOUBLE)  # numeric and integers meet a float as double precision
    elif _D.DECIMAL in kinds and kinds <= {_D.DECIMAL} | _INTEGERS and not e.is_type(_D.DECIMAL):
        self._set_type(e, _D.DECIMAL)
    elif _D.DECIMAL in kinds and any(
        isinstance(side, (exp.Parameter, exp.Placeholder)) for side in (e.left, e.right)
    ):
        self._set_type(e, _D.DECIMAL)  # PostgreSQL types a parameter meeting a numeric numeric
    return e


def _annotate_extract(self: Any, e: exp.Extract) -> exp.Extract:
    """EXTRACT is numeric (PostgreSQL 14+); ``date_part``, which sqlglot reads as the
    same node, is double precision."""
    self._set_type(e, _D.DOUBLE if e.meta.get(WRITTEN_NAME) == "date_part" else _D.DECIMAL)
    return e


def _annotate_date_trunc(self: Any, e: exp.TimestampTrunc) -> exp.TimestampTrunc:
    """date_trunc keeps a timestamp's type; a date is truncated as a timestamptz."""
    kind = e.this.type.this if isinstance(e.this, exp.Expression) and e.this.type else None
    self._set_type(e, kind if kind in (_D.TIMESTAMP, _D.TIMESTAMPTZ) else _D.TIMESTAMPTZ)
    return e


def _annotate_round(self: Any, e: exp.Round) -> exp.Round:
    """round(numeric[, n]) is numeric."""
    if e.this.type is not None and e.this.type.this == _D.DECIMAL:
        self._set_type(e, _D.DECIMAL)
    else:
        self._set_type(e, _D.DOUBLE)
    return e


def _annotate_number(self: Any, e: exp.Literal) -> exp.Literal:
    """A number literal with a point or an exponent (``3.0``, ``1e3``), or an integer
    beyond bigint, is numeric in PostgreSQL (sqlglot says double); an integer past
    32 bits is a bigint (sqlglot says integer whatever its size)."""
    self._annotate_literal(e)
    if e.is_number and (not e.is_int or abs(int(e.this)) > 2**63 - 1):
        self._set_type(e, _D.DECIMAL)
    elif e.is_number and str(e.this).isdigit() and (1 << 31) <= int(e.this) < (1 << 63):
        self._set_type(e, _D.BIGINT)
    return e


def _sqlglot_annotator(node: type[exp.Expression]) -> Any:
    """sqlglot's annotator of ``node`` for PostgreSQL (its fixed result type as one)."""
    spec = Postgres.EXPRESSION_METADATA[node]
    if "annotator" in spec:
        return spec["annotator"]
    returns = spec["returns"]
    return lambda self, e: self._set_type(e, returns)


def _kinds(nodes: Any) -> set[Any]:
    """The annotated kinds of ``nodes`` (None for an untyped one)."""
    return {n.type.this if isinstance(n, exp.Expression) and n.type else None for n in nodes}


def _numeric_of_arg(fallback: Any) -> Any:
    """An annotator of a function of a number (abs, ceil, floor, sign, sqrt, trunc, ln,
    exp, log): numeric for a numeric argument (and log(b, x) of integers), else sqlglot's own."""

    def annotate(self: Any, e: exp.Func) -> exp.Func:
        fallback(self, e)
        kinds = _kinds(a for a in (e.this, e.args.get("expression")) if a is not None)
        if (
            isinstance(e, exp.Log)
            and e.args.get("expression") is not None
            and kinds <= {_D.DECIMAL} | _INTEGERS
        ):
            self._set_type(e, _D.DECIMAL)  # log(b, x) is numeric only
        elif e.this is not None and e.this.type is not None and e.this.type.this == _D.DECIMAL:
            self._set_type(e, _D.DECIMAL)
        return e

    return annotate


def _numeric_of_args(fallback: Any) -> Any:
    """An annotator of a call whose result is its arguments' common type (greatest,
    least, coalesce, nullif, CASE, ^): numeric when numerics meet integers."""

    def annotate(self: Any, e: exp.Expression) -> exp.Expression:
        fallback(self, e)
        values: list[Any] = [e.this, e.expression, *e.expressions]
        if isinstance(e, exp.Case):
            values = [i.args.get("true") for i in e.args.get("ifs") or []] + [e.args.get("default")]
        kinds = _kinds(v for v in values if v is not None and not isinstance(v, exp.Null)) - {_D.NULL}
        if _D.DECIMAL in kinds and kinds <= {_D.DECIMAL} | _INTEGERS:
            if e.type is None or e.type.this != _D.DECIMAL:
                self._set_type(e, _D.DECIMAL)
        elif isinstance(e, exp.Pow) and kinds <= _INTEGERS:
            self._set_type(e, _D.DOUBLE)  # integer ^ integer is double precision
        return e

    return annotate


_SUM_FALLBACK = Postgres.EXPRESSION_METADATA[exp.Sum]["annotator"]
_LITERAL_FALLBACK = Postgres.EXPRESSION_METADATA[exp.Literal]["annotator"]


class LoomPostgres(Postgres):
    """PostgreSQL as loomdb reads it: Postgres plus pgvector's operators.

    An ORDER BY without NULLS FIRST/LAST sorts NULLs as PostgreSQL does (as
    larger than every value: last ascending, first descending); the parsed
    ``Ordered`` nodes say so explicitly, so the SQLite generator spells the
    order out where SQLite's differs (SQLite 3.30+ still reads an index in
    order for ``ORDER BY k DESC NULLS FIRST``).
    """

    NULL_ORDERING = "nulls_are_large"
    ORIGINAL_NAME_META_KEY = WRITTEN_NAME

    EXPRESSION_METADATA = {
        **Postgres.EXPRESSION_METADATA,
        exp.Avg: {"annotator": _annotate_avg},
        exp.Sum: {"annotator": _annotate_sum},
        exp.Round: {"annotator": _annotate_round},
        exp.Extract: {"annotator": _annotate_extract},
        exp.TimestampTrunc: {"annotator": _annotate_date_trunc},
        **{op: {"annotator": _annotate_distance} for op in (*VECTOR_OPERATORS, exp.CosineDistance)},
        **{
            node: {"annotator": _annotate_variance}
            for node in (exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance, exp.VariancePop)
        },
        exp.Literal: {"annotator": _annotate_number},
        **{
            node: {"annotator": _numeric_of_arg(_sqlglot_annotator(node))}
            for node in (exp.Abs, exp.Ceil, exp.Floor, exp.Sign, exp.Sqrt, exp.Ln, exp.Exp, exp.Log)
        },
        exp.Trunc: {"annotator": _numeric_of_arg(lambda self, e: self._set_type(e, _D.DOUBLE))},
        **{
            node: {"annotator": _numeric_of_args(_sqlglot_annotator(node))}
            for node in (exp.Greatest, exp.Least, exp.Coalesce, exp.Nullif, exp.Case, exp.Pow)
        },
        **{op: {"annotator": _annotate_arithmetic} for op in _ARITHMETIC},
    }

    class Tokenizer(Postgres.Tokenizer):
        """PostgreSQL's tokens plus pgvector's ``<=>``, ``<#>``, ``<+>`` (and the
        bit-vector ``<~>`` and ``<%>``, refused)."""

        KEYWORDS = {
            **Postgres.Tokenizer.KEYWORDS,
            "<=>": _COSINE_TOKEN,
            "<#>": _INNER_TOKEN,
            "<+>": _L1_TOKEN,
            "<~>": _BIT_TOKEN,
            "<%>": _BIT_TOKEN,
        }

    Parser = LoomPostgresParser
    Generator = LoomPostgresGenerator


@lru_cache(maxsize=4096)
def _parse_cached(sql: str) -> tuple[exp.Expression, ...]:
    """The statements of ``sql`` (cached); ProgrammingError with the position when malformed."""
    try:
        statements = sqlglot.parse(sql, dialect=LoomPostgres)
    except ParseError as err:
        detail = err.errors[0] if err.errors else {}
        where = ""
        if detail.get("line") is not None:
            where = f" at line {detail['line']}, column {detail['col']}"
        near = detail.get("highlight") or ""
        if near.upper() == "OVERRIDING":
            raise NotSupportedError(
                "INSERT ... OVERRIDING SYSTEM/USER VALUE is not supported by loomdb"
            ) from None
        desc = detail.get("description") or str(err)
        raise ProgrammingError(
            f"syntax error{where}" + (f" near {near!r}" if near else "") + f": {desc}", sqlstate="42601"
        ) from None
    except TokenError as err:
        raise ProgrammingError(f"syntax error: {err}", sqlstate="42601") from None
    out = tuple(s for s in statements if s is not None)
    for statement in out:
        _reject_other_grammars(statement)
    return out


def _reject_other_grammars(statement: exp.Expression) -> None:
    """ProgrammingError 42601, as PostgreSQL's parser raises, for what sqlglot
    accepts from other SQL dialects: SQLite's ``INSERT OR REPLACE`` / ``OR
    IGNORE`` and an empty ``IN ()``."""
    if isinstance(statement, exp.Insert) and statement.args.get("alternative"):
        raise ProgrammingError('syntax error at or near "OR"', sqlstate="42601")
    for node in statement.find_all(exp.In):
        if not node.expressions and not any(
            node.args.get(k) is not None for k in ("query", "unnest", "field")
        ):
            raise ProgrammingError('syntax error at or near ")": IN () needs a value', sqlstate="42601")


def parse(sql: str) -> exp.Expression:
    """Parse one PostgreSQL statement (cached by text; callers must not mutate the result).

    Raises ProgrammingError with the position for malformed SQL, and for text
    holding no statement or more than one.
    """
    statements = _parse_cached(sql)
    if not statements:
        raise ProgrammingError("empty statement: the SQL text holds no statement")
    if len(statements) > 1:
        raise ProgrammingError(
            f"the SQL text holds {len(statements)} statements; execute them one at a time", sqlstate="42601"
        )
    return statements[0]
