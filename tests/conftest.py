"""Shared test helpers: run the CLI in-process like a user would."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("AIHOST_SHARED_DIR", REPO_ROOT.parent / "shared"))
INVENTORIES = REPO_ROOT / "inventories"


@dataclass
class Result:
    """What a CLI run produced."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        import json

        return json.loads(self.stdout)


def run_aihost(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `aihost ARGS` in-process and capture exit code, stdout and stderr."""
    from provision.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            old_out, old_err = sys.stdout, sys.stderr
            code = run(list(args))
            sys.stdout, sys.stderr = old_out, old_err
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def aihost():
    """The run_aihost helper as a fixture."""
    return run_aihost


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Every test gets its own aihost state directory (the simulator keeps its world there)."""
    if "AIHOST_STATE_DIR" not in os.environ or os.environ.get("AIHOST_TEST_KEEP_STATE") != "1":
        monkeypatch.setenv("AIHOST_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("AIHOST_INVENTORY", raising=False)
