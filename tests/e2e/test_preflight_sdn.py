"""Bridges need SDN.Use (qemu-server check_bridge_access), and refusals Proxmox makes only
inside a worker task are reported as one line naming Proxmox's reason."""

from __future__ import annotations

from aihost_testing import run_aihost

LLM = {"gpu": "rtx4090", "runtime": "ollama", "models": ["llama3.1:8b"]}
NO_SDN = "aihost@pve!nosdn"  # PVEVMAdmin, PVEDatastoreAdmin, PVEMappingAdmin, PVEAuditor


def _token(sim, tmp_path, token_id: str) -> dict:
    secret = tmp_path / "secret"
    secret.write_text(sim.server.secret_for(token_id) + "\n")
    return {"token": {"id": token_id, "secret_file": str(secret)}}


def _problems(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "pre-flight pve1: " in line]


def test_a_vm_admin_token_without_sdn_use_is_refused_naming_the_pveum_fix(sim, tmp_path):
    inventory = sim.inventory(
        tmp_path / "inv.yaml", {"llm-box": LLM}, host=_token(sim, tmp_path, NO_SDN)
    )
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 2, result.stderr
    assert _problems(result) == [
        "pre-flight pve1: missing SDN.Use on /sdn/zones/localnetwork/vmbr0 "
        "(clone the template's net0: bridge vmbr0)"
    ], result.stderr
    fix = f"pveum acl modify /sdn/zones/localnetwork/vmbr0 --tokens '{NO_SDN}' --roles PVESDNUser"
    assert fix in result.stderr and "pveum role add" not in result.stderr
    assert sim.writes() == []


def test_a_vlan_on_another_bridge_needs_its_own_grant_and_the_templates_bridge(sim, tmp_path):
    vm = {**LLM, "network": {"bridge": "vmbr1", "vlan": 20}}  # the token may use vmbr1
    inventory = sim.inventory(
        tmp_path / "inv.yaml", {"llm-box": vm}, host=_token(sim, tmp_path, NO_SDN)
    )
    result = run_aihost("-i", str(inventory), "host", "check")
    assert result.exit_code != 0
    text = result.stdout + result.stderr
    assert "SDN.Use on /sdn/zones/localnetwork/vmbr0 " in text  # clone, and the old net0
    assert "/sdn/zones/localnetwork/vmbr1" not in text  # granted there, VLANs included
    assert sim.writes() == []


def test_a_refusal_inside_the_config_task_is_one_line_and_the_fresh_vm_is_removed(
    sim, tmp_path, monkeypatch
):
    """POST .../config answers 200 with a UPID; check_hostpci_perm (Mapping.Use) fails in
    the worker. (The pre-flight, which names this gap, is skipped to reach the worker.)"""
    import provision.preflight.run

    monkeypatch.setattr(provision.preflight.run, "preflight", lambda *a, **k: [])
    host = _token(sim, tmp_path, "aihost@pve!nomapuse")  # Mapping.Modify, not Mapping.Use
    inventory = sim.inventory(tmp_path / "inv.yaml", {"llm-box": LLM}, host=host)
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("aihost: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "Permission check failed (/mapping/pci/rtx4090, Mapping.Use)" in errors[0]
    assert "qmconfig" in errors[0] and "aihost host check" in errors[0]
    config_posts = [
        r for r in sim.requests() if r["method"] == "POST" and r["path"].endswith("/config")
    ]
    assert [r["status"] for r in config_posts] == [200]  # refused in the task, not the call
    assert any(r["method"] == "DELETE" for r in sim.writes())
    assert "removed the new VM" in result.stderr
