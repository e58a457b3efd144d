"""Shared fixtures. Stores live under pytest's tmp_path (under /tmp)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import loomdb

# Machines here are shared and noisy: never let timing fail a property test.
settings.register_profile(
    "loomdb",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "loomdb-thorough",
    parent=settings.get_profile("loomdb"),
    max_examples=500,
)
settings.load_profile(os.environ.get("LOOMDB_HYPOTHESIS_PROFILE", "loomdb"))


@pytest.fixture
def store_path(tmp_path):
    """Path of a store file that does not exist yet."""
    return str(tmp_path / "test.loom")


@pytest.fixture
def fresh_db(store_path):
    """An empty store on branch main, closed after the test."""
    db = loomdb.connect(store_path)
    yield db
    db.close()
