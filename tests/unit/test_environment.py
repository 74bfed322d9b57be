"""`run(argv, env)`: the CLI's terminal and variables come from one injected Environment."""

from __future__ import annotations

import io
import os

from aihost_testing import INVENTORIES

from provision.cli.environment import Environment
from provision.cli.main import run


def _env(variables: dict[str, str], stdin: str = "", tty: bool = False) -> Environment:
    return Environment(
        stdin=io.StringIO(stdin),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=tty,
        env=variables,
    )


def _text(stream: object) -> str:
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_help_results_and_errors_go_to_the_environments_streams(capsys):
    env = _env({})
    assert run(["--help"], env=env) == 0
    assert "Usage: aihost" in _text(env.stdout)
    failing = _env({})
    assert run(["inventory", "check"], env=failing) == 2
    assert "aihost: error: no inventory given" in _text(failing.stderr)
    assert capsys.readouterr() == ("", "")  # nothing reached the process's own streams


def test_the_inventory_variable_is_read_from_the_environment_not_the_process(monkeypatch):
    monkeypatch.setenv("AIHOST_INVENTORY", "/nonexistent/aihost.yaml")
    env = _env({"AIHOST_INVENTORY": str(INVENTORIES / "demo.yaml")})
    assert run(["-o", "json", "inventory", "check"], env=env) == 0, _text(env.stderr)
    assert os.environ["AIHOST_INVENTORY"] == "/nonexistent/aihost.yaml"  # restored after


def test_a_command_sees_only_the_environments_variables_while_it_runs(monkeypatch):
    monkeypatch.setenv("AIHOST_TEST_ONLY_OUTSIDE", "1")
    env = _env({"AIHOST_INVENTORY": str(INVENTORIES / "demo.yaml")})
    seen: dict[str, str | None] = {}
    with env.installed():
        seen["outside"] = os.environ.get("AIHOST_TEST_ONLY_OUTSIDE")
        seen["inventory"] = os.environ.get("AIHOST_INVENTORY")
    assert seen == {"outside": None, "inventory": str(INVENTORIES / "demo.yaml")}
    assert os.environ["AIHOST_TEST_ONLY_OUTSIDE"] == "1"
