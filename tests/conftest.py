"""Fixtures for every test."""

from __future__ import annotations

import os

import pytest
from aihost_testing import run_aihost


@pytest.fixture
def aihost():
    """The run_aihost helper as a fixture."""
    return run_aihost


@pytest.fixture(scope="session")
def _cache_dir(tmp_path_factory):
    """One aihost cache directory for the whole run (compiled templates), not the user's."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch, _cache_dir):
    """Every test gets its own aihost state directory (the simulator keeps its world there)
    and the run's cache directory."""
    if "AIHOST_STATE_DIR" not in os.environ or os.environ.get("AIHOST_TEST_KEEP_STATE") != "1":
        monkeypatch.setenv("AIHOST_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("AIHOST_CACHE_DIR", str(_cache_dir))
    monkeypatch.delenv("AIHOST_INVENTORY", raising=False)
