"""The ``>>>`` examples in loomdb's docstrings run as tests: every module of
``loomdb.sql``, ``loomdb.versioning`` and ``loomdb.engine`` (found with
pkgutil, so a new module is picked up) and ``loomdb.layout``. Each compile rule's
module must show at least one example of what the rule does."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import sys

import pytest

import loomdb.engine
import loomdb.sql
import loomdb.sql.rules
import loomdb.versioning
from loomdb.sql.compile import RULES


def _module_names() -> list[str]:
    """``loomdb.layout`` and every module and package under ``loomdb.sql``,
    ``loomdb.versioning`` and ``loomdb.engine``."""
    names = ["loomdb.layout"]
    for package in (loomdb.sql, loomdb.versioning, loomdb.engine):
        names.append(package.__name__)
        names += [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(names)


def _rule_module_names() -> list[str]:
    """The modules of ``loomdb.sql.rules`` (not the package itself)."""
    rules = loomdb.sql.rules
    return sorted(info.name for info in pkgutil.iter_modules(rules.__path__, rules.__name__ + "."))


def _examples(module: object) -> int:
    """How many ``>>>`` examples doctest finds in ``module`` and what it defines."""
    return sum(len(test.examples) for test in doctest.DocTestFinder().find(module))


@pytest.mark.parametrize("name", _module_names())
def test_examples_pass(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module)
    report = capsys.readouterr().out
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}:\n{report}"


@pytest.mark.parametrize("name", _rule_module_names())
def test_rule_modules_have_examples(name: str) -> None:
    assert _examples(importlib.import_module(name)), f"{name} has no >>> example"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_rules_live_in_rule_modules(rule: object) -> None:
    module = sys.modules[rule.__module__]  # type: ignore[attr-defined]
    assert module.__name__ in _rule_module_names(), f"{rule!r} is not defined in a module of loomdb.sql.rules"
