"""The start timeout grows with memory for GPU VMs (pinning all RAM at start takes time),
and is never below qemu-server's own default for the config being started
(`config_aware_timeout`: x4 with a hostpci, +5 s per netN)."""

from __future__ import annotations

from aihost_testing import run_aihost
from test_gpu_swap import GPU, aihost, vms, world


def _start_params(sim, since: int = 0) -> list[dict]:
    return [
        r.get("params", {})
        for r in sim.requests(since)
        if r["method"] == "POST" and r["path"].endswith("/status/start")
    ]


def test_a_large_gpu_vm_starts_with_qemu_servers_passthrough_timeout(sim, tmp_path):
    vm = {"gpu": "rtx4090", "runtime": "none", "memory_gb": 96}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"big-box": vm})
    plan = run_aihost("-i", str(inventory), "vm", "plan", "big-box")
    assert "start (timeout 389 s)" in plan.stdout, plan.stdout
    result = run_aihost("-i", str(inventory), "vm", "up", "big-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    (params,) = _start_params(sim)
    # aihost's 3 s per GiB is 288 s; qemu-server's is 96 GiB x 4 (hostpci) + 5 (net0)
    assert int(params["timeout"]) == 96 * 4 + 5
    assert "timeout 389 s" in result.stderr


def test_a_small_vm_without_a_gpu_gets_proxmoxs_default(sim, tmp_path):
    vm = {"runtime": "none", "memory_gb": 4}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"small-box": vm})
    result = run_aihost("-i", str(inventory), "vm", "up", "small-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    (params,) = _start_params(sim)
    assert int(params["timeout"]) == 30 + 5  # 30 s, plus 5 s for net0


def test_an_inventory_timeout_below_proxmoxs_default_is_raised_to_it(sim, tmp_path):
    vm = {"gpu": "rtx4090", "runtime": "none", "memory_gb": 16, "start_timeout": 20}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"box": vm})
    result = run_aihost("-i", str(inventory), "vm", "up", "box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    (params,) = _start_params(sim)
    assert int(params["timeout"]) == 30 * 4 + 5


def test_a_swap_starts_the_target_with_at_least_qemu_servers_timeout(sim, tmp_path):
    inventory = world(sim, tmp_path)
    before = len(sim.requests())
    result = aihost(inventory, "gpu", "swap", GPU, "--to", "image-box")
    assert result.exit_code == 0, result.stderr
    (params,) = _start_params(sim, before)
    # 16 GiB: aihost's rule gives 60 s, qemu-server's 30 x 4 + 5 once the GPU is attached
    assert int(params["timeout"]) == 125
    assert vms(sim)["image-box"]["status"] == "running"
