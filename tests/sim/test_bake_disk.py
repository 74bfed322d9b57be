"""A bake in the simulator: the template route as qemu-server's `template` checks it, a
bake VM powering itself off with its disk baked (guest_disk), clones carrying the disk,
and a VM of a baked disk recording the matching phases as skipped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxmoxer.core import ResourceException

from provision.cloudinit import render_user_data
from provision.cloudinit.bake import recipe_digest, render_bake
from provision.inventory.model import Inventory
from provision.sim.guest_disk import baked_phases

GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"


def _inventory(vm: dict[str, Any] | None = None, **recipe: Any) -> Inventory:
    return Inventory.model_validate(
        {
            "hosts": {"pve1": {"api": "sim"}},
            "gpus": {"g1": {"host": "pve1", "mapping": "rtx4090", "vram_gb": 24}},
            "bake": {"base": {"from": "ubuntu-2404-cloud", "host": "pve1", **recipe}},
            "vms": {"box": {"host": "pve1", "template": "base", "gpu": "g1", **(vm or {})}},
        }
    )


def _clone(sim, api, source: int, newid: int, user_data: str) -> Any:
    assert (
        sim.wait(
            api, api.nodes("pve1").qemu(source).clone.post(newid=newid, name=f"v{newid}", full=1)
        )["exitstatus"]
        == "OK"
    )  # noqa: E501
    (sim.state_dir / "storage" / "local" / "snippets" / f"u{newid}.yaml").write_text(user_data)
    vm = api.nodes("pve1").qemu(newid)
    vm.config.put(cicustom=f"user=local:snippets/u{newid}.yaml")
    return vm


def _baked_template(sim, api, inv: Inventory) -> Any:
    vm = _clone(sim, api, 9000, 200, render_bake(inv, "base", recipe_digest(inv, "base")).text)
    sim.wait(api, vm.status.start.post())
    assert vm.status.current.get()["status"] == "stopped"  # powered itself off
    assert sim.wait(api, vm.template.post())["exitstatus"] == "OK"
    return vm


def _world_vm(sim, vmid: int) -> dict[str, Any]:
    state = json.loads((sim.state_dir / "state.json").read_text())
    return state["vms"][str(vmid)]


def _state(vm) -> dict[str, Any]:
    return json.loads(vm.agent("file-read").get(file="/var/lib/aihost/state.json")["content"])


def _gpu_vm(sim, api, inv: Inventory) -> Any:
    vm = _clone(sim, api, 200, 100, render_user_data(inv, "box").text)
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
    vm.config.put(machine="q35", hostpci0="mapping=rtx4090,pcie=1")
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    return vm


def test_a_bake_vm_powers_off_with_its_disk_baked_and_clones_copy_it(sim):
    api = sim.api()
    _baked_template(sim, api, _inventory())
    record = _world_vm(sim, 200)["disk"]["baked"]
    assert record["recipe"] == "base" and len(record["digest"]) == 64
    assert baked_phases(_world_vm(sim, 200)) == {"driver", "reboot", "runtime"}
    _clone(sim, api, 200, 101, "#cloud-config\n")
    assert _world_vm(sim, 101)["disk"]["baked"] == record


def test_a_vm_of_a_baked_template_skips_the_baked_phases_and_reaches_done(sim):
    api = sim.api()
    inv = _inventory(vm={"models": ["llama3.1:8b"]})
    _baked_template(sim, api, inv)
    state = _state(_gpu_vm(sim, api, inv))
    assert (state["phase"], state["status"]) == ("done", "ok")
    statuses = {phase: entry["status"] for phase, entry in state["phases"].items()}
    assert statuses == {
        "driver": "skipped",
        "reboot": "skipped",
        "runtime": "skipped",
        "models": "ok",
        "health": "ok",
        "done": "ok",
    }


def test_a_vm_asking_for_other_versions_than_baked_installs_them(sim):
    api = sim.api()
    inv = _inventory(vm={"versions": {"driver_branch": "570", "ollama": "0.30.0"}}, driver="580")
    _baked_template(sim, api, inv)
    statuses = {p: e["status"] for p, e in _state(_gpu_vm(sim, api, inv))["phases"].items()}
    assert statuses["driver"] == statuses["reboot"] == statuses["runtime"] == "ok"


def test_an_unbaked_template_has_no_baked_phases(sim):
    assert baked_phases(_world_vm(sim, 9000)) == frozenset()


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def test_template_with_disk_converts_only_that_disk(sim):
    """qemu-server API2/Qemu.pm `template`: `disk` converts one disk, also of a VM that
    is a template already ("you can't convert a template to a template" only without
    it); PVE/QemuServer.pm template_create with $disk."""
    api = sim.api()
    vm = _clone(sim, api, 9000, 100, "#cloud-config\n")
    vm.config.put(scsi1="local-lvm:1")
    assert sim.wait(api, vm.template.post(disk="scsi1"))["exitstatus"] == "OK"
    config = vm.config.get()
    assert config["scsi1"].startswith("local-lvm:base-100-disk-")
    assert config["scsi0"].startswith("local-lvm:vm-100-disk-") and config["template"] == 1
    assert _fail(vm.template.post).content == "you can't convert a template to a template"
    assert sim.wait(api, vm.template.post(disk="scsi0"))["exitstatus"] == "OK"
    assert vm.config.get()["scsi0"].startswith("local-lvm:base-100-disk-")


def test_a_disk_replaced_by_a_new_volume_becomes_unused(sim):
    """qemu-server PVE/QemuServer.pm vmconfig_apply_pending: a drive key given a new
    volume registers the old one (vmconfig_register_unused_drive: owned, not a CD-ROM)."""
    api = sim.api()
    vm = _clone(sim, api, 9000, 100, "#cloud-config\n")
    vm.config.put(efidisk0="local-lvm:1,efitype=4m")
    first = vm.config.get()["efidisk0"].split(",")[0]
    vm.config.put(efidisk0="local-lvm:1,efitype=4m,pre-enrolled-keys=0")
    config = vm.config.get()
    assert config["unused0"] == first and config["efidisk0"].split(",")[0] != first
    vm.config.put(efidisk0=config["efidisk0"].split(",")[0] + ",efitype=4m")  # same volume
    assert "unused1" not in vm.config.get()


def test_a_guests_own_poweroff_leaves_pending_changes_pending(clocked):
    """qemu-server src/PVE/CLI/qm.pm `cleanup` calls vm_stop_cleanup without
    $apply_pending_changes: unlike a stop through the API, nothing pending is applied."""
    sim, clock = clocked
    api = sim.api()
    inv = _inventory()
    user_data = render_bake(inv, "base", recipe_digest(inv, "base")).text
    vm = _clone_clocked(sim, api, clock, user_data)
    vm.status.start.post()
    clock.advance(2)  # qmstart 1.5 s done, within the 3 s boot: the bake has not run yet
    assert vm.status.current.get()["status"] == "running"
    vm.config.put(cores=3)
    clock.advance(5)
    assert vm.status.current.get()["status"] == "stopped"
    pending = {row["key"]: row for row in vm.pending.get()}
    assert pending["cores"]["pending"] == 3 and vm.config.get(current=1)["cores"] == 2


def _clone_clocked(sim, api, clock, user_data: str) -> Any:
    api.nodes("pve1").qemu(9000).clone.post(newid=100, name="bake", full=1)
    clock.advance(600)
    (sim.state_dir / "storage" / "local" / "snippets" / "b.yaml").write_text(user_data)
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(cicustom="user=local:snippets/b.yaml")
    return vm


class _Clock:
    """Time this test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_bake_vm_runs_its_installs_before_it_powers_off(make_sim):
    clock = _Clock()
    # boot 1 + packages 2 + driver 3 + DKMS 4 + reboot 1 + Ollama's install 5 = 16 s
    durations = {"boot": 1, "guest_apt": 2, "guest_driver": 3, "guest_dkms": 4}
    durations |= {"guest_reboot": 1, "guest_runtime_ollama": 5, "guest_health": 7}
    sim = make_sim(durations=durations | {"guest_pull_s_per_gb": 9}, clock=clock)
    api = sim.api()
    inv = _inventory(driver="580", runtime="ollama")
    vm = _clone(sim, api, 9000, 200, render_bake(inv, "base", recipe_digest(inv, "base")).text)
    clock.advance(10)
    vm.status.start.post()  # a start task of 0 s: the guest boots from now
    assert vm.status.current.get()["status"] == "running"
    clock.advance(15.9)
    assert vm.status.current.get()["status"] == "running"  # still installing
    clock.advance(0.2)
    assert vm.status.current.get()["status"] == "stopped"  # no models, no health: 16 s
    assert baked_phases(_world_vm(sim, 200)) == {"driver", "reboot", "runtime"}
