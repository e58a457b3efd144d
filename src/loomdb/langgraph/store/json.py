"""Item values as plain JSON, checked the same way for both engines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import StoreInputError


def plain_json(value: Any, where: str) -> Any:
    """``value`` as plain dicts, lists and scalars; raise StoreInputError naming the
    first part of it that JSON cannot hold."""
    if isinstance(value, str):
        if "\x00" in value:
            # PostgreSQL's jsonb cannot hold it; refused on both engines alike.
            raise StoreInputError(f"{where} contains a NUL byte, which the store cannot hold")
        return value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreInputError(f"{where} is {value!r}, which JSON cannot hold")
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise StoreInputError(f"{where} has a key {k!r}; JSON object keys must be strings")
            out[plain_json(k, f"{where} key {k!r}")] = plain_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [plain_json(v, f"{where}[{j}]") for j, v in enumerate(value)]
    raise StoreInputError(f"{where} is a {type(value).__name__}, which is not JSON")
