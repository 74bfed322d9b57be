"""A cluster of several nodes served by one simulator; cross-node clones."""

from __future__ import annotations

import pytest
from proxmoxer.core import ResourceException


def test_every_node_is_served_and_listed(two_node):
    api = two_node.api()
    assert [n["node"] for n in api.nodes.get()] == ["pve1", "pve2", "pve3"]
    status = api.cluster.status.get()
    assert status[0] == {**status[0], "type": "cluster", "name": "homelab", "quorate": 1}
    assert {vm["vmid"]: vm["node"] for vm in api.cluster.resources.get(type="vm")} == {
        9000: "pve1",
        9001: "pve2",
    }
    assert [vm["vmid"] for vm in api.nodes("pve2").qemu.get()] == [9001]
    gpus = api.nodes("pve2").hardware.pci.get()
    assert any(d["device"] == "0x2503" for d in gpus)


def test_vm_asked_on_the_wrong_node_does_not_exist(two_node):
    with pytest.raises(ResourceException) as caught:
        two_node.api().nodes("pve1").qemu(9001).config.get()
    assert (
        caught.value.content
        == "Configuration file 'nodes/pve1/qemu-server/9001.conf' does not exist"
    )  # noqa: E501


def test_clone_of_a_shared_storage_template_to_another_node(two_node):
    sim = two_node
    api = sim.api()
    upid = api.nodes("pve1").qemu(9000).clone.post(newid=200, name="far", target="pve2", full=1)
    assert upid.startswith("UPID:pve1:")
    assert sim.wait(api, upid)["exitstatus"] == "OK"
    vm = next(v for v in api.cluster.resources.get(type="vm") if v["vmid"] == 200)
    assert vm["node"] == "pve2"
    assert api.nodes("pve2").qemu(200).config.get()["scsi0"].startswith("tank:200/vm-200-disk-0")
    assert sim.wait(api, api.nodes("pve2").qemu(200).status.start.post())["exitstatus"] == "OK"


def test_clone_from_local_storage_to_another_node_is_refused(two_node):
    api = two_node.api()
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve2").qemu(9001).clone.post(newid=201, name="x", target="pve1", full=1)
    assert caught.value.content == "can't clone VM to node 'pve1' (VM uses local storage)"


def test_node_config_is_a_compare_and_set_register(two_node):
    api = two_node.api()
    digest = api.nodes("pve2").config.get()["digest"]
    api.nodes("pve2").config.put(description="lease: rtx3060 -> 200", digest=digest)
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve2").config.put(description="other writer", digest=digest)
    assert caught.value.content.startswith("detected modified configuration")
    assert api.nodes("pve2").config.get()["description"] == "lease: rtx3060 -> 200\n"
    assert "description" not in api.nodes("pve1").config.get()


def test_clone_checks_bridges_and_mappings_before_the_target_node(two_node):
    """qemu-server API2/Qemu.pm clone_vm $load_and_check: check_mapping_access and
    check_bridge_access on the source config come before "can't clone VM to node"
    (which follows $check_storage_access_clone's shared verdict on the source volumes)."""
    sim = two_node
    source = sim.api("aihost@pve!nosdn").nodes("pve2").qemu(9001)
    with pytest.raises(ResourceException) as caught:
        source.clone.post(newid=201, name="x", target="pve1", full=1)
    assert caught.value.status_code == 403
    sdn = "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)"
    assert caught.value.content == sdn
    sim.root().nodes("pve2").qemu(9001).config.put(hostpci0="mapping=gpu,pcie=1")
    with pytest.raises(ResourceException) as caught:
        sim.api("aihost@pve!nomapping").nodes("pve2").qemu(9001).clone.post(
            newid=201, name="x", target="pve1", full=1
        )
    assert caught.value.content == "Permission check failed (/mapping/pci/gpu, Mapping.Use)"
