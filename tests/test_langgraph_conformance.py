"""LangGraph's published checkpointer conformance suite (langgraph-checkpoint-conformance 0.0.2)
against LoomSaver, on both engines.

The suite detects each capability from the saver's overridden async methods and
runs its own tests for it; we require every one of the eight to be detected and
to pass, capability by capability (the suite's "FULL" summary alone would also
accept a capability that is simply not detected).
"""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

import loomdb
from loomdb.langgraph import LoomSaver

CAPABILITIES = sorted(c.value for c in ALL_CAPABILITIES)


@pytest.fixture
def report(new_store):
    """The conformance report for LoomSaver on the test's engine (a fresh store per capability)."""
    handles: list[loomdb.Database] = []

    @checkpointer_test(name="LoomSaver")
    async def loom_saver():
        db = loomdb.connect(new_store())
        handles.append(db)
        saver = LoomSaver(db)
        saver.setup()
        yield saver
        db.close()

    try:
        return asyncio.run(validate(loom_saver))
    finally:
        for db in handles:
            db.close()


def test_the_suite_covers_the_eight_capabilities_we_claim():
    assert CAPABILITIES == [
        "copy_thread",
        "delete_for_runs",
        "delete_thread",
        "get_tuple",
        "list",
        "prune",
        "put",
        "put_writes",
    ]


def test_every_capability_is_detected_and_passes(report):
    outcome = {
        cap: (report.results[cap].detected, report.results[cap].passed, report.results[cap].tests_failed)
        for cap in CAPABILITIES
    }
    failures = {cap: report.results[cap].failures for cap in CAPABILITIES if report.results[cap].failures}
    assert outcome == {cap: (True, True, 0) for cap in CAPABILITIES}, failures
    assert all(report.results[cap].tests_passed > 0 for cap in CAPABILITIES)
