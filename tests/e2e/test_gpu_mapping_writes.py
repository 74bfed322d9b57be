"""GPU lease writes into PCI mappings, on the simulator that follows pve-manager
PVE/API2/Cluster/Mapping/PCI.pm: every update carries the mapping's `map` (check_config
with the create flag), and one digest covers all of mapping/pci.cfg, so a lease write may
lose to another GPU's and must be re-read and retried, never reported as a conflict."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aihost_testing import REPO_ROOT, run_aihost
from test_gpu_concurrency import RACER
from test_gpu_swap import api, control, vms

from provision.gpu.record import parse_records
from provision.gpu.register import MappingRegister, from_one_line

BOXES = {"box-a": "rtx4090", "box-b": "rtx3060"}
GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"


def _race(tmp_path: Path, inventory: Path, commands: dict[str, list[str]]) -> dict[str, Any]:
    """Run each command in its own process, released together; name -> (code, stderr)."""
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    procs = {}
    for name, args in commands.items():
        ready = tmp_path / f"ready-{name}"
        ready.unlink(missing_ok=True)
        procs[name] = (
            ready,
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(ready), str(go), "-i", str(inventory), *args],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
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
        record = parse_records(from_one_line(mapping["description"]))[gpu]
        assert (record.holder, record.holder_name, record.op) == (found[box]["vmid"], box, None)


def _inventory(sim: Any, tmp_path: Path) -> Path:
    return sim.inventory(
        tmp_path / "inv.yaml", {box: {"gpu": gpu, "runtime": "none"} for box, gpu in BOXES.items()}
    )


def _mapping_puts(sim: Any, gpu: str, since: int = 0) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.requests(since)
        if r["method"] == "PUT" and r["path"] == f"/api2/json/cluster/mapping/pci/{gpu}"
    ]


def test_the_lease_write_sends_the_map_back_and_keeps_the_mappings_other_keys(sim, tmp_path):
    api(
        sim,
        "POST",
        "/cluster/mapping/pci",
        id="rtx4090",
        map=[GPU_4090],
        description="Rack 2, slot 1",
        **{"live-migration-capable": 1},
    )
    up = run_aihost("-i", str(_inventory(sim, tmp_path)), "vm", "up", "box-a", "--no-wait")
    assert up.exit_code == 0, up.stderr
    mapping = _mapping(sim, "rtx4090")
    assert mapping["map"] == [GPU_4090] and mapping["live-migration-capable"] == 1
    assert mapping["description"].startswith("Rack 2, slot 1 aihost-lease rtx4090: {")
    record = parse_records(from_one_line(mapping["description"]))
    assert record["rtx4090"].holder_name == "box-a" and not record["rtx4090"].busy
    puts = _mapping_puts(sim, "rtx4090")
    assert len(puts) == 2 and all(r["status"] == 200 for r in puts)  # begin and finish
    assert all(r["params"]["map"] == GPU_4090 and r["params"]["digest"] for r in puts)


def test_a_lease_write_lost_to_another_mappings_change_is_retried(sim, tmp_path, monkeypatch):
    inventory = _inventory(sim, tmp_path)
    up = run_aihost("-i", str(inventory), "vm", "up", "box-b", "--no-wait")
    assert up.exit_code == 0, up.stderr
    real_write = MappingRegister.write
    done: list[str] = []

    def another_operator_first(self: MappingRegister, text: str, digest: str | None) -> bool:
        if self.path.endswith("/rtx4090") and not done:  # between aihost's read and write
            other = _mapping(sim, "rtx3060")
            api(
                sim,
                "PUT",
                "/cluster/mapping/pci/rtx3060",
                map=other["map"],
                description=other["description"] + " (checked)",
                digest=other["digest"],
            )
            done.append(other["digest"])
        return real_write(self, text, digest)

    monkeypatch.setattr(MappingRegister, "write", another_operator_first)
    since = len(sim.requests())
    up = run_aihost("-i", str(inventory), "vm", "up", "box-a", "--no-wait")
    assert up.exit_code == 0, up.stderr
    assert [r["status"] for r in _mapping_puts(sim, "rtx4090", since)] == [500, 200, 200]
    other = _mapping(sim, "rtx3060")
    assert other["description"].endswith(" (checked)")
    assert parse_records(from_one_line(other["description"]))["rtx3060"].holder_name == "box-b"
    _check_round(sim, {"rtx4090": _mapping(sim, "rtx4090")["map"], "rtx3060": other["map"]})


@pytest.mark.slow
def test_two_vm_up_of_different_gpus_at_once_all_succeed_round_after_round(sim, tmp_path):
    inventory = _inventory(sim, tmp_path)
    control(sim, "POST", "durations", {"qmclone": 0.05, "qmstart": 0.05})
    maps: dict[str, list[str]] = {}
    lost = ids = 0
    for round_no in range(5):
        since = len(sim.requests())
        results = _race(tmp_path, inventory, {box: ["vm", "up", box, "--no-wait"] for box in BOXES})
        assert all(code == 0 for code, _ in results.values()), (round_no, results)
        if not maps:
            maps = {gpu: _mapping(sim, gpu)["map"] for gpu in BOXES.values()}
        _check_round(sim, maps)
        lost += sum(
            1
            for r in sim.requests(since)
            if r["status"] == 500
            and r["method"] == "PUT"
            and r["path"].startswith("/api2/json/cluster/mapping/pci/")
        )
        ids += sum(
            1 for r in sim.requests(since) if r["status"] == 500 and r["path"].endswith("/clone")
        )
        for box in BOXES:
            gone = run_aihost("-i", str(inventory), "vm", "destroy", box, "--yes")
            assert gone.exit_code == 0, gone.stderr
    print(f"lease writes lost to the other GPU's and retried: {lost}, ids taken: {ids}")
    assert sim.server.violations() == []
