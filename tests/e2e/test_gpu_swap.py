"""`aihost gpu swap|release|list` end to end on the simulator: happy path, rollback, refusal.

The helpers at the top are shared by the other test_gpu_*.py files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from aihost_testing import Result, run_aihost

GPU = "rtx4090"
LLM = {"gpu": GPU, "runtime": "ollama", "models": ["llama3.1:8b"]}
PLAIN = {"runtime": "none"}


def aihost(inventory: Path, *args: str) -> Result:
    """aihost -i INVENTORY ARGS, in-process."""
    return run_aihost("-i", str(inventory), *args)


def api(sim: Any, method: str, path: str, **params: Any) -> Any:
    """One request to the simulator's API with its admin token; the data part."""
    server = sim.server
    reply = requests.request(
        method,
        f"{server.url}/api2/json{path}",
        params=params if method == "GET" else None,
        data=None if method == "GET" else params,
        verify=str(server.cert_path),
        headers={"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def control(sim: Any, method: str, what: str, payload: Any = None) -> Any:
    """The simulator's control API (/_sim/faults, /_sim/durations, ...)."""
    server = sim.server
    reply = requests.request(
        method, f"{server.url}/_sim/{what}", json=payload, verify=str(server.cert_path), timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def vms(sim: Any) -> dict[str, dict[str, Any]]:
    """Managed VMs by name: vmid, status, and the hostpci values of their config (live:
    each node's /nodes/{node}/qemu; /cluster/resources shows pvestatd's last broadcast)."""
    found = {}
    nodes = sorted({r["node"] for r in api(sim, "GET", "/cluster/resources", type="vm")})
    for node, row in [(n, r) for n in nodes for r in api(sim, "GET", f"/nodes/{n}/qemu")]:
        if row.get("template"):
            continue
        config = api(sim, "GET", f"/nodes/{node}/qemu/{row['vmid']}/config")
        found[row["name"]] = {
            "vmid": row["vmid"],
            "status": row["status"],
            "node": node,
            "hostpci": sorted(v for k, v in config.items() if k.startswith("hostpci")),
        }
    return found


def holders(sim: Any, needle: str = f"mapping={GPU}") -> dict[str, str]:
    """VM name -> status, for every VM whose config names the GPU."""
    return {n: v["status"] for n, v in vms(sim).items() if any(needle in h for h in v["hostpci"])}


def lease_text(sim: Any, gpu: str = GPU) -> str:
    """The mapping's description, where the lease lives."""
    return str(api(sim, "GET", f"/cluster/mapping/pci/{gpu}").get("description") or "")


def write_lease(sim: Any, record: str, gpu: str = GPU) -> None:
    """Replace the mapping's description (where the lease lives), as any client would:
    its `map` sent back as read, guarded by its digest."""
    mapping = api(sim, "GET", f"/cluster/mapping/pci/{gpu}")
    api(
        sim,
        "PUT",
        f"/cluster/mapping/pci/{gpu}",
        map=mapping["map"],
        description=record,
        digest=mapping["digest"],
    )


def world(
    sim: Any,
    tmp_path: Path,
    others: tuple[str, ...] = ("image-box",),
    gpus: dict[str, Any] | None = None,
    host: dict[str, Any] | None = None,
    gpu: str = GPU,
    env: dict[str, str] | None = None,
    driver: bool = True,
) -> Path:
    """llm-box running with the GPU; each of others created and running without it.

    Each of others is provisioned for the GPU (driver in its user-data) and then released,
    unless driver is False (provisioned without a GPU). The inventory gives every VM the
    GPU, as a user sharing one card would, so only a swap moves it.
    """
    path = tmp_path / "inv.yaml"
    with_gpu = {n: {**PLAIN, "gpu": gpu} for n in others}
    sim.inventory(
        path,
        {**(with_gpu if driver else dict.fromkeys(others, PLAIN)), "llm-box": {**LLM, "gpu": gpu}},
        gpus=gpus,
        host=host,
    )
    for name in others:
        up = run_aihost("-i", str(path), "vm", "up", name, "--no-wait", env=env)
        assert up.exit_code == 0, up.stderr
        if driver:
            freed = run_aihost("-i", str(path), "gpu", "release", gpu, env=env)
            assert freed.exit_code == 0, freed.stderr
            vmid = vms(sim)[name]["vmid"]
            api(sim, "POST", f"/nodes/pve1/qemu/{vmid}/status/start")
    up = run_aihost("-i", str(path), "vm", "up", "llm-box", "--no-wait", env=env)
    assert up.exit_code == 0, up.stderr
    sim.inventory(path, {"llm-box": {**LLM, "gpu": gpu}, **with_gpu}, gpus=gpus, host=host)
    return path


def test_swap_moves_the_gpu_and_proves_it_in_the_target(sim, tmp_path):
    inventory = world(sim, tmp_path)
    before = aihost(inventory, "-o", "json", "gpu", "list")
    assert before.exit_code == 0, before.stderr
    row = {r["gpu"]: r for r in before.json()}[GPU]
    assert (row["holder"], row["holder_running"], row["operation"]) == ("llm-box", True, None)

    result = aihost(inventory, "-o", "json", "gpu", "swap", GPU, "--to", "image-box")
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert (out["gpu"], out["source"], out["target"], out["outcome"]) == (
        GPU,
        "llm-box",
        "image-box",
        "swapped",
    )
    assert {"stop", "config", "start", "verify", "lease", "total"} <= set(out["timings"])
    assert "verify: nvidia-smi" in result.stderr
    state = vms(sim)
    assert state["llm-box"]["status"] == "stopped" and state["llm-box"]["hostpci"] == []
    assert state["image-box"]["status"] == "running"
    assert state["image-box"]["hostpci"] == [f"mapping={GPU},pcie=1"]
    assert f'"holder":{state["image-box"]["vmid"]}' in lease_text(sim)
    assert '"op"' not in lease_text(sim)

    after = aihost(inventory, "-o", "json", "gpu", "list")
    row = {r["gpu"]: r for r in after.json()}[GPU]
    assert row == {
        **row,
        "holder": "image-box",
        "holder_vmid": state["image-box"]["vmid"],
        "holder_running": True,
        "also_named_by": [],
        "operation": None,
    }
    text = aihost(inventory, "gpu", "list")
    assert "image-box" in text.stdout and "running" in text.stdout


def test_swap_to_the_holder_changes_nothing(sim, tmp_path):
    inventory = world(sim, tmp_path)
    before = len(sim.requests())
    result = aihost(inventory, "-o", "json", "gpu", "swap", GPU, "--to", "llm-box")
    assert result.exit_code == 0, result.stderr
    assert result.json()["outcome"] == "already held"
    writes = [r for r in sim.writes(before) if "/mapping/" not in r["path"]]
    assert writes == []


def _rolled_back(sim: Any, result: Result) -> None:
    assert result.exit_code != 0
    assert "rolled back" in result.stderr and "re-attached" in result.stderr
    assert holders(sim) == {"llm-box": "running"}
    assert vms(sim)["image-box"]["hostpci"] == []
    assert '"op"' not in lease_text(sim)


def test_target_failing_to_start_rolls_back_to_the_former_holder(sim, tmp_path):
    inventory = world(sim, tmp_path)
    target = vms(sim)["image-box"]["vmid"]
    control(
        sim,
        "POST",
        "faults",
        {
            "kind": "task_error",
            "task": "qmstart",
            "message": "start failed: QEMU exited with code 1",
        },
    )
    result = aihost(inventory, "gpu", "swap", GPU, "--to", "image-box")
    assert result.exit_code == 3, result.stderr
    assert "QEMU exited with code 1" in result.stderr
    assert f"detached from VM {target}" in result.stderr
    _rolled_back(sim, result)


def test_target_without_a_driver_fails_the_gpu_check_and_rolls_back(sim, tmp_path):
    # image-box was provisioned without a GPU, so its user-data installs no driver.
    inventory = world(sim, tmp_path, driver=False)
    result = aihost(inventory, "gpu", "swap", GPU, "--to", "image-box", "--agent-timeout", "30")
    # no driver: qemu-ga cannot spawn nvidia-smi, an agent error (not an exit code 127)
    assert "nvidia-smi is not installed in the guest (No such file or directory)" in result.stderr
    assert "failed while started" in result.stderr
    assert "stopped VM" in result.stderr
    _rolled_back(sim, result)


def test_vm_up_refuses_a_held_gpu_and_release_frees_it(sim, tmp_path):
    inventory = world(sim, tmp_path, others=())
    sim.inventory(inventory, {"llm-box": LLM, "image-box": {**PLAIN, "gpu": GPU}})
    refused = aihost(inventory, "vm", "up", "image-box")
    assert refused.exit_code == 4
    assert "held by VM 'llm-box'" in refused.stderr

    released = aihost(inventory, "-o", "json", "gpu", "release", GPU)
    assert released.exit_code == 0, released.stderr
    assert released.json()["outcome"] == "released"
    assert holders(sim) == {}
    assert vms(sim)["llm-box"]["status"] == "stopped"
    row = {r["gpu"]: r for r in aihost(inventory, "-o", "json", "gpu", "list").json()}[GPU]
    assert (row["holder"], row["operation"]) == (None, None)

    taken = aihost(inventory, "vm", "up", "image-box", "--no-wait")
    assert taken.exit_code == 0, taken.stderr
    assert holders(sim) == {"image-box": "running"}


def test_vm_up_take_gpu_swaps_it_over(sim, tmp_path):
    inventory = world(sim, tmp_path)
    result = aihost(inventory, "vm", "up", "image-box", "--take-gpu")
    assert result.exit_code == 0, result.stderr
    assert holders(sim) == {"image-box": "running"}
    assert vms(sim)["llm-box"]["status"] == "stopped"


def test_downtime_measurement_reports_every_step_and_the_swap_order():
    from bench.downtime import measure, to_markdown

    data = measure({})
    assert data["violations"] == []
    assert {"plan", "stop", "config", "start", "verify", "lease", "total"} <= set(data["timings"])
    posts = [p for m, p in data["requests"] if m == "POST" and "/agent/" not in p]
    kinds = [p.rsplit("/", 1)[-1] for p in posts]
    assert kinds == ["shutdown", "shutdown", "config", "config", "start"], posts
    assert "| stop |" in to_markdown({}, data)
