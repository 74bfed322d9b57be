"""Storages: listing, status, content, uploads (iso/vztmpl/import only, as the real
upload endpoint), deletes, and cicustom snippets checked only at start."""

from __future__ import annotations

import pytest
from proxmoxer.core import ResourceException


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def test_storages_and_their_content(sim):
    api = sim.api()
    storages = {s["storage"]: s for s in api.nodes("pve1").storage.get()}
    assert storages["local"]["content"] == "iso,vztmpl,backup,snippets,import"
    assert storages["local-lvm"]["type"] == "lvmthin"
    assert [s["storage"] for s in api.nodes("pve1").storage.get(content="snippets")] == ["local"]
    status = api.nodes("pve1").storage("local-lvm").status.get()
    assert status["total"] == status["used"] + status["avail"]
    imports = api.nodes("pve1").storage("local").content.get(content="import")
    assert [c["volid"] for c in imports] == ["local:import/noble-server-cloudimg-amd64.qcow2"]
    images = api.nodes("pve1").storage("local-lvm").content.get(content="images")
    assert {c["volid"] for c in images} == {
        "local-lvm:base-9000-disk-0",
        "local-lvm:base-9001-disk-0",
    }  # noqa: E501


def _file(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path.open("rb")


def test_upload_iso_and_import_then_delete(sim, tmp_path):
    api = sim.api()
    local = api.nodes("pve1").storage("local")
    with _file(tmp_path, "seed.iso", b"ISO") as handle:
        upid = local.upload.post(content="iso", filename=handle)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    with _file(tmp_path, "disk.qcow2", b"QFI") as handle:
        upid = local.upload.post(content="import", filename=handle)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    assert "local:iso/seed.iso" in [c["volid"] for c in local.content.get(content="iso")]
    assert (sim.state_dir / "storage" / "local" / "import" / "disk.qcow2").read_bytes() == b"QFI"
    volids = [c["volid"] for c in local.content.get()]
    assert "local:import/disk.qcow2" in volids
    assert sim.wait(api, local.content("local:import/disk.qcow2").delete())["exitstatus"] == "OK"
    assert "local:import/disk.qcow2" not in [c["volid"] for c in local.content.get()]


def test_upload_of_snippets_is_refused_as_proxmox_does(sim, tmp_path):
    sim.allow_violations = True  # the schema refuses it too, which is the point
    with _file(tmp_path, "user.yaml", b"#cloud-config\n") as handle:
        err = _fail(
            sim.api().nodes("pve1").storage("local").upload.post,
            content="snippets",
            filename=handle,
        )
    assert err.status_code == 400 and err.content == "Parameter verification failed."
    assert "content" in err.errors
    assert not (sim.state_dir / "storage" / "local" / "snippets" / "user.yaml").exists()


def _vm_with_cicustom(sim, api, cicustom: str):
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="ci", full=1))
    api.nodes("pve1").qemu(100).config.put(cicustom=cicustom)
    return api.nodes("pve1").qemu(100)


def test_missing_snippet_fails_the_start_not_the_config_write(sim):
    api = sim.api()
    vm = _vm_with_cicustom(sim, api, "user=local:snippets/missing.yaml")
    status = sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "volume 'local:snippets/missing.yaml' does not exist"
    snippet = sim.state_dir / "storage" / "local" / "snippets" / "missing.yaml"
    snippet.write_text("#cloud-config\npackages: [qemu-guest-agent]\n")
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"


def test_snippet_on_an_lvm_storage_fails_the_start_as_its_volume_name_does(sim):
    """pve-storage LvmThinPlugin.pm parse_volname -> Plugin.pm parse_lvm_name."""
    api = sim.api()
    vm = _vm_with_cicustom(sim, api, "user=local-lvm:snippets/u.yaml")
    status = sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "lvm name 'snippets/u.yaml' contains illegal characters"


def test_deleting_an_image_in_use_is_not_refused(sim):
    """pve-storage PVE/API2/Storage/Content.pm delete + PVE/Storage.pm vdisk_free: no
    check of VM configs; the imgdel task (id VMID@STORAGE) frees the volume."""
    api = sim.api()
    sim.wait(api, api.nodes("pve1").qemu(9000).clone.post(newid=100, name="d", full=1))
    upid = api.nodes("pve1").storage("local-lvm").content("local-lvm:vm-100-disk-0").delete()
    status = sim.wait(api, upid)
    assert (status["exitstatus"], status["id"]) == ("OK", "100@local-lvm")
    volids = [c["volid"] for c in api.nodes("pve1").storage("local-lvm").content.get()]
    assert "local-lvm:vm-100-disk-0" not in volids
    assert api.nodes("pve1").qemu(100).config.get()["scsi0"].startswith("local-lvm:vm-100-disk-0")
