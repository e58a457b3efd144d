"""PostgreSQL's text input of uuid and bytea values, as its input functions read them
(``uuid_in``, ``byteain``): what a string literal or a text parameter means for a
column or a cast of those types."""

from __future__ import annotations

import re
import uuid

from .errors import DataError

_UUID_TEXT = re.compile(r"[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}")


def parse_uuid(text: str) -> str:
    """PostgreSQL's uuid input: 32 hex digits, optionally a hyphen after any group of
    four and braces around; the canonical lower-case form. DataError 22P02 otherwise.

    >>> parse_uuid("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}")
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
    """
    inner = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    if not _UUID_TEXT.fullmatch(inner):
        raise DataError(f'invalid input syntax for type uuid: "{text}"', sqlstate="22P02")
    return str(uuid.UUID(inner.replace("-", "")))


def parse_bytea(text: str) -> bytes:
    r"""PostgreSQL's bytea input: ``\x`` and hex digit pairs, or the escape format
    (``\ooo`` octal, ``\\`` a backslash, other characters as their UTF-8 bytes).
    DataError 22023 for bad hex digits (as PostgreSQL), 22P02 for a bad escape.

    >>> parse_bytea(r"\x0102"), parse_bytea(r"a\001\\")
    (b'\x01\x02', b'a\x01\\')
    """
    if text.startswith("\\x"):
        digits = "".join(text[2:].split())
        bad = re.search(r"[^0-9a-fA-F]", digits)
        if bad:  # PostgreSQL's hex_decode: invalid_parameter_value
            raise DataError(f'invalid hexadecimal digit: "{bad.group(0)}"', sqlstate="22023")
        if len(digits) % 2:
            raise DataError("invalid hexadecimal data: odd number of digits", sqlstate="22023")
        return bytes.fromhex(digits)
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode()
            i += 1
        elif text[i + 1 : i + 2] == "\\":
            out.append(0x5C)
            i += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", text[i + 1 : i + 4]):
            out.append(int(text[i + 1 : i + 4], 8))
            i += 4
        else:
            raise DataError("invalid input syntax for type bytea", sqlstate="22P02")
    return bytes(out)
