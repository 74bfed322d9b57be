"""The start timeout grows with memory for GPU VMs (pinning all RAM at start takes time)."""

from __future__ import annotations

from aihost_testing import run_aihost


def _start_params(sim) -> list[dict]:
    return [
        r.get("params", {})
        for r in sim.requests()
        if r["method"] == "POST" and r["path"].endswith("/status/start")
    ]


def test_a_large_gpu_vm_starts_with_a_timeout_scaled_to_its_memory(sim, tmp_path):
    vm = {"gpu": "rtx4090", "runtime": "none", "memory_gb": 96}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"big-box": vm})
    result = run_aihost("-i", str(inventory), "vm", "up", "big-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    (params,) = _start_params(sim)
    assert int(params["timeout"]) >= 3 * 96
    assert f"timeout {int(params['timeout'])} s" in result.stderr


def test_a_small_vm_without_a_gpu_keeps_the_proxmox_default(sim, tmp_path):
    vm = {"runtime": "none", "memory_gb": 4}
    inventory = sim.inventory(tmp_path / "inv.yaml", {"small-box": vm})
    result = run_aihost("-i", str(inventory), "vm", "up", "small-box", "--no-wait")
    assert result.exit_code == 0, result.stderr
    (params,) = _start_params(sim)
    assert int(params.get("timeout", 30)) == max(30, 4)
