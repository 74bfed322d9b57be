"""The cluster snapshot (one request) and next_vmid."""

from __future__ import annotations

import pytest
import responses
from pve_testing import API, schema_violations

from provision.errors import ApiError
from provision.pve.cluster import ClusterSnapshot, VmInfo, next_vmid, split_tags

RESOURCES = [
    {
        "id": "qemu/100",
        "type": "qemu",
        "vmid": 100,
        "name": "llm-box",
        "node": "pve1",
        "status": "running",
        "template": 0,
        "tags": "aihost;gpu",
        "maxmem": 34359738368,
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
        "id": "qemu/101",
        "type": "qemu",
        "vmid": 101,
        "name": "llm-box",
        "node": "pve2",
        "status": "stopped",
        "lock": "clone",
        "template": 0,
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


@responses.activate
def test_snapshot_is_one_request(client):
    responses.get(f"{API}/cluster/resources", json={"data": RESOURCES})
    snapshot = ClusterSnapshot.read(client)
    assert len(responses.calls) == 1
    assert responses.calls[0].request.url.endswith("/cluster/resources?type=vm")
    assert schema_violations(responses.calls) == []
    assert [vm.vmid for vm in snapshot.by_name("llm-box")] == [100, 101]
    first = snapshot.by_vmid(100)
    assert first == VmInfo(
        100, "llm-box", "pve1", "running", False, None, ["aihost", "gpu"], 34359738368, "qemu"
    )
    assert snapshot.by_vmid(101).lock == "clone"
    assert [t.name for t in snapshot.templates()] == ["ubuntu-2404-cloud"]
    assert snapshot.by_vmid(200).type == "lxc"  # ids are shared with containers
    assert snapshot.by_name("dns") == []  # but containers are not VMs
    assert [vm.vmid for vm in snapshot.managed()] == [100]
    assert snapshot.used_vmids() == {100, 101, 200, 9000}
    assert snapshot.by_vmid(12345) is None
    assert len(responses.calls) == 1


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
