"""The SQL functions and collation the SQLite dialect's output calls.

:mod:`.dialect` turns PostgreSQL's operators, casts and functions into calls
of these (``loom_*``), of sqlite-vec's (``vec_*``) and of SQLite's own JSON
functions; :func:`register` puts them on a connection. A name the dialect
emits must be registered here (``tests/test_backend_contract.py`` checks).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import apsw
import numpy as np
import sqlite_vec

from ... import errors
from ...types import ColumnType, dump_json, load_json, to_storage

if TYPE_CHECKING:
    from apsw import SQLiteValue

#: The collation of NUMERIC columns (stored as decimal text, compared as numbers).
NUMERIC_COLLATION = "loom_numeric"


def jsonb_contains(left: Any, right: Any) -> bool:
    """PostgreSQL's jsonb ``left @> right`` over parsed JSON values."""
    if isinstance(left, dict):
        return isinstance(right, dict) and all(
            key in left and jsonb_contains(left[key], value) for key, value in right.items()
        )
    if isinstance(left, list):
        if isinstance(right, list):
            return all(any(jsonb_contains(item, want) for item in left) for want in right)
        # A top-level array contains a primitive equal to one of its elements.
        return not isinstance(right, dict) and any(
            item == right and type(item) is type(right) for item in left
        )
    return type(left) is type(right) and left == right


def _as_json(value: Any) -> Any:
    """A stored JSON value (text or bytes) parsed; anything else as it is."""
    if isinstance(value, (str, bytes)):
        return load_json(value)
    return value


def _jsonb(value: Any) -> str | None:
    """``value::jsonb``: JSON text in jsonb's normal form (DataError for text that is not JSON)."""
    if value is None:
        return None
    try:
        parsed = _as_json(value)
    except ValueError:
        raise errors.DataError(
            f"invalid input syntax for type json: {str(value)[:80]!r}", sqlstate="22P02"
        ) from None
    return dump_json(parsed)


def _jsonb_concat(a: Any, b: Any) -> str | None:
    """jsonb's ``a || b``: two objects merge (b's value wins for a shared key);
    otherwise both sides, a non-array taken as a one-element array, are joined."""
    if a is None or b is None:
        return None
    left, right = _parse_jsonb(a), _parse_jsonb(b)
    if isinstance(left, dict) and isinstance(right, dict):
        return dump_json({**left, **right})
    items = (left if isinstance(left, list) else [left]) + (right if isinstance(right, list) else [right])
    return dump_json(items)


def _jsonb_delete(doc: Any, key: Any) -> str | None:
    """jsonb's ``doc - key``: an object without ``key``, an array without the
    string elements equal to ``key``, or (an integer ``key``) without that element."""
    if doc is None or key is None:
        return None
    value = _parse_jsonb(doc)
    if isinstance(key, int) and not isinstance(key, bool):
        if not isinstance(value, list):
            raise errors.DataError(
                "cannot delete from object using integer index"
                if isinstance(value, dict)
                else "cannot delete from scalar",
                sqlstate="22023",
            )
        index = key + len(value) if key < 0 else key
        return dump_json([item for i, item in enumerate(value) if i != index])
    if isinstance(value, dict):
        return dump_json({k: v for k, v in value.items() if k != key})
    if isinstance(value, list):
        return dump_json([item for item in value if not (isinstance(item, str) and item == key)])
    raise errors.DataError("cannot delete from scalar", sqlstate="22023")


def _parse_jsonb(value: Any) -> Any:
    """A jsonb operand parsed (DataError for text that is not JSON)."""
    try:
        return _as_json(value)
    except ValueError:
        raise errors.DataError(
            f"invalid input syntax for type json: {str(value)[:80]!r}", sqlstate="22P02"
        ) from None


def _to_int(bits: int) -> Callable[[Any, str], int | None]:
    """``value::smallint/integer/bigint`` as PostgreSQL casts, by ``mode`` (see the
    dialect's ``_int_cast_mode``): numerics rounded half away from zero, floats
    half to even, text only when it is an integer; DataError when the text is
    no integer or the result is out of the type's range."""
    name = {16: "smallint", 32: "integer", 64: "bigint"}[bits]
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def cast(value: Any, mode: str) -> int | None:
        """The cast of one value."""
        if value is None:
            return None
        if isinstance(value, str) and mode in ("t", "a"):
            text = value.strip()
            if not _INTEGER_TEXT.fullmatch(text):
                raise errors.DataError(f'invalid input syntax for type {name}: "{value}"', sqlstate="22P02")
            number = int(text)
        elif isinstance(value, float) and mode != "n":
            if not math.isfinite(value):
                raise errors.DataError(f"{name} out of range", sqlstate="22003")
            number = round(value)  # half to even, as PostgreSQL's rint()
        elif isinstance(value, bytes):
            raise errors.ProgrammingError(f"cannot cast type bytea to {name}", sqlstate="42846")
        else:
            try:
                number = int(Decimal(str(value)).to_integral_value(ROUND_HALF_UP))
            except (InvalidOperation, ValueError):
                raise errors.DataError(
                    f'invalid input syntax for type {name}: "{value}"', sqlstate="22P02"
                ) from None
        if not low <= number <= high:
            raise errors.DataError(f"{name} out of range", sqlstate="22003")
        return number

    return cast


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _divisor(value: Any, no_dividend: int) -> Any:
    """The right side of ``/`` or ``%``: DataError for zero (PostgreSQL's
    "division by zero"; SQLite would return NULL), unless the dividend is NULL
    (``no_dividend``), which PostgreSQL does not divide."""
    if value == 0 and not no_dividend and not isinstance(value, (str, bytes)):
        raise errors.DataError("division by zero", sqlstate="22012")
    return value


def _contains(a: Any, b: Any) -> int | None:
    """``a @> b`` as SQL: NULL when either side is NULL, else 1 or 0."""
    return None if a is None or b is None else int(jsonb_contains(_as_json(a), _as_json(b)))


def _contained(a: Any, b: Any) -> int | None:
    """``a <@ b`` as SQL (``b @> a``)."""
    return _contains(b, a)


def _as_vector(value: Any) -> np.ndarray:
    """A stored vector (float32 bytes or JSON text) as a numpy array; DataError otherwise."""
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype="<f4")
    if isinstance(value, str):
        return np.asarray(load_json(value), dtype=np.float32)
    raise errors.DataError(f"expected a vector, got {type(value).__name__}")


def inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``inner_product(a, b)``: NULL for a NULL side, DataError for
    vectors of different dimensions."""
    if a is None or b is None:
        return None
    x, y = _as_vector(a), _as_vector(b)
    if x.shape != y.shape:
        raise errors.DataError(f"different vector dimensions {x.shape[0]} and {y.shape[0]}", sqlstate="22000")
    return float(np.dot(x.astype(np.float64), y.astype(np.float64)))


def _negative_inner_product(a: Any, b: Any) -> float | None:
    """pgvector's ``a <#> b``."""
    product = inner_product(a, b)
    return None if product is None else -product


def _vector_norm(a: Any) -> float | None:
    """pgvector's ``vector_norm(a)`` (Euclidean), NULL for NULL."""
    return None if a is None else float(np.linalg.norm(_as_vector(a).astype(np.float64)))


def _cast_to(kind: str) -> Callable[[Any], Any]:
    """``CAST(value AS kind)`` for a type SQLite lacks: the value in loomdb's
    storage form, or DataError when it does not convert."""
    ctype = ColumnType.parse(kind)

    def cast(value: Any) -> Any:
        """``value`` in ``kind``'s storage form (NULL stays NULL)."""
        if value is None:
            return None
        try:
            return to_storage(value, ctype, "value")
        except errors.Error as exc:
            raise errors.DataError(f"cannot cast {value!r} to {kind}: {exc}", sqlstate=exc.sqlstate) from None

    return cast


def _decimal_key(text: str) -> Decimal | None:
    """``text`` as a Decimal, or None when it is not a number."""
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


def numeric_collation(a: str, b: str) -> int:
    """Compare two NUMERIC texts as numbers (-1, 0, 1); as text when either is not a number."""
    x, y = _decimal_key(a), _decimal_key(b)
    if x is None or y is None:
        return (a > b) - (a < b)
    return (x > y) - (x < y)


# -- PostgreSQL's string functions (and boolean aggregates, regular expressions)
# PostgreSQL's text functions SQLite lacks, as PostgreSQL defines them: strict
# (NULL for any NULL argument), negative counts as PostgreSQL takes them, and
# PostgreSQL's errors with its SQLSTATE. The dialect calls them as ``loom_<name>``.


def _strict(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` returning NULL when any argument is NULL (a strict SQL function)."""

    def call(*args: Any) -> Any:
        """NULL for a NULL argument, else ``function``'s value."""
        if any(arg is None for arg in args):
            return None
        return function(*args)

    call.__doc__ = function.__doc__
    return call


def _text(value: Any) -> str:
    """A text argument; ProgrammingError 42883 for a number, which PostgreSQL
    does not take as text without a cast (no function matches)."""
    if isinstance(value, str):
        return value
    raise errors.ProgrammingError(
        f"function does not exist: text expected, got {type(value).__name__} (add an explicit cast)",
        sqlstate="42883",
    )


def _count(value: Any) -> int:
    """An integer argument (a count or a position): an int, or text of one
    (PostgreSQL's unknown literal, DataError 22P02 otherwise); ProgrammingError
    42883 for a float or numeric, which PostgreSQL does not take as an integer."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            raise errors.DataError(f'invalid input syntax for type integer: "{value}"', sqlstate="22P02")
        return int(text)
    raise errors.ProgrammingError(
        f"function does not exist: integer expected, got {type(value).__name__} (add an explicit cast)",
        sqlstate="42883",
    )


def _left(s: Any, n: Any) -> str:
    """``left(s, n)``: the first n characters; a negative n drops the last |n|."""
    return _text(s)[: _count(n)]


def _right(s: Any, n: Any) -> str:
    """``right(s, n)``: the last n characters; a negative n drops the first |n|."""
    text, count = _text(s), _count(n)
    return "" if count == 0 else text[-count:]


def _repeat(s: Any, n: Any) -> str:
    """``repeat(s, n)``: s n times (empty for n <= 0)."""
    return _text(s) * max(_count(n), 0)


def _reverse(s: Any) -> str:
    """``reverse(s)``."""
    return _text(s)[::-1]


def _initcap(s: Any) -> str:
    """``initcap(s)``: each word's first letter upper case, the rest lower case
    (words are runs of letters and digits). As in PostgreSQL's C locale (the
    ctype of the databases loomdb is compared with): only ASCII letters change
    case or count as letters."""
    out, in_word = [], False
    for char in _text(s):
        if char.isascii():
            out.append(char.lower() if in_word else char.upper())
            in_word = char.isalnum()
        else:
            out.append(char)
            in_word = False
    return "".join(out)


def _pad(left: bool) -> Callable[..., str]:
    """``lpad``/``rpad(s, n [, fill])``: s filled to n characters (cut to n when longer)."""

    def pad(s: Any, n: Any, fill: Any = " ") -> str:
        """The padded text."""
        text, width, filler = _text(s), _count(n), _text(fill)
        if width <= 0:
            return ""
        if len(text) >= width or not filler:
            return text[:width]
        need = width - len(text)
        padding = (filler * (need // len(filler) + 1))[:need]
        return padding + text if left else text + padding

    return pad


def _md5(s: Any) -> str:
    """``md5(s)``: the hex MD5 digest of the text's UTF-8 bytes (or of bytea)."""
    data = s if isinstance(s, bytes) else _text(s).encode("utf-8")
    return hashlib.md5(data).hexdigest()  # noqa: S324 - PostgreSQL's md5(), not security


def _split_part(s: Any, delimiter: Any, n: Any) -> str:
    """``split_part(s, delimiter, n)``: the n-th field (from the end for negative
    n), empty past the last; DataError for n = 0."""
    text, sep, field = _text(s), _text(delimiter), _count(n)
    if field == 0:
        raise errors.DataError("field position must not be zero", sqlstate="22023")
    if text == "":
        return ""
    parts = text.split(sep) if sep else [text]
    if abs(field) > len(parts):
        return ""
    return parts[field - 1] if field > 0 else parts[field]


def _translate(s: Any, source: Any, target: Any) -> str:
    """``translate(s, from, to)``: each character of ``from`` replaced by the one
    at its position in ``to``, or removed when ``to`` is shorter."""
    frm, to = _text(source), _text(target)
    table: dict[str, str] = {}
    for i, char in enumerate(frm):
        table.setdefault(char, to[i] if i < len(to) else "")
    return "".join(table.get(char, char) for char in _text(s))


def _starts_with(s: Any, prefix: Any) -> int:
    """``starts_with(s, prefix)`` as 1 or 0."""
    return int(_text(s).startswith(_text(prefix)))


def _ascii(s: Any) -> int:
    """``ascii(s)``: the code point of the first character (0 for empty text)."""
    text = _text(s)
    return ord(text[0]) if text else 0


def _chr(n: Any) -> str:
    """``chr(n)``: the character with code point n; PostgreSQL's errors for 0,
    negative numbers, surrogates and numbers past Unicode."""
    code = _count(n)
    if code == 0:
        raise errors.OperationalError("null character not permitted", sqlstate="54000")
    if code < 0:
        raise errors.DataError("character number must be positive", sqlstate="22023")
    if code > 0x10FFFF:
        raise errors.OperationalError(f"requested character too large for encoding: {code}", sqlstate="54000")
    if 0xD800 <= code <= 0xDFFF:
        raise errors.OperationalError(f"requested character not valid for encoding: {code}", sqlstate="54000")
    return chr(code)


#: Escapes PostgreSQL's regular expressions have that Python's re lacks or reads
#: otherwise (word boundaries \m \M \y \Y, \< \>; \b is a backspace there).
_PG_ONLY_ESCAPES = re.compile(r"(?<!\\)(?:\\\\)*\\[mMyYbB<>]")


def _regex(pattern: Any, flags: int) -> re.Pattern[str]:
    """PostgreSQL's regular expression ``pattern`` compiled with Python's re (DataError
    2201B when re rejects it; NotSupportedError for POSIX classes such as [[:alpha:]]
    and the escapes of ``_PG_ONLY_ESCAPES``, which re lacks or reads otherwise)."""
    text = _text(pattern)
    if "[[:" in text or "[[." in text or "[[=" in text or _PG_ONLY_ESCAPES.search(text):
        raise errors.NotSupportedError(
            "this regular expression (POSIX classes, or escapes such as \\m \\y \\b that Python's"
            " re reads otherwise) is not supported by loomdb on SQLite"
        )
    try:
        # re.ASCII: classes such as \w and case folding stay ASCII, as in the C locale.
        return re.compile(text, flags | re.ASCII)
    except re.error as exc:
        raise errors.DataError(f"invalid regular expression: {exc}", sqlstate="2201B") from None


def _regexp_match(s: Any, pattern: Any, insensitive: Any) -> int:
    """``s ~ pattern`` (``~*`` when ``insensitive``) as 1 or 0."""
    return int(_regex(pattern, re.IGNORECASE if insensitive else 0).search(_text(s)) is not None)


def _regexp_replace(s: Any, pattern: Any, replacement: Any, flags: Any = "") -> str:
    """``regexp_replace(s, pattern, replacement [, flags])``: the first match (every
    match with flag g) replaced; \\1..\\9 and \\& in ``replacement`` name groups."""
    options = _text(flags)
    unknown = set(options) - {"g", "i"}
    if unknown:
        raise errors.DataError(f'invalid regular expression option: "{sorted(unknown)[0]}"', sqlstate="22023")
    regex = _regex(pattern, re.IGNORECASE if "i" in options else 0)
    repl = _text(replacement)

    def expand(match: re.Match[str]) -> str:
        """The replacement for one match."""
        out, i = [], 0
        while i < len(repl):
            char = repl[i]
            if char == "\\" and i + 1 < len(repl):
                nxt = repl[i + 1]
                if nxt.isdigit() and nxt != "0":
                    group = int(nxt)
                    out.append((match.group(group) or "") if group <= regex.groups else "")
                    i += 2
                    continue
                if nxt == "&":
                    out.append(match.group(0))
                    i += 2
                    continue
                if nxt == "\\":
                    out.append("\\")
                    i += 2
                    continue
            out.append(char)
            i += 1
        return "".join(out)

    return regex.sub(expand, _text(s), count=0 if "g" in options else 1)


class _BoolAggregate:
    """``bool_and`` / ``bool_or`` / ``every``: NULL over no non-NULL input."""

    def __init__(self, conjunction: bool) -> None:
        self.conjunction = conjunction
        self.result: bool | None = None

    def step(self, value: Any) -> None:
        """Take one value (NULLs are skipped)."""
        if value is None:
            return
        truth = bool(value)
        if self.result is None:
            self.result = truth
        elif self.conjunction:
            self.result = self.result and truth
        else:
            self.result = self.result or truth

    def final(self) -> int | None:
        """The result as 1, 0 or NULL."""
        return None if self.result is None else int(self.result)


def _bool_aggregate(conjunction: bool) -> Callable[[], tuple[Any, Any, Any]]:
    """apsw's aggregate factory for bool_and (``conjunction``) or bool_or."""

    def factory() -> tuple[Any, Any, Any]:
        """A fresh aggregate's (context, step, final)."""
        agg = _BoolAggregate(conjunction)
        return agg, lambda _ctx, value: agg.step(value), lambda _ctx: agg.final()

    return factory


class _FloatVariance:
    """PostgreSQL's float8 ``var_samp`` / ``var_pop`` / ``stddev_samp`` /
    ``stddev_pop``: the Youngs-Cramer running sums of float8_accum, step for
    step, so the result is PostgreSQL's double to the bit (for the same order
    of rows); NULL over no rows (over one row for the sample forms)."""

    def __init__(self, sample: bool, root: bool) -> None:
        self.sample, self.root = sample, root
        self.n = self.sx = self.sxx = 0.0

    def step(self, value: Any) -> None:
        """float8_accum: one value in (NULLs are skipped)."""
        if value is None:
            return
        new = float(value)
        old_n, old_sx = self.n, self.sx
        self.n += 1.0
        self.sx += new
        if old_n > 0.0:
            tmp = new * self.n - self.sx
            self.sxx += tmp * tmp / (self.n * old_n)
            if math.isinf(self.sx) or math.isinf(self.sxx):
                if not math.isinf(old_sx) and not math.isinf(new):
                    raise errors.DataError("value out of range: overflow", sqlstate="22003")
                self.sxx = math.nan
        elif math.isnan(new) or math.isinf(new):
            self.sxx = math.nan

    def final(self) -> float | None:
        """The variance (or its square root); NULL with too few rows."""
        if self.n == 0.0 or (self.sample and self.n <= 1.0):
            return None
        variance = self.sxx / (self.n - 1.0 if self.sample else self.n)
        return math.sqrt(variance) if self.root else variance


def _float_variance(sample: bool, root: bool) -> Callable[[], tuple[Any, Any, Any]]:
    """apsw's aggregate factory for one of the float8 variance aggregates."""

    def factory() -> tuple[Any, Any, Any]:
        """A fresh aggregate's (context, step, final)."""
        agg = _FloatVariance(sample, root)
        return agg, lambda _ctx, value: agg.step(value), lambda _ctx: agg.final()

    return factory


#: PostgreSQL's string functions: (SQL name, function, number of arguments; -1 any).
STRING_FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_left", _strict(_left), 2),
    ("loom_right", _strict(_right), 2),
    ("loom_repeat", _strict(_repeat), 2),
    ("loom_reverse", _strict(_reverse), 1),
    ("loom_initcap", _strict(_initcap), 1),
    ("loom_lpad", _strict(_pad(left=True)), -1),
    ("loom_rpad", _strict(_pad(left=False)), -1),
    ("loom_md5", _strict(_md5), 1),
    ("loom_split_part", _strict(_split_part), 3),
    ("loom_translate", _strict(_translate), 3),
    ("loom_starts_with", _strict(_starts_with), 2),
    ("loom_ascii", _strict(_ascii), 1),
    ("loom_chr", _strict(_chr), 1),
    ("loom_regexp_match", _strict(_regexp_match), 3),
    ("loom_regexp_replace", _strict(_regexp_replace), -1),
)

#: PostgreSQL's boolean aggregates: (SQL name, apsw aggregate factory).
STRING_AGGREGATES: tuple[tuple[str, Callable[[], tuple[Any, Any, Any]]], ...] = (
    ("loom_bool_and", _bool_aggregate(conjunction=True)),
    ("loom_bool_or", _bool_aggregate(conjunction=False)),
    # Over double precision only (the dialect refuses them over integers and
    # numerics, whose NUMERIC result loomdb does not reproduce on SQLite).
    ("loom_var_samp", _float_variance(sample=True, root=False)),
    ("loom_var_pop", _float_variance(sample=False, root=False)),
    ("loom_stddev_samp", _float_variance(sample=True, root=True)),
    ("loom_stddev_pop", _float_variance(sample=False, root=True)),
)


def _scalar(
    conn: apsw.Connection, name: str, function: Callable[..., SQLiteValue], nargs: int, deterministic: bool
) -> None:
    """Register ``function`` as SQL function ``name`` taking ``nargs`` arguments."""
    conn.create_scalar_function(name, function, nargs, deterministic=deterministic)


def register(conn: apsw.Connection, now: Callable[[], str]) -> None:
    """Load sqlite-vec into ``conn`` and register loomdb's functions and
    collation; ``now`` answers ``loom_now()`` (SQL's NOW()). Raises
    OperationalError when sqlite-vec cannot be loaded."""
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
    except (apsw.Error, AttributeError) as exc:
        raise errors.OperationalError(f"cannot load sqlite-vec: {exc}") from None
    _scalar(conn, "loom_now", now, 0, deterministic=False)
    _scalar(conn, "gen_random_uuid", lambda: str(uuid.uuid4()), 0, deterministic=False)
    for name, function, nargs in FUNCTIONS:
        _scalar(conn, name, function, nargs, deterministic=True)
    for name, factory in STRING_AGGREGATES:
        conn.create_aggregate_function(name, factory)
    conn.create_collation(NUMERIC_COLLATION, numeric_collation)


#: The deterministic functions: (SQL name, function, number of arguments).
FUNCTIONS: tuple[tuple[str, Callable[..., SQLiteValue], int], ...] = (
    ("loom_jsonb_contains", _contains, 2),
    ("loom_jsonb_contained", _contained, 2),
    ("loom_inner_product", inner_product, 2),
    ("loom_negative_inner_product", _negative_inner_product, 2),
    ("loom_vector_norm", _vector_norm, 1),
    ("loom_jsonb", _jsonb, 1),
    ("loom_int2", _to_int(16), 2),
    ("loom_int4", _to_int(32), 2),
    ("loom_int8", _to_int(64), 2),
    ("loom_divisor", _divisor, 2),
    ("loom_jsonb_concat", _jsonb_concat, 2),
    ("loom_jsonb_delete", _jsonb_delete, 2),
    # Casts to types SQLite lacks (see the dialect's cast rules).
    ("loom_timestamp", _cast_to("TIMESTAMP"), 1),
    ("loom_date", _cast_to("DATE"), 1),
    ("loom_bool", _cast_to("BOOLEAN"), 1),
    ("loom_numeric", _cast_to("NUMERIC"), 1),
)
FUNCTIONS += STRING_FUNCTIONS  # PostgreSQL's string functions (see their section)


@functools.cache
def sqlite_function_names() -> frozenset[str]:
    """The names (lower case) of every function a loomdb SQLite connection has:
    SQLite's own, sqlite-vec's and loomdb's (read once from a scratch connection)."""
    conn = apsw.Connection(":memory:")
    try:
        register(conn, lambda: "")
        return frozenset(row[0].lower() for row in conn.execute("SELECT name FROM pragma_function_list"))
    finally:
        conn.close()


#: Every SQL name :func:`register` defines (functions and the collation).
REGISTERED = frozenset(
    {
        "loom_now",
        "gen_random_uuid",
        NUMERIC_COLLATION,
        *(f[0] for f in FUNCTIONS),
        *(a[0] for a in STRING_AGGREGATES),
    }
)
