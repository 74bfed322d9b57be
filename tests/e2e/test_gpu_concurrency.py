"""Concurrent swaps of one GPU from separate OS processes, against one simulator over HTTPS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aihost_testing import REPO_ROOT
from test_gpu_swap import GPU, control, holders, lease_text, world

# Races of several processes: the slow lane (.ci/run) runs them.
pytestmark = pytest.mark.slow

TARGETS = ("box-a", "box-b", "box-c", "box-d")

# Each process imports everything first, says it is ready, then waits for the start signal
# so all of them reach the simulator at the same moment.
RACER = """
import os, sys, time
from pathlib import Path
from provision.cli.main import run
import provision.cli.gpu_cmd, provision.gpu.swap, provision.vmops.session, provision.pve.client
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.write_text("ready")
while not go.exists():
    time.sleep(0.005)
sys.exit(run(sys.argv[3:]))
"""


def race(tmp_path: Path, inventory: Path, *extra: str) -> list[tuple[str, int, str]]:
    """Start one `gpu swap` per target in its own process, release them together."""
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    procs = []
    for name in TARGETS:
        ready = tmp_path / f"ready-{name}"
        ready.unlink(missing_ok=True)
        args = ["-i", str(inventory), "gpu", "swap", GPU, "--to", name, "--no-verify", *extra]
        procs.append(
            (
                name,
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", RACER, str(ready), str(go), *args],
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for _, ready, _ in procs):
        assert time.monotonic() < deadline, "the racing processes did not start"
        time.sleep(0.01)
    go.write_text("go")
    results = []
    for name, _, proc in procs:
        _, err = proc.communicate(timeout=120)
        results.append((name, proc.returncode, err))
    return results


def _setup(sim: Any, tmp_path: Path) -> Path:
    inventory = world(sim, tmp_path, others=TARGETS)
    # A shutdown that takes a moment, so the swaps overlap.
    control(sim, "POST", "durations", {"qmshutdown": 0.3})
    return inventory


def test_four_processes_exactly_one_swaps_the_others_fail_fast_naming_it(sim, tmp_path):
    inventory = _setup(sim, tmp_path)
    results = race(tmp_path, inventory)
    winners = [(n, err) for n, code, err in results if code == 0]
    losers = [(n, code, err) for n, code, err in results if code != 0]
    assert len(winners) == 1, results
    assert [code for _, code, _ in losers] == [4, 4, 4], results
    for _, _, err in losers:
        assert "is busy: operation" in err and "moving it to box-" in err, err
    assert holders(sim) == {winners[0][0]: "running"}
    assert '"op"' not in lease_text(sim)
    assert sim.server.violations() == []


def test_four_processes_with_wait_all_complete_in_turn(sim, tmp_path):
    inventory = _setup(sim, tmp_path)
    results = race(tmp_path, inventory, "--wait")
    assert [code for _, code, _ in results] == [0, 0, 0, 0], results
    waited = [n for n, _, err in results if "waiting for operation" in err]
    assert waited, "no swap ever waited for another: they did not overlap"
    held = holders(sim)
    assert len(held) == 1 and list(held.values()) == ["running"], held
    assert list(held)[0] in TARGETS
    assert '"op"' not in lease_text(sim)
    assert sim.server.violations() == []
