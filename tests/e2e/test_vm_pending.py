"""A running VM whose restart failed keeps its cold changes in Proxmox's [PENDING]: a
re-run sees them (GET .../pending) and restarts it, instead of calling it converged. A
change Proxmox makes live (a NIC's bridge) leaves nothing there, and restarts nothing."""

from __future__ import annotations

from typing import Any

from aihost_testing import run_aihost
from test_gpu_swap import api as _api

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}


def _pending(sim, vmid: int) -> dict[str, Any]:
    """The keys Proxmox holds in [PENDING] (pending value or deletion), by key."""
    items = _api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/pending")
    return {i["key"]: i for i in items if "pending" in i or i.get("delete")}


def _with_failed_restart(sim, tmp_path) -> tuple[Any, int]:
    """llm-box up and running, then its memory raised by a run whose reboot task failed:
    the VM still runs with the old memory, the new value pending."""
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    first = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "llm-box")
    assert first.exit_code == 0, first.stderr
    vmid = int(first.json()["vmid"])
    sim.inventory(inventory, {"llm-box": {**LLM, "memory_gb": 32}})
    sim.control("faults", {"kind": "task_error", "task": "qmreboot", "message": "guest hung"})
    failed = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert failed.exit_code != 0, failed.stdout
    assert "guest hung" in failed.stderr
    assert _pending(sim, vmid)["memory"]["pending"] == "32768"
    status = _api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/status/current")
    assert status["status"] == "running"
    return inventory, vmid


def test_a_rerun_restarts_a_running_vm_whose_cold_change_is_still_pending(sim, tmp_path):
    inventory, vmid = _with_failed_restart(sim, tmp_path)
    before = len(sim.requests())
    again = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "done (restart)" in again.stdout
    assert "restart to apply pending: memory" in again.stderr, again.stderr
    paths = [r["path"] for r in sim.requests(before) if r["method"] != "GET"]
    assert any(p.endswith(f"/qemu/{vmid}/status/reboot") for p in paths)
    assert not any(p.endswith(f"/qemu/{vmid}/config") for p in paths)  # nothing to write
    assert _pending(sim, vmid) == {}
    assert "GPU: NVIDIA GeForce RTX 4090" in again.stdout  # verified after the restart
    converged = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert converged.exit_code == 0, converged.stderr
    assert "no changes" in converged.stdout


def test_vm_plan_shows_the_restart_a_pending_change_needs(sim, tmp_path):
    inventory, vmid = _with_failed_restart(sim, tmp_path)
    text = run_aihost("-i", str(inventory), "vm", "plan", "llm-box")
    assert text.exit_code == 0, text.stderr
    assert "restart to apply pending: memory" in text.stdout
    plan = run_aihost("-i", str(inventory), "-o", "json", "vm", "plan", "llm-box")
    assert plan.exit_code == 0, plan.stderr
    actions = plan.json()[0]["actions"]
    assert [a["kind"] for a in actions] == ["restart", "verify"]
    assert actions[0]["summary"] == "restart to apply pending: memory"
    assert "memory" in _pending(sim, vmid)  # planning wrote nothing


def test_a_bridge_change_is_made_live_and_the_rerun_is_converged(sim, tmp_path):
    """A running VM moved to another bridge and VLAN: Proxmox makes the change on the tap
    device (qemu-server vmconfig_update_net), with the NIC's MAC kept, so nothing waits
    in [PENDING] and neither this run nor the next restarts the VM."""
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM})
    first = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "llm-box")
    assert first.exit_code == 0, first.stderr
    vmid = int(first.json()["vmid"])
    mac = _api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/config")["net0"].split(",")[0]
    sim.inventory(inventory, {"llm-box": {**LLM, "network": {"bridge": "vmbr1", "vlan": 20}}})
    moved = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert moved.exit_code == 0, moved.stderr
    assert "restart" not in moved.stderr
    assert _pending(sim, vmid) == {}
    net0 = _api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/config", current=1)["net0"]
    assert net0 == f"{mac},bridge=vmbr1,tag=20"
    again = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout and "restart" not in again.stderr
