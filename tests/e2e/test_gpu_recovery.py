"""A swap killed with SIGKILL at each phase is finished or rolled back afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aihost_testing import REPO_ROOT
from test_gpu_swap import GPU, aihost, control, holders, lease_text, vms, world

# Each trial waits for the killed swap's simulated task: the slow lane (.ci/run) runs them.
pytestmark = pytest.mark.slow

# What keeps the swap in each phase until it is killed: a long task, or (attached) the
# target's config write hanging on the wire.
# Long enough for the kill to land in the phase, short enough that recovery, which waits
# for the tasks a killed process left running, does not wait long.
SLOW: dict[str, dict[str, float]] = {
    "stopping": {"qmshutdown": 6},  # shutting the holder down
    "detached": {"qmconfig": 6},  # writing the holder's config without the GPU
    "attached": {},  # writing the target's config with the GPU (hangs, see below)
    "started": {"boot": 6},  # the target boots; the GPU check waits for its agent
}
ZERO = {"qmshutdown": 0, "qmconfig": 0, "boot": 0}


def kill_swap_in(sim: Any, tmp_path: Path, inventory: Path, phase: str) -> None:
    """Run `gpu swap` in a process and SIGKILL it when the lease shows phase."""
    control(sim, "POST", "durations", SLOW[phase])
    if phase == "attached":
        target = vms(sim)["image-box"]["vmid"]
        control(
            sim,
            "POST",
            "faults",
            {"kind": "hang", "method": "POST", "seconds": 60, "path": f"/qemu/{target}/config$"},
        )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision",
            "-i",
            str(inventory),
            "gpu",
            "swap",
            GPU,
            "--to",
            "image-box",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while f'"phase":"{phase}"' not in lease_text(sim):
            assert proc.poll() is None, f"the swap ended before {phase}: {proc.stderr.read()}"
            assert time.monotonic() < deadline, f"the swap never reached {phase}"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()  # reaped: its pid is gone, so its lease counts as abandoned
    control(sim, "POST", "durations", ZERO)
    control(sim, "DELETE", "faults")


def _one_holder(sim: Any) -> dict[str, str]:
    held = holders(sim)
    assert len(held) == 1, held
    assert '"op"' not in lease_text(sim)
    assert sim.server.violations() == []
    return held


@pytest.mark.parametrize("phase", list(SLOW))
def test_killed_swap_is_recovered_by_gpu_recover(sim, tmp_path, phase):
    inventory = world(sim, tmp_path)
    kill_swap_in(sim, tmp_path, inventory, phase)

    listed = {r["gpu"]: r for r in aihost(inventory, "-o", "json", "gpu", "list").json()}
    assert listed[GPU]["operation"]["phase"] == phase
    assert listed[GPU]["operation"]["abandoned"] is True

    result = aihost(inventory, "-o", "json", "gpu", "recover", GPU)
    assert result.exit_code == 0, result.stderr
    outcome = result.json()["result"]
    held = _one_holder(sim)
    if phase == "started":
        assert outcome.startswith("finished")
        assert held == {"image-box": "running"}
    else:
        assert outcome.startswith("rolled back")
        assert list(held) == ["llm-box"]
        assert vms(sim)["image-box"]["hostpci"] == []
        if phase != "stopping":  # the killed shutdown may still be under way
            assert held == {"llm-box": "running"}
    again = aihost(inventory, "-o", "json", "gpu", "recover", GPU)
    assert again.json()["result"] == "nothing to recover"


@pytest.mark.parametrize("phase", list(SLOW))
def test_killed_swap_is_recovered_by_the_next_swap(sim, tmp_path, phase):
    inventory = world(sim, tmp_path)
    kill_swap_in(sim, tmp_path, inventory, phase)
    result = aihost(inventory, "-o", "json", "gpu", "swap", GPU, "--to", "image-box")
    assert result.exit_code == 0, result.stderr
    assert f"left in phase {phase}" in result.stderr
    assert _one_holder(sim) == {"image-box": "running"}


def test_a_live_swap_is_not_recovered(sim, tmp_path):
    inventory = world(sim, tmp_path)
    control(sim, "POST", "durations", {"qmshutdown": 8})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision",
            "-i",
            str(inventory),
            "gpu",
            "swap",
            GPU,
            "--to",
            "image-box",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while '"phase":"stopping"' not in lease_text(sim):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        result = aihost(inventory, "gpu", "recover", GPU)
        assert result.exit_code == 4
        assert "is busy: operation" in result.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    control(sim, "POST", "durations", ZERO)
    assert aihost(inventory, "gpu", "recover", GPU).exit_code == 0
    assert len(holders(sim)) == 1
