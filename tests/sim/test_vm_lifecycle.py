"""VM semantics through plain proxmoxer: tasks and UPIDs, locks, digests, pending changes,
create with import-from, resize, template, destroy, start outcomes."""

from __future__ import annotations

import re

import pytest
from proxmoxer.core import ResourceException

UPID = re.compile(r"UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:(\w+):(\d*):([^:]+):")


def _clone(sim, api, newid=100, **kw):
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=newid, name=f"vm{newid}", full=1, **kw)
    return upid, sim.wait(api, upid)


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def test_clone_returns_a_real_upid_and_task_log(sim):
    api = sim.api()
    upid, status = _clone(sim, api)
    match = UPID.fullmatch(upid)
    assert match and match.groups() == ("qmclone", "9000", "root@pam!aihost")
    assert status["status"] == "stopped" and status["exitstatus"] == "OK"
    log = api.nodes("pve1").tasks(upid).log.get()
    assert log[-1] == {"n": len(log), "t": "TASK OK"}
    config = api.nodes("pve1").qemu(100).config.get()
    assert config["scsi0"].startswith("local-lvm:vm-100-disk-0") and "template" not in config


def test_vm_under_clone_is_locked_until_the_task_ends(clocked):
    sim, clock = clocked
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=101, name="busy", full=1)
    assert api.nodes("pve1").tasks(upid).status.get()["status"] == "running"
    assert api.nodes("pve1").qemu(101).status.current.get()["lock"] == "clone"
    err = _fail(api.nodes("pve1").qemu(101).config.put, cores=4)
    assert err.status_code == 500 and err.content == "VM is locked (clone)"
    start = sim.wait(api, api.nodes("pve1").qemu(101).status.start.post())
    assert start["exitstatus"] == "VM is locked (clone)"  # vm_start checks in its worker
    clock.advance(60)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "OK"
    api.nodes("pve1").qemu(101).config.put(cores=4)
    assert "lock" not in api.nodes("pve1").qemu(101).status.current.get()


def test_digest_mismatch_is_refused_with_proxmox_wording(sim):
    api = sim.api()
    _clone(sim, api)
    vm = api.nodes("pve1").qemu(100)
    digest = vm.config.get()["digest"]
    vm.config.put(cores=3, digest=digest)
    err = _fail(vm.config.put, cores=5, digest=digest)
    assert err.status_code == 500
    assert err.content == "checksum mismatch (file change by other user?)"
    assert vm.config.get()["cores"] == 3


def test_config_post_is_a_task_and_delete_removes_keys(sim):
    api = sim.api()
    _clone(sim, api)
    vm = api.nodes("pve1").qemu(100)
    upid = vm.config.post(description="hello", tags="aihost")
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    vm.config.put(delete="description,tags")
    config = vm.config.get()
    assert "description" not in config and "tags" not in config


def test_change_on_running_vm_stays_pending_until_stop(sim):
    api = sim.api()
    _clone(sim, api)
    vm = api.nodes("pve1").qemu(100)
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    vm.config.put(cores=8, name="renamed")
    assert vm.config.get()["cores"] == 8  # pending shown by default
    assert vm.config.get(current=1)["cores"] == 2
    assert vm.config.get(current=1)["name"] == "renamed"  # hot-pluggable at once
    pending = {p["key"]: p for p in vm.pending.get()}
    assert pending["cores"]["value"] == 2 and pending["cores"]["pending"] == 8
    assert sim.wait(api, vm.status.shutdown.post(timeout=60))["exitstatus"] == "OK"
    assert vm.config.get(current=1)["cores"] == 8
    assert "pending" not in {k for p in vm.pending.get() for k in p}


def test_create_imports_the_cloud_image_and_warns_without_efidisk(sim):
    api = sim.api()
    upid = api.nodes("pve1").qemu.post(
        vmid=120,
        name="img",
        memory="4096",
        bios="ovmf",
        machine="q35",
        scsi0="local-lvm:0,import-from=local:import/noble-server-cloudimg-amd64.qcow2",
        ide2="local-lvm:cloudinit",
        net0="virtio,bridge=vmbr0",
    )
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    config = api.nodes("pve1").qemu(120).config.get()
    assert config["scsi0"] == "local-lvm:vm-120-disk-0,size=3584M"
    assert config["ide2"] == "local-lvm:vm-120-cloudinit,media=cdrom"
    start = sim.wait(api, api.nodes("pve1").qemu(120).status.start.post())
    assert start["exitstatus"] == "WARNINGS: 1"
    log = [line["t"] for line in api.nodes("pve1").tasks(start["upid"]).log.get()]
    assert "WARN: no efidisk configured! Using temporary efivars disk." in log
    api.nodes("pve1").qemu(120).status.stop.post()
    api.nodes("pve1").qemu(120).config.put(efidisk0="local-lvm:1,efitype=4m,pre-enrolled-keys=0")
    efi = api.nodes("pve1").qemu(120).config.get()["efidisk0"]
    assert efi == "local-lvm:vm-120-disk-1,efitype=4m,pre-enrolled-keys=0,size=4M"
    assert sim.wait(api, api.nodes("pve1").qemu(120).status.start.post())["exitstatus"] == "OK"


def test_create_with_a_missing_import_source_is_refused(sim):
    err = _fail(
        sim.api().nodes("pve1").qemu.post,
        vmid=121,
        scsi0="local-lvm:0,import-from=local:import/nope.qcow2",
    )
    assert err.content == "volume 'local:import/nope.qcow2' does not exist"


def test_resize_grows_and_refuses_shrinking(sim):
    api = sim.api()
    _clone(sim, api)
    vm = api.nodes("pve1").qemu(100)
    assert sim.wait(api, vm.resize.put(disk="scsi0", size="+10G"))["exitstatus"] == "OK"
    assert vm.config.get()["scsi0"].endswith("size=13824M")
    assert sim.wait(api, vm.resize.put(disk="scsi0", size="40G"))["exitstatus"] == "OK"
    assert vm.config.get()["scsi0"].endswith("size=40G")
    upid = vm.resize.put(disk="scsi0", size="1G")
    assert UPID.fullmatch(upid).group(1) == "resize"
    assert sim.wait(api, upid)["exitstatus"] == "shrinking disks is not supported"
    assert vm.config.get()["scsi0"].endswith("size=40G")


def test_template_then_linked_clone_and_destroy(sim):
    api = sim.api()
    _clone(sim, api)
    assert sim.wait(api, api.nodes("pve1").qemu(100).template.post())["exitstatus"] == "OK"
    assert api.nodes("pve1").qemu(100).config.get()["scsi0"].startswith("local-lvm:base-100-disk-0")
    upid = api.nodes("pve1").qemu(100).clone.post(newid=102, name="linked")
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    assert (
        api.nodes("pve1")
        .qemu(102)
        .config.get()["scsi0"]
        .startswith("local-lvm:base-100-disk-0/vm-102-disk-0")
    )
    start = sim.wait(api, api.nodes("pve1").qemu(100).status.start.post())
    assert start["exitstatus"] == "you can't start a vm if it's a template"
    assert sim.wait(api, api.nodes("pve1").qemu(102).delete(purge=1))["exitstatus"] == "OK"
    assert 102 not in [v["vmid"] for v in api.cluster.resources.get(type="vm")]
    volids = [c["volid"] for c in api.nodes("pve1").storage("local-lvm").content.get()]
    assert not [v for v in volids if "vm-102" in v]


def test_running_vm_cannot_be_destroyed(sim):
    api = sim.api()
    _clone(sim, api)
    sim.wait(api, api.nodes("pve1").qemu(100).status.start.post())
    assert _fail(api.nodes("pve1").qemu(100).delete).content == "VM 100 is running - destroy failed"  # noqa: E501


def test_start_timeout_and_shutdown_timeout(clocked):
    sim, clock = clocked
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="slow", full=1)
    clock.advance(30)
    requests_durations = {"qmstart": 40, "qmshutdown": 100}
    import requests

    requests.post(
        f"{sim.server.url}/_sim/durations",
        json=requests_durations,
        verify=str(sim.server.cert_path),
    )
    vm = api.nodes("pve1").qemu(100)
    upid = vm.status.start.post(timeout=10)
    clock.advance(11)
    status = api.nodes("pve1").tasks(upid).status.get()
    assert status["exitstatus"].startswith("start failed: command '/usr/bin/kvm -id 100")
    assert status["exitstatus"].endswith("failed: got timeout")
    upid = vm.status.start.post(timeout=60)
    clock.advance(41)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "OK"
    upid = vm.status.shutdown.post(timeout=5)
    clock.advance(6)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == (
        "VM quit/powerdown failed - got timeout"
    )
    assert vm.status.current.get()["status"] == "running"
    upid = vm.status.shutdown.post(timeout=5, forceStop=1)
    clock.advance(6)
    assert api.nodes("pve1").tasks(upid).status.get()["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "stopped"


def test_create_with_start_hides_a_failed_start(sim):
    api = sim.api()
    upid = api.nodes("pve1").qemu.post(
        vmid=130,
        name="hidden",
        memory="2048",
        start=1,
        ide2="local-lvm:cloudinit",
        cicustom="user=local:snippets/absent.yaml",
    )
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    assert api.nodes("pve1").qemu(130).status.current.get()["status"] == "stopped"
    start = sim.wait(api, api.nodes("pve1").qemu(130).status.start.post())
    assert start["exitstatus"] == "volume 'local:snippets/absent.yaml' does not exist"


def test_deleted_disk_of_a_stopped_vm_becomes_unused(sim):
    api = sim.api()
    _clone(sim, api)
    vm = api.nodes("pve1").qemu(100)
    vm.config.put(scsi1="local-lvm:8")
    assert vm.config.get()["scsi1"] == "local-lvm:vm-100-disk-1,size=8G"
    vm.config.put(delete="scsi1")
    config = vm.config.get()
    assert "scsi1" not in config and config["unused0"] == "local-lvm:vm-100-disk-1"
