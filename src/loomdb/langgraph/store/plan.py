"""A batch of LangGraph store ops, checked and sorted before anything runs.

``plan_batch`` rejects bad input up front (so a batch either runs or changes
nothing), keeps the last put of each item (as LangGraph's stores do), and
lists the texts the batch needs embedded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    Op,
    PutOp,
    SearchOp,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from .errors import StoreInputError
from .filter import check_filter
from .json import plain_json

ItemId = tuple[tuple[str, ...], str]
FieldPaths = list[tuple[str, Any]]  # (path as written, tokenized path or "$")


@dataclass(frozen=True)
class DocText:
    """One text of one item to embed, stored under ``field``."""

    item: ItemId
    field: str
    text: str


@dataclass
class Plan:
    """The ops of one batch by kind, each with its position in the batch."""

    size: int
    gets: list[tuple[int, GetOp]] = field(default_factory=list)
    searches: list[tuple[int, SearchOp]] = field(default_factory=list)
    lists: list[tuple[int, ListNamespacesOp]] = field(default_factory=list)
    puts: dict[ItemId, PutOp] = field(default_factory=dict)
    doc_texts: list[DocText] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        """The texts of the puts to embed, in order (with repeats)."""
        return [t.text for t in self.doc_texts]


def tokenized_fields(paths: Iterable[str]) -> FieldPaths:
    """LangGraph field paths ready for ``get_text_at_path`` ("$" is the whole value)."""
    return [(p, p if p == "$" else tokenize_path(p)) for p in paths]


def plan_batch(ops: Iterable[Op], default_fields: FieldPaths | None) -> Plan:
    """Check every op and sort them; ``default_fields`` is None when the store has no index.

    Raises InvalidNamespaceError for a bad namespace and StoreInputError for
    any other bad op, before anything is read or written.
    """
    ops = list(ops)
    plan = Plan(size=len(ops))
    for i, op in enumerate(ops):
        if isinstance(op, GetOp):
            validate_op_namespace(op)
            _check_key(op.key)
            plan.gets.append((i, op))
        elif isinstance(op, SearchOp):
            validate_op_namespace(op)
            _check_search(op)
            plan.searches.append((i, op))
            if op.query and default_fields is not None and op.query not in plan.queries:
                plan.queries.append(op.query)
        elif isinstance(op, ListNamespacesOp):
            validate_op_namespace(op)
            _check_list(op)
            plan.lists.append((i, op))
        elif isinstance(op, PutOp):
            validate_op_namespace(op)
            op = _checked_put(op)
            item = (tuple(op.namespace), op.key)
            plan.puts.pop(item, None)  # the last put of an item wins, in its own place
            plan.puts[item] = op
        else:
            raise StoreInputError(f"unknown store operation {type(op).__name__}")
    if default_fields is not None:
        for item, op in plan.puts.items():
            plan.doc_texts.extend(_texts(item, op, default_fields))
    return plan


def _texts(item: ItemId, op: PutOp, default_fields: FieldPaths) -> list[DocText]:
    if op.value is None or op.index is False:
        return []
    paths = default_fields if op.index is None else tokenized_fields(op.index)
    out: dict[str, DocText] = {}
    for path, tokens in paths:
        texts = get_text_at_path(op.value, tokens)
        for j, text in enumerate(texts):
            name = f"{path}.{j}" if len(texts) > 1 else path
            out.setdefault(name, DocText(item, name, text))
    return list(out.values())


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise StoreInputError(f"an item key must be a string, got {type(key).__name__}")
    if "\x00" in key:
        raise StoreInputError(f"an item key cannot contain NUL bytes, got {key!r}")


def _check_count(name: str, n: Any) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise StoreInputError(f"{name} must be a non-negative integer, got {n!r}")


def _check_search(op: SearchOp) -> None:
    check_filter(op.filter)
    _check_count("limit", op.limit)
    _check_count("offset", op.offset)
    if op.query is not None and not isinstance(op.query, str):
        raise StoreInputError(f"a search query must be a string, got {type(op.query).__name__}")


def _check_list(op: ListNamespacesOp) -> None:
    for condition in op.match_conditions or ():
        if condition.match_type not in ("prefix", "suffix"):
            raise StoreInputError(
                f"unsupported match type {condition.match_type!r} (use 'prefix' or 'suffix')"
            )
    if op.max_depth is not None:
        _check_count("max_depth", op.max_depth)
        if op.max_depth == 0:
            raise StoreInputError("max_depth must be at least 1")
    _check_count("limit", op.limit)
    _check_count("offset", op.offset)


def _checked_put(op: PutOp) -> PutOp:
    """The put with its value as plain JSON, or StoreInputError."""
    if not op.namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    _check_key(op.key)
    if op.value is not None:
        if not isinstance(op.value, Mapping):
            raise StoreInputError(
                f"an item value must be a dict (or None to delete), got {type(op.value).__name__}"
            )
        op = op._replace(value=plain_json(op.value, "value"))
    if op.ttl is not None and (
        not isinstance(op.ttl, (int, float))
        or isinstance(op.ttl, bool)
        or not op.ttl >= 0
        or math.isinf(op.ttl)
    ):
        raise StoreInputError(f"ttl must be a non-negative number of minutes or None, got {op.ttl!r}")
    if op.index not in (None, False) and not (
        isinstance(op.index, list) and all(isinstance(p, str) for p in op.index)
    ):
        raise StoreInputError(f"index must be None, False or a list of field paths, got {op.index!r}")
    return op
