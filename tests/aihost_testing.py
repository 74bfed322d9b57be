"""Shared test helpers: run the CLI in-process like a user would; where things are."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def token_client(server: Any, token: str | None = None, **kw: Any) -> Any:
    """A plain proxmoxer client of a running simulator with one of its API tokens
    (default: the admin token), verifying the simulator's certificate."""
    from proxmoxer import ProxmoxAPI

    token = token or server.token_id
    user, name = token.split("!")
    secret = kw.pop("secret", None) or server.secret_for(token)
    return ProxmoxAPI(
        "127.0.0.1",
        port=server.port,
        user=user,
        token_name=name,
        token_value=secret,
        verify_ssl=str(server.cert_path),
        **kw,
    )


def schema_validator():  # type: ignore[no-untyped-def]
    """Validate each request against Proxmox's schema; None (skip) when the file is absent."""
    import pytest

    schema = SHARED_DIR / "pve" / "apidoc.json"
    if not schema.exists():
        if os.environ.get("AIHOST_REQUIRE_SCHEMA") == "1":
            pytest.fail(f"{schema} is missing and AIHOST_REQUIRE_SCHEMA=1")
        return None
    return _loaded_schema(schema).validate


@functools.cache
def _loaded_schema(path: Path):  # type: ignore[no-untyped-def]
    """The schema at path, read once per test run (an ApiSchema holds nothing per request)."""
    from provision.sim.apischema import ApiSchema

    return ApiSchema.load(path)


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


# Run in cloud-init's own interpreter: its console script's entry point (what the
# `cloud-init` command calls) once per file, `cloud-init schema --config-file PATH`, with
# that run's exit code and output, printed as JSON. One process checks many files: a
# `cloud-init` process per file spends ~0.2 s of CPU importing cloud-init for each.
_CLOUD_INIT_SCHEMA_BATCH = """
import contextlib, io, json, sys
from importlib.metadata import distribution
main = next(
    ep for ep in distribution("cloud-init").entry_points
    if ep.group == "console_scripts" and ep.name == "cloud-init"
).load()
results = []
for path in sys.argv[1:]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["cloud-init", "schema", "--config-file", path]) or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    results.append([path, code, out.getvalue() + err.getvalue()])
json.dump(results, sys.stdout)
"""


def _python_of(tool: str) -> str | None:
    """The Python interpreter a console script runs with (its #! line), or None."""
    with open(tool, "rb") as script:
        first = script.readline().decode(errors="replace")
    command = first[2:].split() if first.startswith("#!") else []
    return command[0] if len(command) == 1 and "python" in Path(command[0]).name else None


def cloud_init_schema_failures(paths: list[Path]) -> list[str]:
    """`cloud-init schema --config-file` on each file (one run per distinct text; the runs
    go through cloud-init's own entry point, many per process, two processes at once): a
    line per file it does not call valid."""
    import json
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    tool = require_tool("cloud-init")
    python = _python_of(tool)
    unique = list({path.read_text(): path for path in paths}.values())  # same text, one run

    def check(chunk: list[Path]) -> list[tuple[str, int, str]]:
        if python is None:  # not a Python console script: the command itself, per file
            results = []
            for path in chunk:
                command = [tool, "schema", "--config-file", str(path)]
                run = subprocess.run(command, capture_output=True, text=True, timeout=120)
                results.append((str(path), run.returncode, run.stdout + run.stderr))
            return results
        command = [python, "-c", _CLOUD_INIT_SCHEMA_BATCH, *map(str, chunk)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"cloud-init schema batch failed: {run.stderr[-3000:]}"
        return [tuple(item) for item in json.loads(run.stdout)]

    workers = max(2, os.cpu_count() or 2)
    chunks = [unique[i::workers] for i in range(workers) if unique[i::workers]]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = [item for chunk in pool.map(check, chunks) for item in chunk]
    return [
        f"{Path(path).name}: {output}"
        for path, code, output in results
        if code != 0 or "Valid cloud-config" not in output
    ]
