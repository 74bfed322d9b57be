"""PCI passthrough as Proxmox checks it: root-only raw devices, mappings (existence,
Mapping.Use, hardware match), devices in use or reserved, IOMMU, q35, and the GPU
invariant monitor that records (never refuses) double use."""

from __future__ import annotations

import pytest
import requests
from proxmoxer.core import ResourceException

GPU_4090 = "node=pve1,path=0000:01:00,id=10de:2684,subsystem-id=1043:889d,iommugroup=12"
GPU_3060 = "node=pve1,path=0000:02:00,id=10de:2503,subsystem-id=1462:397d,iommugroup=13"


def _fail(call, *args, **kw) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call(*args, **kw)
    return caught.value


def _vms(sim, api, *ids):
    for vmid in ids:
        upid = api.nodes("pve1").qemu(9000).clone.post(newid=vmid, name=f"vm{vmid}", full=1)
        assert sim.wait(api, upid)["exitstatus"] == "OK"
        api.nodes("pve1").qemu(vmid).config.put(machine="q35")
    return [api.nodes("pve1").qemu(v) for v in ids]


def test_raw_host_pci_needs_a_root_password_login(sim):
    api = sim.api()
    (vm,) = _vms(sim, api, 100)
    err = _fail(vm.config.put, hostpci0="0000:01:00,pcie=1")
    assert err.status_code == 500
    assert err.content == "only root can set 'hostpci0' config for non-mapped devices"
    root = sim.root()
    root.nodes("pve1").qemu(100).config.put(hostpci0="0000:01:00,pcie=1")
    assert vm.config.get()["hostpci0"] == "0000:01:00,pcie=1"
    err = _fail(vm.config.put, delete="hostpci0")
    assert err.content == "only root can set 'hostpci0' config for non-mapped devices"
    err = _fail(vm.config.put, hostpci0="mapping=rtx4090")  # replacing a raw one is a change
    assert err.content.startswith("only root can set 'hostpci0'")
    root.nodes("pve1").qemu(100).config.put(delete="hostpci0")


def test_mapping_needs_mapping_use_at_config_and_must_exist_at_start(sim):
    """qemu-server API2/Qemu.pm check_hostpci_perm checks only Mapping.Use on the mapping's
    path; QemuServer/PCI.pm parse_hostpci, at start, finds the mapping missing."""
    api = sim.api()
    (vm,) = _vms(sim, api, 100)
    vm.config.put(hostpci0="mapping=rtx4090")
    start = sim.wait(api, vm.status.start.post())
    assert start["exitstatus"] == "PCI device mapping not found for 'rtx4090'"
    vm.config.put(delete="hostpci0")
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090], description="4090")
    err = _fail(
        sim.api("aihost@pve!nomapping").nodes("pve1").qemu(100).config.put,
        hostpci0="mapping=rtx4090,pcie=1",
    )
    assert err.status_code == 403
    assert err.content == "Permission check failed (/mapping/pci/rtx4090, Mapping.Use)"
    vm.config.put(hostpci0="mapping=rtx4090,pcie=1")
    start = sim.wait(api, vm.status.start.post())
    assert start["exitstatus"] == "OK"


def test_mapping_not_matching_the_hardware_fails_the_start(sim):
    api = sim.api()
    (vm,) = _vms(sim, api, 100)
    wrong = GPU_4090.replace("subsystem-id=1043:889d", "subsystem-id=1043:0000")
    api.cluster.mapping.pci.post(id="gpu", map=[wrong])
    checks = api.cluster.mapping.pci.get(**{"check-node": "pve1"})[0]["checks"]
    assert checks and checks[0]["severity"] == "error"
    vm.config.put(hostpci0="mapping=gpu,pcie=1")
    status = sim.wait(api, vm.status.start.post())
    assert status["exitstatus"].startswith("PCI device mapping invalid (hardware probably changed)")
    assert vm.status.current.get()["status"] == "stopped"


def test_device_in_use_by_a_running_vm_fails_the_second_start(sim):
    api = sim.api()
    a, b = _vms(sim, api, 100, 101)
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090])
    a.config.put(hostpci0="mapping=rtx4090,pcie=1")
    b.config.put(hostpci0="mapping=rtx4090,pcie=1")  # Proxmox allows it in two configs
    assert sim.wait(api, a.status.start.post())["exitstatus"] == "OK"
    status = sim.wait(api, b.status.start.post())
    assert status["exitstatus"] == "PCI device '0000:01:00.0' already in use by VMID '100'"
    violations = requests.get(
        f"{sim.server.url}/_sim/violations", verify=str(sim.server.cert_path)
    ).json()["data"]
    assert violations == [
        "GPU invariant: PCI device 0000:01:00.0 on pve1 is referenced by the configs of VMs 100, 101",  # noqa: E501
        "GPU invariant: PCI device 0000:01:00.1 on pve1 is referenced by the configs of VMs 100, 101",  # noqa: E501
    ]


def test_device_reserved_by_a_starting_vm(clocked):
    sim, clock = clocked
    api = sim.api()
    for vmid in (100, 101):
        api.nodes("pve1").qemu(9000).clone.post(newid=vmid, name=f"vm{vmid}", full=1)
    clock.advance(30)
    api.cluster.mapping.pci.post(id="gpu3060", map=[GPU_3060])
    for vmid in (100, 101):
        api.nodes("pve1").qemu(vmid).config.put(machine="q35", hostpci0="mapping=gpu3060")
    first = api.nodes("pve1").qemu(100).status.start.post()
    second = api.nodes("pve1").qemu(101).status.start.post()
    clock.advance(30)
    assert api.nodes("pve1").tasks(first).status.get()["exitstatus"] == "OK"
    assert api.nodes("pve1").tasks(second).status.get()["exitstatus"] == (
        "PCI device '0000:02:00.0' is currently reserved for use by VMID '100'"
    )


def test_hostpci_change_on_running_vm_waits_for_the_next_start(sim):
    api = sim.api()
    (vm,) = _vms(sim, api, 100)
    api.cluster.mapping.pci.post(id="rtx3060", map=[GPU_3060])
    sim.wait(api, vm.status.start.post())
    vm.config.put(hostpci0="mapping=rtx3060")
    assert "hostpci0" not in vm.config.get(current=1)
    assert vm.config.get()["hostpci0"] == "mapping=rtx3060"
    sim.wait(api, vm.status.stop.post())
    assert vm.config.get(current=1)["hostpci0"] == "mapping=rtx3060"


def test_pcie_needs_q35(sim):
    api = sim.api()
    (vm,) = _vms(sim, api, 100)
    api.cluster.mapping.pci.post(id="gpu3060", map=[GPU_3060])
    vm.config.put(hostpci0="mapping=gpu3060,pcie=1", delete="machine")
    assert sim.wait(api, vm.status.start.post())["exitstatus"] == "q35 machine model is not enabled"


def test_node_without_iommu_cannot_pass_through(two_node):
    sim = two_node
    api = sim.api()
    hw = api.nodes("pve3").hardware.pci.get()
    assert {d["iommugroup"] for d in hw} == {-1}
    api.nodes("pve3").qemu.post(vmid=300, name="noiommu", memory="2048", machine="q35")
    entry = "node=pve3,path=0000:01:00,id=10de:1b80,subsystem-id=10de:119e,iommugroup=-1"
    api.cluster.mapping.pci.post(id="gtx", map=[entry])
    api.nodes("pve3").qemu(300).config.put(hostpci0="mapping=gtx")
    status = sim.wait(api, api.nodes("pve3").qemu(300).status.start.post())
    assert status["exitstatus"] == "cannot prepare PCI pass-through, IOMMU not present"


def test_shared_iommu_group_is_visible_in_the_hardware_list(two_node):
    hw = two_node.api().nodes("pve2").hardware.pci.get()
    group7 = sorted(d["id"] for d in hw if d["iommugroup"] == 7)
    assert group7 == ["0000:0a:00.0", "0000:0a:00.1", "0000:0b:00.0"]


def test_mapping_crud_with_digest(sim):
    api = sim.api()
    api.cluster.mapping.pci.post(id="rtx4090", map=[GPU_4090], description="free")
    entry = api.cluster.mapping.pci("rtx4090").get()
    assert entry["map"] == [GPU_4090] and entry["description"] == "free"
    api.cluster.mapping.pci("rtx4090").put(
        description="leased by 100", digest=entry["digest"], map=[GPU_4090]
    )
    err = _fail(
        api.cluster.mapping.pci("rtx4090").put,
        description="x",
        digest=entry["digest"],
        map=[GPU_4090],
    )
    assert err.content == (
        "update hardware mapping failed: "
        "detected modified configuration - file changed by other user? Try again."
    )
    assert api.cluster.mapping.pci("rtx4090").get()["description"] == "leased by 100"
    api.cluster.mapping.pci("rtx4090").delete()
    assert api.cluster.mapping.pci.get() == []


def test_mapping_with_several_devices_takes_the_first_free_one(sim):
    api = sim.api()
    vms = _vms(sim, api, 100, 101, 102)
    api.cluster.mapping.pci.post(id="anygpu", map=[GPU_4090, GPU_3060])
    for vm in vms:
        vm.config.put(hostpci0="mapping=anygpu,pcie=1")
    assert sim.wait(api, vms[0].status.start.post())["exitstatus"] == "OK"
    assert sim.wait(api, vms[1].status.start.post())["exitstatus"] == "OK"
    third = sim.wait(api, vms[2].status.start.post())
    assert third["exitstatus"] == "could not find a free device for 'hostpci0'"


def test_mapping_without_iommugroup_fails_the_start_one_property_at_a_time(sim):
    api = sim.api()
    (vm,) = _vms(sim, api, 100)
    api.cluster.mapping.pci.post(id="bare", map=["node=pve1,path=0000:02:00,id=10de:2503"])
    vm.config.put(hostpci0="mapping=bare")
    status = sim.wait(api, vm.status.start.post())
    assert status["exitstatus"] == (
        "PCI device mapping invalid (hardware probably changed): "
        "missing expected property 'iommugroup' for device '0000:02:00.0'"
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("pcie=1", "Either 'host' or 'mapping' must be set."),
        ("0000:01:00,mapping=rtx4090,pcie=1", "Cannot set both 'host' and 'mapping'."),
    ],
)
def test_root_may_write_a_hostpci_parse_hostpci_refuses_at_start(sim, value, error):
    """root@pam skips check_hostpci_perm; the start runs qemu-server QemuServer/PCI.pm
    parse_hostpci (from parse_hostpci_devices), which dies before the q35 check."""
    api = sim.api()
    _vms(sim, api, 100)
    root = sim.root().nodes("pve1").qemu(100)
    root.config.put(hostpci0=value, delete="machine")
    assert sim.wait(api, root.status.start.post())["exitstatus"] == error
