"""The hostile corpus (tests/support/hostile_corpus.py): every hostile inventory and every
hostile invocation exits 2 with one line naming file:line (or the option), and the
simulated Proxmox the inventory points at receives no request at all.

The resource test runs the whole corpus again in a child process and bounds each case's
peak Python allocation (tracemalloc) and the child's peak RSS; it prints the figures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aihost_testing import REPO_ROOT, run_aihost, schema_validator
from support.hostile_corpus import (
    CLI_CASES,
    INVENTORY_CASES,
    Case,
    CliCase,
    cli_args,
    materialize,
    materialize_base,
)

LIMIT_BYTES = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One simulator for the corpus (no case may reach it), a busy port, the fill values."""
    from provision.sim.server import SimServer

    server = SimServer(
        tmp_path_factory.mktemp("sim"), durations={}, validator=schema_validator()
    ).start()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    values = {
        "api": server.url,
        "token_id": server.token_id,
        "fingerprint": server.fingerprint,
        "token_secret": server.token_secret,
        "busy_port": str(busy.getsockname()[1]),
    }
    try:
        yield {"server": server, "values": values}
    finally:
        busy.close()
        server.stop()


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aihost: error: "), lines[0]
    return lines[0]


def test_the_base_inventory_is_valid(world, tmp_path):
    path = materialize(Case("base", 0, ""), tmp_path, world["values"])
    result = run_aihost("-i", str(path), "inventory", "check")
    assert result.exit_code == 0, result.stderr
    assert world["server"].request_log() == []


def test_the_corpus_is_large_enough():
    assert len(INVENTORY_CASES) >= 120 and len(CLI_CASES) >= 60
    assert len({c.id for c in INVENTORY_CASES}) == len(INVENTORY_CASES)
    assert len({c.id for c in CLI_CASES}) == len(CLI_CASES)


@pytest.mark.parametrize("case", INVENTORY_CASES, ids=[c.id for c in INVENTORY_CASES])
def test_hostile_inventory(world, tmp_path, case: Case):
    path = materialize(case, tmp_path, world["values"])
    where = f"{path}:{case.line}: " if case.line else f"{path}: "
    for command in (("inventory", "check"), ("vm", "up", "llm-box")):
        result = run_aihost("-i", str(path), *command, env=case.env)
        assert result.exit_code == 2, (command, result.stderr)
        line = _one_line(result.stderr)
        assert line.startswith("aihost: error: " + where), line
        assert case.fragment in line, line
    assert world["server"].request_log() == []


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_hostile_invocation(world, tmp_path, case: CliCase):
    base = materialize_base(tmp_path, world["values"])
    args = cli_args(case, base, {**world["values"], "dir": str(tmp_path)})
    result = run_aihost(*args)
    assert result.exit_code == 2, result.stderr
    line = _one_line(result.stderr)
    assert case.fragment in line, line
    assert world["server"].request_log() == []


def test_corpus_time_and_memory_in_a_child_process(world, tmp_path):
    spec = {**world["values"], "dir": str(tmp_path)}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    child = subprocess.run(
        [sys.executable, "-m", "support.hostile_corpus", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT / "tests",
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    cases = report["cases"]
    assert len(cases) == len(INVENTORY_CASES) + len(CLI_CASES)
    assert all(c["code"] == 2 for c in cases.values()), [
        k for k, c in cases.items() if c["code"] != 2
    ]
    peaks = sorted(c["peak_bytes"] for c in cases.values())
    times = sorted(c["seconds"] for c in cases.values())
    growth = max(c["rss_growth_kib"] for c in cases.values()) * 1024
    maxrss = report["maxrss_kib"] * 1024
    assert peaks[-1] < LIMIT_BYTES  # Python allocations of any one case
    assert growth < LIMIT_BYTES  # growth of the process's peak RSS during any one case
    assert maxrss < LIMIT_BYTES  # the whole child: interpreter, libraries, every case
    assert world["server"].request_log() == []
    slowest = max(cases, key=lambda k: cases[k]["seconds"])
    print(
        f"\nhostile corpus: {len(cases)} cases; per case time median "
        f"{times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms ({slowest}); "
        f"peak allocation median {peaks[len(peaks) // 2] / 1024:.0f} KiB, max "
        f"{peaks[-1] / 1024 / 1024:.1f} MiB; peak RSS growth in one case max "
        f"{growth / 1024 / 1024:.1f} MiB; child peak RSS {maxrss / 1024 / 1024:.1f} MiB"
    )
