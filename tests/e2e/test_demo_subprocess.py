"""The README's main command, as a user runs it: separate `aihost` processes on `api: sim`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from aihost_testing import INVENTORIES

# Real processes on the demo's realistic task durations: the slow lane (.ci/run) runs it.
pytestmark = pytest.mark.slow


def _aihost(state, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("aihost")
    assert exe, "aihost is not installed (pip install -e .)"
    env = {**os.environ, "AIHOST_STATE_DIR": str(state)}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300)


def test_demo_vm_up_then_a_second_process_sees_the_same_world(tmp_path):
    demo = str(INVENTORIES / "demo.yaml")
    up = _aihost(tmp_path, "-i", demo, "vm", "up", "llm-box")
    assert up.returncode == 0, up.stderr
    assert "LLM endpoint:" in up.stdout
    assert "GPU: NVIDIA GeForce RTX 4090" in up.stdout
    gpus = _aihost(tmp_path, "-i", demo, "-o", "json", "gpu", "list")
    assert gpus.returncode == 0, gpus.stderr
    rtx4090 = next(row for row in json.loads(gpus.stdout) if row["gpu"] == "rtx4090")
    assert rtx4090["holder"] == "llm-box" and rtx4090["holder_running"] is True
    again = _aihost(tmp_path, "-i", demo, "vm", "up", "llm-box")
    assert again.returncode == 0 and "no changes" in again.stdout
    reset = _aihost(tmp_path, "sim", "reset")
    assert reset.returncode == 0
    listing = _aihost(tmp_path, "-i", demo, "-o", "json", "vm", "list")
    assert {row["status"] for row in json.loads(listing.stdout)} == {"absent"}
