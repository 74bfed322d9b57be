"""`aihost template bake NAME` through the CLI against the simulator: a bake, a re-run
that changes nothing, a changed recipe that replaces the template only after the new one
succeeded, a VM of the baked template skipping the baked phases, and `vm up` naming the
bake when a VM's recipe has no template yet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aihost_testing import run_aihost

RECIPE = {"from": "ubuntu-2404-cloud", "host": "pve1", "driver": "580", "runtime": "ollama"}
VM = {"gpu": "rtx4090", "template": "gpu-base", "runtime": "ollama", "models": ["llama3.1:8b"]}


def _inventory(
    sim, path: Path, recipe: dict[str, Any] | None = None, host: Any = None, **vm: Any
) -> Path:
    sim.inventory(path, {"llm-box": {**VM, **vm}}, host=host)
    data = yaml.safe_load(path.read_text())
    data["bake"] = {"gpu-base": {**RECIPE, **(recipe or {})}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _bake(inventory: Path) -> tuple[Any, dict[str, Any]]:
    result = run_aihost("-i", str(inventory), "-o", "json", "template", "bake", "gpu-base")
    assert result.exit_code == 0, result.stderr
    return result, json.loads(result.stdout)


def _templates(sim, name: str) -> list[dict[str, Any]]:
    world = json.loads((sim.state_dir / "state.json").read_text())
    return [
        {"vmid": int(vmid), **vm}
        for vmid, vm in world["vms"].items()
        if vm["config"].get("name") == name and vm["config"].get("template") == "1"
    ]


def test_bake_makes_a_template_recording_its_digest_and_a_rerun_changes_nothing(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    result, data = _bake(inventory)
    assert data["result"] == "baked" and data["replaced"] == []
    (template,) = _templates(sim, "gpu-base")
    assert template["vmid"] == data["vmid"]
    assert f"aihost-bake: gpu-base sha256:{data['digest']}" in template["config"]["description"]
    assert template["disk"]["baked"]["digest"] == data["digest"]
    assert "cicustom" not in template["config"]  # a hand-made clone must not bake again
    assert not list((sim.state_dir / "storage/local/snippets").glob("aihost-bake-*"))
    assert "powering off" not in result.stderr and "converting VM" in result.stderr
    since = len(sim.requests())
    again = run_aihost("-i", str(inventory), "template", "bake", "gpu-base")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.startswith("gpu-base: no changes")
    assert sim.writes(since) == []


def test_a_changed_recipe_bakes_a_new_template_then_removes_the_old(sim, tmp_path):
    _, first = _bake(_inventory(sim, tmp_path / "inv.yaml"))
    _, second = _bake(_inventory(sim, tmp_path / "inv.yaml", {"cuda": True}))
    assert second["result"] == "baked" and second["digest"] != first["digest"]
    assert second["replaced"] == [first["vmid"]]
    assert [t["vmid"] for t in _templates(sim, "gpu-base")] == [second["vmid"]]
    paths = [(r["method"], r["path"].removeprefix("/api2/json")) for r in sim.requests()]
    made = paths.index(("POST", f"/nodes/pve1/qemu/{second['vmid']}/template"))
    removed = paths.index(("DELETE", f"/nodes/pve1/qemu/{first['vmid']}"))
    assert made < removed


def _api(sim) -> Any:
    from proxmoxer import ProxmoxAPI

    user, token = sim.server.token_id.split("!")
    return ProxmoxAPI(
        "127.0.0.1",
        port=sim.server.port,
        user=user,
        token_name=token,
        token_value=sim.server.token_secret,
        verify_ssl=str(sim.server.cert_path),
    )


def test_an_old_template_that_linked_clones_use_is_kept_and_renamed(sim, tmp_path):
    _, first = _bake(_inventory(sim, tmp_path / "inv.yaml"))
    _api(sim).nodes("pve1").qemu(first["vmid"]).clone.post(newid=555, name="linked")
    result = run_aihost(
        "-i", str(_inventory(sim, tmp_path / "inv.yaml", {"cuda": True})), "-o", "json",
        "template", "bake", "gpu-base",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kept"] == [first["vmid"]] and data["replaced"] == []
    assert [t["vmid"] for t in _templates(sim, "gpu-base")] == [data["vmid"]]
    assert [t["vmid"] for t in _templates(sim, f"gpu-base-{first['vmid']}")] == [first["vmid"]]


def test_a_vm_of_the_baked_template_skips_the_baked_phases_and_serves(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    _bake(inventory)
    result = run_aihost("-i", str(inventory), "-o", "json", "vm", "up", "llm-box")
    assert result.exit_code == 0, result.stderr
    assert "llm-box: first boot: done ok" in result.stderr
    vm = _api(sim).nodes("pve1").qemu(json.loads(result.stdout)["vmid"])
    state = json.loads(vm.agent("file-read").get(file="/var/lib/aihost/state.json")["content"])
    statuses = {phase: entry["status"] for phase, entry in state["phases"].items()}
    assert statuses == {
        "driver": "skipped",
        "reboot": "skipped",
        "runtime": "skipped",
        "models": "ok",
        "health": "ok",
        "done": "ok",
    }


def test_vm_up_names_the_bake_when_the_recipe_has_no_template_yet(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box")
    assert result.exit_code == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("aihost: error:")]
    assert "template 'gpu-base' is a bake recipe that is not baked yet" in line
    assert "aihost template bake gpu-base" in line
    assert sim.writes() == []


def test_a_bake_whose_start_fails_removes_its_vm_and_leaves_no_template(sim, tmp_path):
    sim.control("faults", {"kind": "task_error", "task": "qmstart", "message": "kvm: boom"})
    result = run_aihost(
        "-i", str(_inventory(sim, tmp_path / "inv.yaml")), "template", "bake", "gpu-base"
    )
    assert result.exit_code == 3, result.stderr
    assert "kvm: boom" in result.stderr and "removed the bake VM" in result.stderr
    world = json.loads((sim.state_dir / "state.json").read_text())
    assert sorted(world["vms"]) == ["9000", "9001"]


def test_a_recipe_from_a_missing_template_is_refused_before_any_write(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml", {"from": "no-such-template"})
    result = run_aihost("-i", str(inventory), "template", "bake", "gpu-base")
    assert result.exit_code == 2
    assert "no template named 'no-such-template' in the cluster to bake from" in result.stderr
    assert sim.writes() == []


def test_a_recipe_from_a_baked_template_keeps_its_efi_disk(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    data = yaml.safe_load(inventory.read_text())
    data["bake"]["gpu-vllm"] = {**RECIPE, "from": "gpu-base", "runtime": "vllm"}
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    first = run_aihost("-i", str(inventory), "template", "bake", "gpu-vllm")
    assert first.exit_code == 2 and "`aihost template bake gpu-base`" in first.stderr
    _bake(inventory)
    result = run_aihost("-i", str(inventory), "template", "bake", "gpu-vllm")
    assert result.exit_code == 0, result.stderr
    (template,) = _templates(sim, "gpu-vllm")
    assert template["config"]["efidisk0"].startswith(f"local-lvm:base-{template['vmid']}-disk-")
    assert not [key for key in template["config"] if key.startswith("unused")]
    assert template["disk"]["baked"]["runtime"] == "vllm"


def test_an_iso_delivered_bake_leaves_a_plain_cloud_init_drive(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml", host={"cloudinit_delivery": "iso"})
    _, data = _bake(inventory)
    (template,) = _templates(sim, "gpu-base")
    assert template["config"]["ide2"] == f"local-lvm:vm-{data['vmid']}-cloudinit,media=cdrom"
    assert template["disk"]["baked"]["digest"] == data["digest"]
    assert not list((sim.state_dir / "storage/local").rglob("aihost-bake-*"))


def _leftover(sim, digest: str, *, running: bool) -> None:
    api = _api(sim)
    mark = f"aihost-bake: gpu-base sha256:{digest}"
    api.nodes("pve1").qemu(9000).clone.post(newid=300, name="gpu-base", full=1, description=mark)
    if running:
        api.nodes("pve1").qemu(300).status.start.post()


def test_a_stopped_leftover_bake_vm_is_removed_and_a_running_one_is_a_conflict(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    _leftover(sim, "00" * 32, running=True)
    busy = run_aihost("-i", str(inventory), "template", "bake", "gpu-base")
    assert busy.exit_code == 4, busy.stderr
    assert "VM 300 on pve1 is baking 'gpu-base' (running)" in busy.stderr
    _api(sim).nodes("pve1").qemu(300).status.stop.post()
    result, data = _bake(inventory)
    assert "removed the bake VM 300" in result.stderr and data["result"] == "baked"
    world = json.loads((sim.state_dir / "state.json").read_text())
    assert "300" not in world["vms"]


def test_missing_privileges_are_listed_before_any_write(sim_from, tmp_path):
    token = "aihost@pve!nopower"
    sim = sim_from(None, token)
    host = {"token": {"id": token, "secret_file": str(sim.token_file)}}
    inventory = _inventory(sim, tmp_path / "inv.yaml", host=host)
    result = run_aihost("-i", str(inventory), "template", "bake", "gpu-base")
    assert result.exit_code == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("aihost: error:")]
    assert "nothing was changed: missing VM.PowerMgmt on /vms (start the bake VM)" in line
    assert "pveum acl modify /vms" in result.stderr, result.stderr
    assert sim.writes() == []


def test_a_vm_of_the_baked_image_runs_no_apt_at_first_boot(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml")
    _bake(inventory)
    # apt would take 10 minutes: the VM's user-data must not ask cloud-init for any
    render = run_aihost("-i", str(inventory), "render", "llm-box")
    assert render.exit_code == 0, render.stderr
    user_data = yaml.safe_load(render.stdout)
    assert "packages" not in user_data and user_data["package_update"] is False
    sim.control("durations", {"guest_apt": 600.0})
    result = run_aihost("-i", str(inventory), "vm", "up", "llm-box", "--agent-timeout", "30")
    assert result.exit_code == 0, result.stderr
    assert "llm-box: first boot: done ok" in result.stderr


def test_a_vm_of_a_recipe_for_another_distro_keeps_its_packages(sim, tmp_path):
    inventory = _inventory(sim, tmp_path / "inv.yaml", {"distro": "ubuntu-22.04"})
    result = run_aihost("-i", str(inventory), "render", "llm-box")
    assert result.exit_code == 0, result.stderr
    user_data = yaml.safe_load(result.stdout)
    assert "qemu-guest-agent" in user_data["packages"] and user_data["package_update"] is True


def test_an_iso_delivered_bake_with_a_static_ip_names_the_bake_vm_s_mac(sim, tmp_path):
    """The bake VM's network-config (what its guest saw at its start) matches its NIC by
    the MAC the VM has, as Proxmox's own network-config does."""
    from provision.sim.guest_netcfg import first_nic_address

    recipe = {"network": {"ip": "192.168.50.40/24", "gateway": "192.168.50.1"}}
    host = {"cloudinit_delivery": "iso"}
    _bake(_inventory(sim, tmp_path / "inv.yaml", recipe=recipe, host=host))
    (template,) = _templates(sim, "gpu-base")
    mac = template["config"]["net0"].split(",")[0].split("=")[1].lower()
    seen = template["guest"]["network_config"]
    assert f"mac_address: {mac}" in seen, seen
    assert first_nic_address(seen, "eth0", mac) == "192.168.50.40/24"
