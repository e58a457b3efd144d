"""The compile rules against the fixtures in ``tests/fixtures/sql/``, in the
style of sqlglot's optimizer fixtures: ``<rule>.sql`` holds pairs of lines,
a query and what it becomes once :data:`~loomdb.sql.compile.RULES` up to
and including ``<rule>`` have run, each ending with ``;``. Adding a case is
adding two lines.

What a case shows is the tree's SQL (read back as PostgreSQL, with each
view's SQL in place of its placeholder), or for a rule that only records a
fact, that fact (:data:`FACTS`); ``ERROR <class>: <message>`` when it
raises. A ``# options: key=value ...`` line sets the
:class:`~loomdb.sql.rules.context.Context` options of the case after it;
other ``#`` lines are comments. Every case runs against :data:`CTX`'s tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from loomdb.errors import Error
from loomdb.sql.compile import RULES
from loomdb.sql.dialect import LoomPostgres
from loomdb.sql.rules.context import NAMES, NPARAMS, PARAM_TYPES, TYPES, VIEWS, Context, tree_of
from loomdb.sql.rules.rewrite_tables import substitute_views

FIXTURES = Path(__file__).parent / "fixtures" / "sql"

CTX = Context.example(
    t="id INT, body TEXT, j JSONB, e VECTOR(3), at TIMESTAMPTZ",
    u="id BIGINT, t_id INT, score DOUBLE PRECISION, price NUMERIC(10, 2)",
)


def _sql_of_type(ctype: Any) -> str | None:
    """A loomdb type by its SQL (None stays None)."""
    return None if ctype is None else ctype.sql


#: The rules whose cases show a fact they record rather than the tree's SQL.
FACTS: dict[str, Callable[[exp.Expression], str]] = {
    "name_outputs": lambda tree: repr(tree.meta.get(NAMES)),
    "name_star_outputs": lambda tree: repr(tree.meta[NAMES]),
    "type_outputs": lambda tree: repr(tuple(_sql_of_type(t) for t in tree.meta[TYPES])),
    "type_parameters": lambda tree: repr({n: t.sql for n, t in sorted(tree.meta[PARAM_TYPES].items())}),
    "count_parameters": lambda tree: repr(tree.meta[NPARAMS]),
}


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` as a Context field and its value (digits are a number)."""
    key, _, value = text.partition("=")
    return key, int(value) if value.isdigit() else value


def _cases() -> Iterator[Any]:
    """One pytest param per fixture pair: (rule name, options, query, expected)."""
    names = {rule.__name__ for rule in RULES}
    for path in sorted(FIXTURES.glob("*.sql")):
        assert path.stem in names, f"{path.name} names no rule of RULES"
        options: dict[str, Any] = {}
        pending: list[str] = []
        text: list[str] = []
        start = 0
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith("# options:"):
                options = dict(_option(o) for o in stripped.removeprefix("# options:").split())
                continue
            if not stripped or stripped.startswith("#"):
                continue
            start = start or number
            text.append(stripped)
            if stripped.endswith(";"):
                pending.append(" ".join(text)[:-1].strip())
                text = []
            if len(pending) == 2:
                query, expected = pending
                yield pytest.param(path.stem, options, query, expected, id=f"{path.stem}:{start}")
                options, pending, start = {}, [], 0
        assert not text and not pending, f"{path.name} ends inside a case"


def _apply(rule_name: str, options: dict[str, Any], query: str) -> str:
    """What ``query`` shows once the rules up to ``rule_name`` have run."""
    ctx = dataclasses.replace(CTX, **options)
    tree = tree_of(query)
    try:
        for rule in RULES:
            tree = rule(tree, ctx)
            if rule.__name__ == rule_name:
                break
    except Error as err:
        return f"ERROR {type(err).__name__}: {err}"
    if rule_name in FACTS:
        return FACTS[rule_name](tree)
    return substitute_views(tree.sql(dialect=LoomPostgres), tree.meta.get(VIEWS, {}))


@pytest.mark.parametrize(("rule_name", "options", "query", "expected"), list(_cases()))
def test_rule(rule_name: str, options: dict[str, Any], query: str, expected: str) -> None:
    assert _apply(rule_name, options, query) == expected


def test_every_rule_has_fixtures() -> None:
    missing = {rule.__name__ for rule in RULES} - {path.stem for path in FIXTURES.glob("*.sql")}
    assert not missing, f"no fixtures for {sorted(missing)}"
