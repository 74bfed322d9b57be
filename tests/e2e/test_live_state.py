"""aihost decides from live VM facts, never from /cluster/resources' lagging ones.

On Proxmox a VM's name and status in /cluster/resources are pvestatd's last broadcast
(about every 10 s): a VM made a moment ago has no name there and status "unknown". The
`sim` fixture broadcasts once at its start and never again; the 10 s case is the
simulator's default (as in `api: sim`).
"""

from __future__ import annotations

import pytest
from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
PLAIN = {"runtime": "none"}


def _aihost(inventory, *args: str):
    return run_aihost("-i", str(inventory), "-o", "json", *args)


def _vms_named(sim, name: str) -> list[int]:
    import requests

    server = sim.server
    reply = requests.get(f"{server.url}/api2/json/nodes/pve1/qemu", timeout=10,
                         verify=str(server.cert_path), headers={
                             "Authorization": f"PVEAPIToken={server.token_id}="
                                              f"{server.token_secret}"})
    return sorted(r["vmid"] for r in reply.json()["data"] if r.get("name") == name)


@pytest.mark.parametrize("interval", [None, 10.0], ids=["never", "every-10s"])
@pytest.mark.parametrize("spec", [PLAIN, LLM], ids=["plain", "gpu"])
def test_vm_up_twice_in_a_row_makes_one_vm(sim, tmp_path, spec, interval):
    if interval is not None:
        sim.control("durations", {"pvestatd": interval})
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": spec})
    first = _aihost(inventory, "vm", "up", "box")
    assert first.exit_code == 0, first.stderr
    again = _aihost(inventory, "vm", "up", "box")
    assert again.exit_code == 0, again.stderr
    assert again.json()["applied"] == [] and again.json()["vmid"] == first.json()["vmid"]
    assert _vms_named(sim, "box") == [first.json()["vmid"]]


def test_vm_list_and_status_right_after_vm_up_show_the_vm_running(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM, "spare": PLAIN})
    up = _aihost(inventory, "vm", "up", "llm-box")
    assert up.exit_code == 0, up.stderr
    vmid = up.json()["vmid"]
    listing = _aihost(inventory, "vm", "list")
    assert listing.exit_code == 0, listing.stderr
    rows = {row["vm"]: row for row in listing.json()}
    assert (rows["llm-box"]["vmid"], rows["llm-box"]["status"]) == (vmid, "running")
    assert rows["spare"]["status"] == "absent"
    status = _aihost(inventory, "vm", "status", "llm-box")
    assert status.exit_code == 0, status.stderr
    assert (status.json()["vmid"], status.json()["status"]) == (vmid, "running")
    gpus = {row["gpu"]: row for row in _aihost(inventory, "gpu", "list").json()}
    assert gpus["rtx4090"]["holder"] == "llm-box" and gpus["rtx4090"]["holder_running"]


def test_a_stopped_vm_is_seen_stopped_and_started_again(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": PLAIN})
    assert _aihost(inventory, "vm", "up", "box").exit_code == 0
    down = _aihost(inventory, "vm", "down", "box")
    assert down.exit_code == 0, down.stderr
    assert _aihost(inventory, "vm", "status", "box").json()["status"] == "stopped"
    up = _aihost(inventory, "vm", "up", "box")
    assert up.exit_code == 0, up.stderr
    assert up.json()["applied"] == ["start"]
    assert _aihost(inventory, "vm", "status", "box").json()["status"] == "running"


def test_destroy_then_up_reuses_the_vmid_whose_old_line_still_names_the_old_vm(sim, tmp_path):
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": PLAIN, "other": PLAIN})
    assert _aihost(inventory, "vm", "up", "box").exit_code == 0
    sim.control("durations", {"pvestatd": 0})  # one broadcast now: the line names "box"
    assert _aihost(inventory, "vm", "status", "box").exit_code == 0
    sim.control("durations", {"pvestatd": 1e9})
    destroyed = _aihost(inventory, "vm", "destroy", "box", "--yes")
    assert destroyed.exit_code == 0, destroyed.stderr
    other = _aihost(inventory, "vm", "up", "other")  # gets the freed vmid
    assert other.exit_code == 0, other.stderr
    assert other.json()["vmid"] == destroyed.json()["vmid"]
    listing = {row["vm"]: row for row in _aihost(inventory, "vm", "list").json()}
    assert listing["box"]["status"] == "absent"
    assert listing["other"]["status"] == "running"
