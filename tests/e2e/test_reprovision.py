"""Re-provisioning: the instance-id is pinned to a generation; only --reprovision bumps it."""

from __future__ import annotations

from typing import Any

import pytest
from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
MORE = {**LLM, "models": ["llama3.1:8b", "qwen2.5:7b"]}
DELIVERY = {"snippet": None, "iso": {"ssh": None}}


def _api(sim, method: str, path: str, **params: Any) -> Any:
    import requests

    server = sim.server
    headers = {"Authorization": f"PVEAPIToken={server.token_id}={server.token_secret}"}
    url = f"{server.url}/api2/json{path}"
    send = {"params": params} if method == "GET" else {"data": params}
    response = requests.request(
        method, url, headers=headers, verify=str(server.cert_path), timeout=10, **send
    )
    response.raise_for_status()
    return response.json()["data"]


def _guest(sim, vmid: int, *argv: str) -> str:
    base = f"/nodes/pve1/qemu/{vmid}/agent"
    pid = _api(sim, "POST", f"{base}/exec", command=list(argv))["pid"]
    status = _api(sim, "GET", f"{base}/exec-status", pid=pid)
    assert status.get("exitcode") == 0, status
    return str(status.get("out-data", "")).strip()


def _facts(sim, vmid: int) -> tuple[int, str, str]:
    """(first boots, instance-id, description) of the VM."""
    boots = int(_guest(sim, vmid, "aihost-sim-first-boots"))
    instance = _guest(sim, vmid, "cloud-init", "query", "instance-id")
    description = _api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/config").get("description", "")
    return boots, instance, description


def _run(inventory, *args: str):
    return run_aihost("-i", str(inventory), *args)


@pytest.fixture(params=sorted(DELIVERY))
def delivery(request) -> dict[str, Any] | None:
    """Each test runs with snippets over SFTP and with an uploaded ISO."""
    return DELIVERY[request.param]


def _first_up(sim, tmp_path, delivery) -> tuple[Any, int]:
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=delivery)
    result = _run(inventory, "-o", "json", "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    return inventory, int(result.json()["vmid"])


def test_a_changed_user_data_is_planned_for_re_provision_and_not_applied_to_the_guest(
    sim, tmp_path, delivery
):
    inventory, vmid = _first_up(sim, tmp_path, delivery)
    boots, instance, description = _facts(sim, vmid)
    assert (boots, instance) == (1, "aihost-llm-box-g1")
    assert "aihost-generation: 1" in description
    sim.inventory(inventory, {"llm-box": MORE}, host=delivery)
    plan = _run(inventory, "vm", "plan", "llm-box")
    assert plan.exit_code == 0, plan.stderr
    assert "user-data changed: takes effect on re-provision" in plan.stdout
    assert "--reprovision" in plan.stdout
    result = _run(inventory, "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    assert _facts(sim, vmid) == (1, "aihost-llm-box-g1", description)
    # a plain reboot (here: through the API) never re-provisions either
    upid = _api(sim, "POST", f"/nodes/pve1/qemu/{vmid}/status/reboot")
    assert upid
    again = _run(inventory, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert _facts(sim, vmid)[:2] == (1, "aihost-llm-box-g1")


def test_reprovision_bumps_the_generation_restarts_and_reruns_first_boot(sim, tmp_path, delivery):
    inventory, vmid = _first_up(sim, tmp_path, delivery)
    sim.inventory(inventory, {"llm-box": MORE}, host=delivery)
    before = len(sim.requests())
    result = _run(inventory, "-o", "json", "vm", "up", "llm-box", "--reprovision")
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert "restart" in out["applied"]
    assert "qwen2.5:7b" in out["guest"]["models"]
    assert any(r["path"].endswith(f"/qemu/{vmid}/status/reboot") for r in sim.requests(before))
    boots, instance, description = _facts(sim, vmid)
    assert (boots, instance) == (2, "aihost-llm-box-g2")
    assert "aihost-generation: 2" in description and "aihost-generation: 1" not in description
    # converged: the next run changes nothing and the guest keeps its identity
    again = _run(inventory, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "no changes" in again.stdout
    assert _facts(sim, vmid)[:2] == (2, "aihost-llm-box-g2")


def test_reprovision_without_a_change_still_reruns_first_boot_once(sim, tmp_path, delivery):
    inventory, vmid = _first_up(sim, tmp_path, delivery)
    result = _run(inventory, "vm", "up", "llm-box", "--reprovision")
    assert result.exit_code == 0, result.stderr
    assert _facts(sim, vmid)[:2] == (2, "aihost-llm-box-g2")


def test_a_restart_that_fails_after_an_ok_reboot_is_reported(sim, tmp_path, delivery):
    """Proxmox's reboot task ends OK once the VM is off; qm cleanup's qmstart fails later."""
    inventory, vmid = _first_up(sim, tmp_path, delivery)
    reason = "PCI device '0000:01:00.0' already in use by VMID '150'"
    sim.control("faults", {"kind": "task_error", "task": "qmstart", "message": reason})
    before = len(sim.requests())
    result = _run(inventory, "vm", "up", "llm-box", "--reprovision")
    assert result.exit_code == 3, result.stderr
    assert f"VM {vmid} did not start again after its reboot" in result.stderr
    assert f"qmstart (started by root@pam) ended with: {reason}" in result.stderr
    paths = [r["path"] for r in sim.requests(before)]
    assert any(p.endswith(f"/qemu/{vmid}/status/reboot") for p in paths)
    assert any(p.endswith("/nodes/pve1/tasks") for p in paths)
    assert not any("/agent/" in p for p in paths)  # no guest wait on a stopped VM
    status = _api(sim, "GET", f"/nodes/pve1/qemu/{vmid}/status/current")
    assert status["status"] == "stopped"


def test_a_reprovision_whose_reboot_failed_is_finished_by_the_next_run(sim, tmp_path, delivery):
    """The new generation is in the description and the new meta-data on the node at once
    (fast-plugged, nothing in [PENDING]) while the reboot task fails and the VM runs on:
    the re-run asks the guest which instance it runs, restarts it onto the new one, and
    the run after that has nothing to do."""
    inventory, vmid = _first_up(sim, tmp_path, delivery)
    sim.control("faults", {"kind": "task_error", "task": "qmreboot", "message": "guest hung"})
    failed = _run(inventory, "vm", "up", "llm-box", "--reprovision")
    assert failed.exit_code != 0 and "guest hung" in failed.stderr
    boots, instance, description = _facts(sim, vmid)
    assert (boots, instance) == (1, "aihost-llm-box-g1") and "generation: 2" in description
    plan = _run(inventory, "vm", "plan", "llm-box")
    assert "restart to apply: re-provision (the guest still runs aihost-llm-box-g1)" in plan.stdout
    again = _run(inventory, "vm", "up", "llm-box")
    assert again.exit_code == 0, again.stderr
    assert "done (restart)" in again.stdout
    assert _facts(sim, vmid)[:2] == (2, "aihost-llm-box-g2")
    converged = _run(inventory, "vm", "up", "llm-box")
    assert converged.exit_code == 0 and "no changes" in converged.stdout
