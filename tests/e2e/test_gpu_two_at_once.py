"""Two GPUs, two `vm up` at once, on the simulator that keeps Proxmox's single digest for
mapping/pci.cfg (pve-manager PVE/API2/Cluster/Mapping/PCI.pm): each lease write may lose
to the other GPU's and must be re-read and retried, never reported as a conflict."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aihost_testing import REPO_ROOT, run_aihost
from test_gpu_concurrency import RACER
from test_gpu_swap import api, control, vms

from provision.gpu.record import parse_records

BOXES = {"box-a": "rtx4090", "box-b": "rtx3060"}
CHANGED = "detected modified configuration"


def _race(tmp_path: Path, inventory: Path, commands: dict[str, list[str]]) -> dict[str, Any]:
    """Run each command in its own process, released together; name -> (code, stderr)."""
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    procs = {}
    for name, args in commands.items():
        ready = tmp_path / f"ready-{name}"
        ready.unlink(missing_ok=True)
        procs[name] = (ready, subprocess.Popen(
            [sys.executable, "-c", RACER, str(ready), str(go), "-i", str(inventory), *args],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs.values()):
        assert time.monotonic() < deadline, "the racing processes did not start"
        time.sleep(0.01)
    go.write_text("go")
    results = {}
    for name, (_, proc) in procs.items():
        _, err = proc.communicate(timeout=120)
        results[name] = (proc.returncode, err)
    return results


def _mapping(sim: Any, gpu: str) -> dict[str, Any]:
    data: dict[str, Any] = api(sim, "GET", f"/cluster/mapping/pci/{gpu}")
    return data


def _check_round(sim: Any, maps: dict[str, list[str]]) -> None:
    """Each GPU held by its VM (config and lease), maps as they were, one-line leases."""
    found = vms(sim)
    for box, gpu in BOXES.items():
        assert found[box]["hostpci"] and f"mapping={gpu}" in found[box]["hostpci"][0], found
        mapping = _mapping(sim, gpu)
        assert mapping["map"] == maps[gpu]
        assert "\n" not in mapping["description"]
        record = parse_records(mapping["description"])[gpu]
        assert (record.holder, record.holder_name, record.op) == (found[box]["vmid"], box, None)


def test_two_vm_up_of_different_gpus_at_once_all_succeed_round_after_round(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml", {box: {"gpu": gpu, "runtime": "none"} for box, gpu in BOXES.items()}
    )
    control(sim, "POST", "durations", {"qmclone": 0.05, "qmstart": 0.05})
    maps: dict[str, list[str]] = {}
    lost = 0
    for round_no in range(5):
        since = len(sim.requests())
        results = _race(tmp_path, inventory,
                        {box: ["vm", "up", box, "--no-wait"] for box in BOXES})
        assert all(code == 0 for code, _ in results.values()), (round_no, results)
        if not maps:
            maps = {gpu: _mapping(sim, gpu)["map"] for gpu in BOXES.values()}
        _check_round(sim, maps)
        lost += sum(1 for r in sim.requests(since) if r["status"] == 500)
        for box in BOXES:
            gone = run_aihost("-i", str(inventory), "vm", "destroy", box, "--yes")
            assert gone.exit_code == 0, gone.stderr
    print(f"lease writes lost to the other GPU's and retried: {lost} in 5 rounds")
    assert sim.server.violations() == []
