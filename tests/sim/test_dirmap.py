"""/cluster/mapping/dir as pve-manager PVE/API2/Cluster/Mapping/Dir.pm serves it (checks
from pve-guest-common PVE/Mapping/Dir.pm), and `virtiofsN` on VMs as qemu-server checks
it (API2/Qemu.pm check_dir_perm, QemuServer/Virtiofs.pm at start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from proxmoxer.core import ResourceException

from provision.sim.fixture import DEFAULT_FIXTURE

STORE = "node=pve1,path=/srv/aihost-models"
CHANGED = "detected modified configuration - file changed by other user? Try again."


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


@pytest.fixture
def store_sim(make_sim, tmp_path: Path):
    """The default world whose node pve1 has the directory /srv/aihost-models."""
    data = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    data["nodes"]["pve1"]["dirs"] = ["/srv/aihost-models"]
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    return make_sim(path)


def test_create_get_list_and_one_digest_for_the_file(store_sim):
    api = store_sim.api()
    dirs = api.cluster.mapping.dir
    dirs.post(id="aihost-models", map=[STORE], description="models")
    got = dirs("aihost-models").get()
    assert got["map"] == [STORE] and got["description"] == "models" and got["type"] == "dir"
    assert "id" not in got and len(got["digest"]) == 40
    (row,) = dirs.get()
    assert row["id"] == "aihost-models" and row["digest"] == got["digest"]
    # the PCI mappings are another file: their writes leave this digest alone
    api.cluster.mapping.pci.post(id="gpu", map=["node=pve1,path=0000:01:00,id=10de:2684"])
    assert dirs("aihost-models").get()["digest"] == got["digest"]
    dirs.post(id="other", map=["node=pve1,path=/srv"])
    assert dirs("aihost-models").get()["digest"] != got["digest"]


def test_create_refusals(store_sim):
    api = store_sim.api()
    dirs = api.cluster.mapping.dir
    err = _fail(dirs.post, id="miss", map=["node=pve1,path=/srv/nothing"])
    assert (err.status_code, err.content) == (500, "Path /srv/nothing does not exist")
    err = _fail(dirs.post, id="miss", map=["node=pve1,path=/etc/hostname"])
    assert err.content == "Path /etc/hostname exists, but is not a directory"
    err = _fail(dirs.post, id="miss", map=[STORE, "node=pve1,path=/srv"])
    assert err.content == "Node 'pve1' is specified 2 times."
    err = _fail(dirs.post, id="miss")
    assert err.status_code == 400 and "map" in err.errors
    store_sim.allow_violations = True
    err = _fail(dirs.post, id="miss", map=["node=pve1,path=relative"])
    assert err.status_code == 400
    assert "not look like a valid absolute path" in err.errors["map[0]"]
    # another node's path is not checked where the API answers (assert_valid_map_list)
    dirs.post(id="miss", map=["node=pve2,path=/nowhere"])
    dirs.post(id="nn", map=[STORE])
    err = _fail(dirs.post, id="nn", map=[STORE])
    assert err.content == "create directory mapping failed: dir ID 'nn' already defined"


def test_update_needs_map_checks_digest_and_keeps_other_keys(store_sim):
    api = store_sim.api()
    dirs = api.cluster.mapping.dir
    dirs.post(id="models", map=[STORE], description="kept")
    entry = dirs("models")
    digest = entry.get()["digest"]
    err = _fail(entry.put, description="x", digest=digest)
    assert err.content == (
        "update directory mapping failed: missing value for required option 'map'"
    )
    err = _fail(entry.put, map=[STORE], digest="0" * 40)
    assert err.content == f"update directory mapping failed: {CHANGED}"
    err = _fail(dirs("nope").put, map=[STORE])
    assert err.content == "update directory mapping failed: dir ID 'nope' does not exist"
    err = _fail(entry.put, map=["node=pve1,path=/srv/gone"], digest=digest)
    assert err.content == "update directory mapping failed: Path /srv/gone does not exist"
    err = _fail(entry.put, map=[STORE], delete="map")
    assert err.content.endswith("unable to delete required option 'map'")
    entry.put(map=[STORE, "node=pve2,path=/data"], digest=digest)
    assert entry.get()["description"] == "kept"
    entry.put(map=[STORE], delete="description")
    assert "description" not in entry.get()


def test_permissions_and_delete(store_sim):
    api = store_sim.api()
    api.cluster.mapping.dir.post(id="models", map=[STORE])
    readonly = store_sim.api("aihost@pve!readonly")
    assert readonly.cluster.mapping.dir("models").get()["map"] == [STORE]  # Mapping.Audit
    assert [r["id"] for r in readonly.cluster.mapping.dir.get()] == ["models"]
    err = _fail(readonly.cluster.mapping.dir.post, id="x", map=[STORE])
    assert (err.status_code, err.content) == (
        403,
        "Permission check failed (/mapping/dir, Mapping.Modify)",
    )
    err = _fail(readonly.cluster.mapping.dir("models").put, map=[STORE])
    assert err.content == "Permission check failed (/mapping/dir/models, Mapping.Modify)"
    err = _fail(readonly.cluster.mapping.dir("models").delete)
    assert err.content == "Permission check failed (/mapping/dir, Mapping.Modify)"
    api.cluster.mapping.dir("absent").delete()  # no error for a missing id
    api.cluster.mapping.dir("models").delete()
    err = _fail(api.cluster.mapping.dir("models").get)
    assert (err.status_code, err.content) == (500, "mapping 'models' not found")


def test_check_node_reports_missing_entries_and_paths(store_sim):
    api = store_sim.api()
    api.cluster.mapping.dir.post(id="here", map=[STORE])
    api.cluster.mapping.dir.post(id="there", map=["node=pve2,path=/data"])
    rows = {r["id"]: r for r in api.cluster.mapping.dir.get(**{"check-node": "pve1"})}
    assert rows["here"]["checks"] == []
    assert rows["there"]["checks"] == [
        {"severity": "warning", "message": "No mapping for node pve1."}
    ]
    assert "checks" not in api.cluster.mapping.dir.get()[0]


def _vm(sim, api, vmid=100):
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=vmid, name=f"vm{vmid}", full=1)
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    return api.nodes("pve1").qemu(vmid)


def test_virtiofs_needs_mapping_use_and_disk_privilege(store_sim):
    api = store_sim.api()
    api.cluster.mapping.dir.post(id="models", map=[STORE])
    _vm(store_sim, api)
    nouse = store_sim.api("aihost@pve!nomapuse").nodes("pve1").qemu(100)
    err = _fail(nouse.config.put, virtiofs0="models")
    assert (err.status_code, err.content) == (
        403,
        "Permission check failed (/mapping/dir/models, Mapping.Use)",
    )
    hwci = store_sim.api("aihost@pve!hwci").nodes("pve1").qemu(100)
    err = _fail(hwci.config.put, virtiofs0="models")
    assert err.content == "Permission check failed (/vms/100, VM.Config.Disk)"
    api.nodes("pve1").qemu(100).config.put(virtiofs0="models,cache=always")
    err = _fail(nouse.config.put, delete="virtiofs0")  # deleting checks the old value
    assert err.content == "Permission check failed (/mapping/dir/models, Mapping.Use)"
    clone = store_sim.api("aihost@pve!nomapuse").nodes("pve1").qemu(100).clone.post
    err = _fail(clone, newid=101, full=1)
    assert err.content == "Permission check failed (/mapping/dir/models, Mapping.Use)"


def test_start_needs_the_mapping_an_entry_for_the_node_and_the_directory(store_sim):
    api = store_sim.api()
    vm = _vm(store_sim, api)
    vm.config.put(virtiofs0="models")
    status = store_sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "Directory ID models does not exist."
    api.cluster.mapping.dir.post(id="models", map=["node=pve2,path=/data"])
    status = store_sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "No directory mapping for node pve1."
    api.cluster.mapping.dir("models").put(map=["node=pve2,path=/data", STORE])
    assert store_sim.wait(api, vm.status.start.post())["exitstatus"] == "OK"
    assert vm.status.current.get()["status"] == "running"


def test_start_refuses_a_path_that_is_gone(make_sim, tmp_path: Path):
    """The mapping was written while the directory existed; the node lost it since."""
    data = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    data["nodes"]["pve1"]["dirs"] = ["/srv/aihost-models"]
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    first = make_sim(path, state=tmp_path / "state")
    api = first.api()
    api.cluster.mapping.dir.post(id="models", map=[STORE])
    vm = _vm(first, api)
    vm.config.put(virtiofs0="models")
    first.server.stop()
    state = tmp_path / "state" / "state.json"
    world = json.loads(state.read_text())
    world["nodes"]["pve1"]["dirs"] = []
    state.write_text(json.dumps(world))
    second = make_sim(path, state=tmp_path / "state")
    api = second.api()
    status = second.wait(api, api.nodes("pve1").qemu(100).status.start.post())
    assert status["exitstatus"] == (
        "directory mapping invalid: Path /srv/aihost-models does not exist"
    )


def test_start_without_virtiofsd_on_the_node(make_sim, tmp_path: Path):
    data = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    data["nodes"]["pve1"].update(dirs=["/srv/aihost-models"], virtiofsd=False)
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    sim = make_sim(path)
    api = sim.api()
    api.cluster.mapping.dir.post(id="models", map=[STORE])
    vm = _vm(sim, api)
    vm.config.put(virtiofs0="models")
    status = sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == (
        "virtiofsd is not installed. To use virtio-fs, install virtiofsd via apt."
    )


def test_start_checks_come_in_vm_start_nolocks_order(store_sim):
    """config_to_command resolves the PCI mapping, then Virtiofs.pm config checks the
    directory mapping; only after that does reserve_pci_usage find the GPU in use."""
    api = store_sim.api()
    gpu = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
    api.cluster.mapping.pci.post(id="rtx4090", map=[gpu])
    holder, vm = _vm(store_sim, api, 100), _vm(store_sim, api, 101)
    for each in (holder, vm):
        each.config.put(machine="q35", hostpci0="mapping=rtx4090,pcie=1")
    assert store_sim.wait(api, holder.status.start.post())["exitstatus"] == "OK"
    vm.config.put(virtiofs0="models", hostpci0="mapping=gone,pcie=1")
    status = store_sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "PCI device mapping not found for 'gone'"
    vm.config.put(hostpci0="mapping=rtx4090,pcie=1")  # in use by 100, and no dir mapping
    status = store_sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "Directory ID models does not exist."
    api.cluster.mapping.dir.post(id="models", map=[STORE])
    status = store_sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == "PCI device '0000:01:00.0' already in use by VMID '100'"


def test_before_84_there_are_no_directory_mappings_nor_virtiofs(make_sim, tmp_path: Path):
    data = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    data["version"] = "8.3.5"
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    sim = make_sim(path)
    api = sim.api()
    assert api.version.get()["release"] == "8.3"
    err = _fail(api.cluster.mapping.dir.get)
    assert (err.status_code, err.content) == (
        501,
        "Method 'GET /cluster/mapping/dir' not implemented",
    )
    vm = _vm(sim, api)
    err = _fail(vm.config.put, virtiofs0="models")
    assert err.status_code == 400 and "not defined in schema" in err.errors["virtiofs0"]


def test_check_node_reports_a_path_missing_on_that_node(make_sim, tmp_path: Path):
    """Only the answering node's path is checked on create (assert_valid_map_list);
    check-node runs assert_valid on the node named."""
    two = DEFAULT_FIXTURE.parent / "two-node.yaml"
    data = yaml.safe_load(two.read_text())
    data["nodes"]["pve1"]["dirs"] = ["/srv/aihost-models"]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    api = make_sim(path).api()
    both = [STORE, "node=pve2,path=/srv/aihost-models"]
    api.cluster.mapping.dir.post(id="models", map=both)
    (row,) = api.cluster.mapping.dir.get(**{"check-node": "pve2"})
    assert row["checks"] == [
        {
            "severity": "error",
            "message": "Invalid configuration: Path /srv/aihost-models does not exist\n",
        }
    ]
