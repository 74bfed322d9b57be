"""cicustom at the start, as qemu-server reads it (Cloudinit.pm generate_cloudinit_config,
get_custom_cloudinit_files, read_cloudinit_snippets_file): only for a cloud-init drive,
network before user, meta and vendor, through pve-storage's parse_volname and
activate_volume; the config write takes any well-formed volume id."""

from __future__ import annotations

import pytest
from proxmoxer.core import ResourceException

AGENT = "#cloud-config\npackages: [qemu-guest-agent]\n"


def _clone(sim, api, storage: str | None = None):
    params = {"storage": storage} if storage else {}
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=100, name="ci", full=1, **params)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    return api.nodes("pve1").qemu(100)


def _start(sim, api, vm) -> str:
    return sim.wait(api, vm.status.start.post())["exitstatus"]


def test_without_a_cloudinit_drive_the_snippets_are_not_read(sim):
    api = sim.api()
    vm = _clone(sim, api)
    vm.config.put(delete="ide2")
    vm.config.put(cicustom="user=local:snippets/absent.yaml,network=local-lvm:snippets/n.yaml")
    assert _start(sim, api, vm) == "OK"


def test_without_a_cloudinit_drive_the_guest_gets_nothing_from_them(sim):
    api = sim.api()
    (sim.state_dir / "storage" / "local" / "snippets" / "u.yaml").write_text(AGENT)
    vm = _clone(sim, api)
    vm.config.put(cicustom="user=local:snippets/u.yaml")
    assert _start(sim, api, vm) == "OK"
    assert vm.agent.ping.post() == {"result": {}}
    assert sim.wait(api, vm.status.stop.post())["exitstatus"] == "OK"
    vm.config.put(delete="ide2")
    assert _start(sim, api, vm) == "OK"
    with pytest.raises(ResourceException, match="QEMU guest agent is not running"):
        vm.agent.ping.post()


def test_the_network_snippet_is_read_first(sim):
    api = sim.api()
    vm = _clone(sim, api)
    vm.config.put(cicustom="user=local:snippets/u-gone.yaml,network=local:snippets/n-gone.yaml")
    assert _start(sim, api, vm) == "volume 'local:snippets/n-gone.yaml' does not exist"


def test_a_volume_outside_the_snippets_directory_fails_the_start(sim):
    api = sim.api()
    vm = _clone(sim, api)
    vm.config.put(cicustom="user=local:iso/seed.iso")
    assert _start(sim, api, vm) == "local:iso/seed.iso is not in the snippets directory"


def test_a_file_storage_without_snippets_content_still_serves_them(two_node):
    """The content types of a storage are not checked when the snippet is read; and a
    cloud-init drive on a file storage (tank:100/vm-100-cloudinit.qcow2) counts."""
    sim = two_node
    api = sim.api()
    snippets = sim.state_dir / "storage" / "tank" / "snippets"
    snippets.mkdir(parents=True, exist_ok=True)
    (snippets / "u.yaml").write_text(AGENT)
    vm = _clone(sim, api)
    vm.config.put(delete="ide2")
    vm.config.put(ide2="tank:cloudinit", cicustom="user=tank:snippets/u.yaml")
    assert vm.config.get()["ide2"].startswith("tank:100/vm-100-cloudinit.qcow2")
    assert _start(sim, api, vm) == "OK"
    assert vm.agent.ping.post() == {"result": {}}


def test_a_snippet_on_an_unknown_storage_fails_the_start_not_the_write(sim):
    api = sim.api()
    vm = _clone(sim, api)
    vm.config.put(cicustom="user=nosuch:snippets/u.yaml")
    assert _start(sim, api, vm) == "storage 'nosuch' does not exist"


def test_the_iso_is_generated_only_for_a_cloudinit_drive(sim):
    """Cloudinit.pm commit_cloudinit_disk logs it; a snippet named cloudinit is no drive."""
    api = sim.api()
    (sim.state_dir / "storage" / "local" / "snippets" / "cloudinit.yaml").write_text(AGENT)
    vm = _clone(sim, api)
    vm.config.put(cicustom="user=local:snippets/cloudinit.yaml")
    node = api.nodes("pve1")
    upid = vm.status.start.post()
    assert "generating cloud-init ISO" in [line["t"] for line in node.tasks(upid).log.get()]
    assert sim.wait(api, vm.status.stop.post())["exitstatus"] == "OK"
    vm.config.put(delete="ide2")
    upid = vm.status.start.post()
    assert "generating cloud-init ISO" not in [line["t"] for line in node.tasks(upid).log.get()]


def test_destroy_frees_a_cloudinit_drive_on_a_file_storage(two_node):
    """QemuServer.pm destroy_vm keeps CD-ROMs but not the cloud-init drive (Drive.pm
    drive_is_cdrom with exclude_cloudinit -> drive_is_cloudinit, a .qcow2 one too)."""
    sim = two_node
    api = sim.api()
    vm = _clone(sim, api)
    vm.config.put(delete="ide2")
    vm.config.put(ide2="tank:cloudinit")
    assert vm.config.get()["ide2"].startswith("tank:100/vm-100-cloudinit.qcow2,media=cdrom")
    assert sim.wait(api, vm.delete())["exitstatus"] == "OK"
    volids = [c["volid"] for c in api.nodes("pve1").storage("tank").content.get()]
    assert "tank:100/vm-100-cloudinit.qcow2" not in volids
