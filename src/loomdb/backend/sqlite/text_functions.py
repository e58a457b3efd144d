"""PostgreSQL's text functions, regular expressions and boolean and float-variance
aggregates on SQLite, registered by :mod:`.functions` (``loom_<name>``)."""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ... import errors
from ...pg_input import parse_bytea, parse_uuid

if TYPE_CHECKING:
    from apsw import SQLiteValue


#: An integer as text (optional sign, digits).
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


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
        if not INTEGER_TEXT.fullmatch(text):
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


def _substr(s: Any, start: Any, length: Any = None) -> str:
    """``substr(s, start [, length])``: the characters from position ``start``
    (1-based; positions before the first count but hold nothing) for ``length``
    characters; DataError 22011 for a negative length, as PostgreSQL raises."""
    text, first = _text(s), _count(start)
    if length is None:
        return text[max(first, 1) - 1 :]
    count = _count(length)
    if count < 0:
        raise errors.DataError("negative substring length not allowed", sqlstate="22011")
    return text[max(first, 1) - 1 : max(first + count - 1, 0)]


def _substring_regex(s: Any, pattern: Any) -> str | None:
    """``substring(s from pattern)``: the first match of the POSIX regular expression,
    or of its first parenthesised subexpression when it has one; NULL for no match."""
    match = _regex(_text(pattern), 0).search(_text(s))
    if match is None:
        return None
    return match.group(1) if match.re.groups else match.group(0)


@functools.lru_cache(maxsize=256)
def similar_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    """PostgreSQL's SIMILAR TO ``pattern`` as an anchored Python regular expression,
    translated as PostgreSQL's ``similar_to_escape`` does: ``%`` any text, ``_`` any
    character, ``escape`` (default backslash; none when empty) quoting the next
    character, ``.``, ``^`` and ``$`` literal, bracket expressions and ``| * + ? {m,n} ( )``
    as in regular expressions. DataError 22025 for a pattern ending with the escape."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        char = pattern[i]
        if escape and char == escape:
            if i + 1 >= n:
                raise errors.DataError("invalid escape string", sqlstate="22025")
            nxt = pattern[i + 1]
            if nxt == '"':
                raise errors.NotSupportedError(
                    'SIMILAR TO with escape-" markers is not supported by loomdb on SQLite'
                )
            out.append(re.escape(nxt))
            i += 2
            continue
        if char == "[":
            end = i + 1
            if end < n and pattern[end] == "^":
                end += 1
            if end < n and pattern[end] == "]":
                end += 1
            while end < n and pattern[end] != "]":
                end += 1
            out.append(pattern[i : end + 1].replace("\\", "\\\\") if escape != "\\" else pattern[i : end + 1])
            i = end + 1
            continue
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif char == "(":
            out.append("(?:")
        elif char in "|*+?{},)" or char.isdigit():
            out.append(char)
        else:
            out.append(re.escape(char))
        i += 1
    try:
        return re.compile("(?:" + "".join(out) + r")\Z", re.DOTALL)
    except re.error as exc:
        raise errors.DataError(f"invalid regular expression: {exc}", sqlstate="2201B") from None


def _similar(s: Any, pattern: Any, escape: Any) -> int:
    """``s SIMILAR TO pattern [ESCAPE escape]`` as 1 or 0."""
    escape_char = _text(escape)
    if len(escape_char) > 1:
        raise errors.DataError("invalid escape string", sqlstate="22025")
    return int(similar_regex(_text(pattern), escape_char or None).match(_text(s)) is not None)


def _to_hex(n: Any, bits: int) -> str:
    """``to_hex(n)``: n in hexadecimal, a negative one as its two's complement in
    ``bits`` bits (32 for integer, 64 for bigint), as PostgreSQL writes it."""
    value = _count(n)
    return format(value & ((1 << bits) - 1) if value < 0 else value, "x")


def _quote_literal(value: Any) -> str:
    """``quote_literal(s)``: ``s`` in single quotes, quotes doubled; with a backslash,
    backslashes doubled too and the E'' form, as PostgreSQL writes it."""
    text = str(value)
    quoted = "'" + text.replace("'", "''").replace("\\", "\\\\") + "'"
    return "E" + quoted if "\\" in text else quoted


def _bytea(value: Any) -> bytes:
    """``value::bytea``: text by PostgreSQL's bytea input, bytes as they are."""
    return bytes(value) if isinstance(value, bytes) else parse_bytea(_text(value))


def _bpchar(value: Any, length: int) -> str:
    """``value::char(n)``: the text cut or padded with spaces to ``length`` characters."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text[:length].ljust(length)


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
    ("loom_substr", _strict(_substr), -1),
    ("loom_substring_regex", _strict(_substring_regex), 2),
    ("loom_to_hex", _strict(_to_hex), 2),
    ("loom_similar", _strict(_similar), 3),
    ("loom_bpchar", _strict(_bpchar), 2),
    ("loom_quote_literal", _strict(_quote_literal), 1),
    ("loom_uuid", _strict(parse_uuid), 1),
    ("loom_bytea", _strict(_bytea), 1),
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
