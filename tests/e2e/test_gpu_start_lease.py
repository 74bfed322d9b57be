"""`vm up` starts (or restarts) a VM that already names its GPU only under the GPU's lease.

Found by the reliability harness (seed 40116): a `gpu swap` away from llm-box had shut it
down; a concurrent `vm up llm-box` found it stopped, its config still naming the card,
and started it. The swap's target then failed to start ("in use"), and its rollback left
the lease naming a VM no config named. Here each interleaving is set up exactly: a swap
under way (its lease held by a live process), and a swap completed between `vm up`'s
read of the VM and its start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aihost_testing import REPO_ROOT
from test_crash_leftovers import _dead_pid
from test_gpu_swap import GPU, aihost, api, holders, lease_text, vms, world, write_lease

from provision.gpu.lease import GpuLease


def _swap_under_way(sim: Any, phase: str, owner: str) -> None:
    """The lease as a swap from llm-box to box-c leaves it while in phase."""
    source, target = vms(sim)["llm-box"]["vmid"], vms(sim)["box-c"]["vmid"]
    write_lease(
        sim,
        f'aihost-lease {GPU}: {{"holder":{source},"holder_name":"llm-box","op":"5a5a5a5a5a5a",'
        f'"owner":"{owner}","phase":"{phase}","source":{source},"source_was_running":true,'
        f'"target":{target},"target_name":"box-c","time":{time.time()}}}',
    )


def _starts_and_reboots(sim: Any, since: int, vmid: int) -> list[str]:
    return [
        r["path"]
        for r in sim.requests(since)
        if r["method"] == "POST" and r["path"].endswith((f"/{vmid}/status/start", "/reboot"))
    ]


def _stopped_holder(sim: Any, tmp_path: Path) -> tuple[Path, int]:
    """llm-box holds the GPU but is stopped (as a swap leaves it after its shutdown)."""
    inventory = world(sim, tmp_path, others=("box-c",))
    vmid = vms(sim)["llm-box"]["vmid"]
    api(sim, "POST", f"/nodes/pve1/qemu/{vmid}/status/stop")
    assert holders(sim) == {"llm-box": "stopped"}
    return inventory, vmid


def test_vm_up_does_not_start_a_holder_a_swap_is_moving_the_card_away_from(sim, tmp_path):
    inventory, vmid = _stopped_holder(sim, tmp_path)
    live = f"root@{os.uname().nodename}:{os.getpid()}"  # the swap's process still runs
    _swap_under_way(sim, "detached", live)
    before = len(sim.requests())
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 4, up.stderr
    assert f"GPU {GPU} is busy: operation 5a5a5a5a5a5a" in up.stderr
    assert "moving it to box-c" in up.stderr
    assert _starts_and_reboots(sim, before, vmid) == []
    assert vms(sim)["llm-box"]["status"] == "stopped"
    assert '"op":"5a5a5a5a5a5a"' in lease_text(sim)  # the swap's lease is left to the swap


def test_vm_up_does_not_restart_a_holder_while_a_swap_holds_the_lease(sim, tmp_path):
    inventory = world(sim, tmp_path, others=("box-c",))
    vmid = vms(sim)["llm-box"]["vmid"]
    memory_gb = int(api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/config")["memory"]) // 1024 + 8
    # a cold change (memory) makes `vm up` restart the running VM
    sim.inventory(
        inventory,
        {
            "llm-box": {
                "gpu": GPU,
                "runtime": "ollama",
                "models": ["llama3.1:8b"],
                "memory_gb": memory_gb,
            },
            "box-c": {"gpu": GPU, "runtime": "none"},
        },
    )
    live = f"root@{os.uname().nodename}:{os.getpid()}"
    _swap_under_way(sim, "stopping", live)
    before = len(sim.requests())
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 4, up.stderr
    assert "is busy: operation 5a5a5a5a5a5a" in up.stderr
    assert _starts_and_reboots(sim, before, vmid) == []


def test_vm_up_does_not_start_a_vm_whose_card_a_swap_moved_after_it_was_read(
    sim, tmp_path, monkeypatch
):
    inventory, vmid = _stopped_holder(sim, tmp_path)
    real_begin = GpuLease.begin
    swapped: list[subprocess.CompletedProcess[str]] = []

    def a_swap_runs_first(self: GpuLease, **fields: object) -> Any:
        # between this run's reads (llm-box stopped, naming the card) and its start,
        # another operator moves the card to box-c
        if fields.get("phase") == "starting" and not swapped:
            swapped.append(
                subprocess.run(
                    [sys.executable, "-m", "provision", "-i", str(inventory), "gpu", "swap"]
                    + [GPU, "--to", "box-c", "--no-verify"],
                    cwd=REPO_ROOT,
                    env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            )
        return real_begin(self, **fields)

    monkeypatch.setattr(GpuLease, "begin", a_swap_runs_first)
    before = len(sim.requests())
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert swapped and swapped[0].returncode == 0, swapped
    assert up.exit_code == 4, up.stderr
    assert "is held by VM 'box-c'" in up.stderr
    assert _starts_and_reboots(sim, before, vmid) == []
    assert holders(sim) == {"box-c": "running"}
    box_c = vms(sim)["box-c"]["vmid"]
    assert f'"holder":{box_c}' in lease_text(sim) and '"op"' not in lease_text(sim)
    assert sim.server.violations() == []


def test_a_start_is_recorded_in_the_lease_and_ends_with_the_vm_as_holder(sim, tmp_path):
    inventory, vmid = _stopped_holder(sim, tmp_path)
    before = len(sim.requests())
    up = aihost(inventory, "vm", "up", "llm-box", "--no-wait")
    assert up.exit_code == 0, up.stderr
    requests = sim.requests(before)
    lease_writes = [
        i for i, r in enumerate(requests) if r["method"] == "PUT" and "/mapping/pci/" in r["path"]
    ]
    start = next(i for i, r in enumerate(requests) if r["path"].endswith("/status/start"))
    assert lease_writes and lease_writes[0] < start < lease_writes[-1], requests
    assert '"phase":"starting"' in requests[lease_writes[0]]["params"]["description"]
    assert holders(sim) == {"llm-box": "running"}
    assert f'"holder":{vmid}' in lease_text(sim) and '"op"' not in lease_text(sim)


def test_a_start_killed_under_the_lease_is_finished_onto_the_vm_naming_the_card(sim, tmp_path):
    inventory, vmid = _stopped_holder(sim, tmp_path)
    dead = f"root@{os.uname().nodename}:{_dead_pid()}"
    write_lease(
        sim,
        f'aihost-lease {GPU}: {{"op":"abc","owner":"{dead}","phase":"starting",'
        f'"target":{vmid},"target_name":"llm-box","time":1}}',
    )
    recover = aihost(inventory, "-o", "json", "gpu", "recover", GPU)
    assert recover.exit_code == 0, recover.stderr
    assert recover.json()["result"].startswith("finished"), recover.stdout
    assert f'"holder":{vmid}' in lease_text(sim) and '"op"' not in lease_text(sim)
    assert holders(sim) == {"llm-box": "stopped"}
