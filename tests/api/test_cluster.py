"""The cluster snapshot (resources plus the live list of each node with VMs) and next_vmid."""

from __future__ import annotations

import pytest
import responses
from pve_testing import API, schema_violations

from provision.errors import ApiError
from provision.pve.cluster import ClusterSnapshot, VmInfo, next_vmid, split_tags

# /cluster/resources as pvestatd last broadcast it: 100 since renamed and started, 101 too
# new to have a line (no name, status unknown), 104 destroyed since, 102 on an offline node.
RESOURCES = [
    {
        "id": "qemu/100",
        "type": "qemu",
        "vmid": 100,
        "name": "old-name",
        "node": "pve1",
        "status": "stopped",
        "template": 0,
        "tags": "aihost;gpu",
        "maxmem": 2147483648,
    },
    {
        "id": "qemu/101",
        "type": "qemu",
        "vmid": 101,
        "node": "pve2",
        "status": "unknown",
        "lock": "clone",
    },
    {
        "id": "qemu/102",
        "type": "qemu",
        "vmid": 102,
        "name": "far",
        "node": "pve3",
        "status": "running",
        "template": 0,
    },
    {
        "id": "qemu/104",
        "type": "qemu",
        "vmid": 104,
        "name": "gone",
        "node": "pve1",
        "status": "stopped",
        "template": 0,
    },
    {
        "id": "qemu/9000",
        "type": "qemu",
        "vmid": 9000,
        "name": "ubuntu-2404-cloud",
        "node": "pve2",
        "status": "stopped",
        "template": 1,
        "maxmem": 2147483648,
    },
    {
        "id": "lxc/200",
        "type": "lxc",
        "vmid": 200,
        "name": "dns",
        "node": "pve1",
        "status": "running",
    },
]
# GET /nodes/{node}/qemu (qemu-server vmstatus: live); 103 was made after the first read.
PVE1 = [
    {
        "vmid": 100,
        "name": "llm-box",
        "status": "running",
        "tags": "aihost;gpu",
        "maxmem": 34359738368,
        "cpus": 4,
        "pid": 4242,
        "uptime": 5,
    },
    {"vmid": 103, "name": "late", "status": "stopped", "maxmem": 1073741824},
]
PVE2 = [
    {"vmid": 101, "name": "llm-box", "status": "stopped", "lock": "clone"},
    {
        "vmid": 9000,
        "name": "ubuntu-2404-cloud",
        "status": "stopped",
        "template": 1,
        "maxmem": 2147483648,
    },
]


@responses.activate
def test_snapshot_takes_vm_facts_from_the_nodes_live_lists(client):
    responses.get(f"{API}/cluster/resources", json={"data": RESOURCES})
    responses.get(f"{API}/nodes/pve1/qemu", json={"data": PVE1})
    responses.get(f"{API}/nodes/pve2/qemu", json={"data": PVE2})
    responses.get(f"{API}/nodes/pve3/qemu", status=595, json={"data": None})
    snapshot = ClusterSnapshot.read(client)
    paths = [c.request.url.removeprefix(API) for c in responses.calls]
    assert paths[:3] == ["/cluster/resources?type=vm", "/nodes/pve1/qemu", "/nodes/pve2/qemu"]
    assert set(paths[3:]) == {"/nodes/pve3/qemu"}  # an offline node: retried, then skipped
    assert schema_violations(responses.calls) == []
    assert [vm.vmid for vm in snapshot.by_name("llm-box")] == [100, 101]
    assert snapshot.by_vmid(100) == VmInfo(
        100, "llm-box", "pve1", "running", False, None, ["aihost", "gpu"], 34359738368, "qemu"
    )
    assert snapshot.by_name("old-name") == []
    assert snapshot.by_vmid(101).lock == "clone"
    assert snapshot.by_vmid(102).status == "unknown"  # no live status from an offline node
    assert snapshot.unreachable == {"pve3"} and snapshot.unnamed_out_of_reach() == []
    assert snapshot.by_vmid(103).name == "late" and snapshot.by_vmid(104) is None
    assert [t.name for t in snapshot.templates()] == ["ubuntu-2404-cloud"]
    assert snapshot.by_vmid(200).type == "lxc"  # ids are shared with containers
    assert snapshot.by_name("dns") == []  # but containers are not VMs
    assert [vm.vmid for vm in snapshot.managed()] == [100]
    assert {g.vmid for g in snapshot.guests} == {100, 101, 102, 103, 200, 9000}


@responses.activate
def test_a_node_list_failing_otherwise_is_an_error(client):
    responses.get(f"{API}/cluster/resources", json={"data": RESOURCES[:1]})
    responses.get(
        f"{API}/nodes/pve1/qemu",
        status=403,
        json={"data": None, "message": "Permission check failed"},
    )
    with pytest.raises(ApiError, match="Permission check failed"):
        ClusterSnapshot.read(client)


@pytest.mark.parametrize(
    ("raw", "tags"),
    [("aihost;gpu", ["aihost", "gpu"]), ("a,b c", ["a", "b", "c"]), (None, []), ("", [])],
)
def test_split_tags(raw, tags):
    assert split_tags(raw) == tags


@responses.activate
def test_next_vmid_accepts_a_string(client):
    responses.get(f"{API}/cluster/nextid", json={"data": "105"})
    assert next_vmid(client) == 105


@responses.activate
def test_next_vmid_skips_ids_handed_out_in_this_run(client):
    responses.get(f"{API}/cluster/nextid", json={"data": 105})
    responses.get(
        f"{API}/cluster/nextid?vmid=106",
        status=400,
        json={
            "data": None,
            "message": "Parameter verification failed.",
            "errors": {"vmid": "VM 106 already exists"},
        },
    )
    responses.get(f"{API}/cluster/nextid?vmid=107", json={"data": 107})
    assert next_vmid(client, avoid={105, 106}) == 107
    assert schema_violations(responses.calls) == []


@responses.activate
def test_next_vmid_garbage(client):
    responses.get(f"{API}/cluster/nextid", json={"data": None})
    with pytest.raises(ApiError, match="not a VM id"):
        next_vmid(client)
