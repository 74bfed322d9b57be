"""Shared test helpers: run the CLI in-process like a user would; where things are."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def run_aihost(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    clock: Callable[[], float] | None = None,
) -> Result:
    """Run `aihost ARGS` in-process with an Environment over StringIO: env adds variables
    to this process's, stdin (when given) is typed at a terminal, clock (when given)
    replaces the monotonic clock."""
    from provision.cli.environment import Environment
    from provision.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    environment = Environment(
        stdin=io.StringIO(stdin or ""),
        stdout=out,
        stderr=err,
        stdin_isatty=stdin is not None,
        env={**os.environ, **(env or {})},
    )
    if clock is not None:
        environment.clock = clock
    code = run(list(args), env=environment)
    return Result(code, out.getvalue(), err.getvalue())


def schema_validator():  # type: ignore[no-untyped-def]
    """Validate each request against Proxmox's schema; None (skip) when the file is absent."""
    import pytest

    schema = SHARED_DIR / "pve" / "apidoc.json"
    if not schema.exists():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{schema} is missing and AIHOST_REQUIRE_SCHEMA=1")
        return None
    from provision.sim.apischema import ApiSchema

    return ApiSchema.load(schema).validate


def require_tool(name: str) -> str:
    """The tool's path; skip (or fail with AIHOST_REQUIRE_TOOLS=1) when it is not installed."""
    import shutil

    import pytest

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {name}); .ci/run installs it"
        if os.environ.get("AIHOST_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and AIHOST_REQUIRE_TOOLS=1")
        pytest.skip(message)
    return path


def cloud_init_schema_failures(paths: list[Path]) -> list[str]:
    """`cloud-init schema --config-file` on each file (one run per distinct text, two at a
    time): a line per file it does not call valid."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    tool = require_tool("cloud-init")

    def check(path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        command = [tool, "schema", "--config-file", str(path)]
        return path, subprocess.run(command, capture_output=True, text=True, timeout=120)

    unique = {path.read_text(): path for path in paths}  # same text, one run
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(check, unique.values()))
    return [
        f"{p.name}: {r.stdout}{r.stderr}"
        for p, r in results
        if r.returncode != 0 or "Valid cloud-config" not in r.stdout
    ]
