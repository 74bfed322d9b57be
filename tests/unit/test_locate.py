"""Which VM an inventory entry means: the node's live list first, the cluster when unsure."""

from __future__ import annotations

import pytest

from provision.errors import ApiError, ConflictError
from provision.pve.cluster import ClusterSnapshot, VmInfo
from provision.vmops.locate import locate_vm, managed_on_node, require_not_out_of_reach


def _vm(vmid: int, name: str, *, tags=("aihost",), lock=None, template=False, node="pve1"):
    return VmInfo(vmid, name, node, "running", template, lock, list(tags))


def test_one_managed_vm_of_that_name_on_its_node_settles_it():
    vms = [_vm(100, "box"), _vm(101, "other"), _vm(9000, "box", template=True)]
    assert managed_on_node(vms, "box", None) == vms[0]
    assert managed_on_node(vms, "box", 100) == vms[0]


@pytest.mark.parametrize(
    "vms",
    [
        [],  # not on its node: it may be elsewhere, or new
        [_vm(100, "box"), _vm(102, "box")],  # two of them: the cluster read names the conflict
        [_vm(100, "box", tags=())],  # not aihost's: locate_vm refuses it
        [_vm(100, "box", lock="clone")],  # still being made
        [_vm(100, "other")],
    ],
    ids=["absent", "twice", "unmanaged", "locked", "other-name"],
)
def test_anything_else_asks_the_cluster(vms):
    assert managed_on_node(vms, "box", None) is None


def test_a_vmid_must_match_too():
    assert managed_on_node([_vm(100, "box")], "box", 105) is None
    assert managed_on_node(None, "box", None) is None  # the node did not answer


def test_no_new_vm_while_an_unreachable_node_holds_nameless_vms():
    named = ClusterSnapshot([_vm(100, "x", node="pve2")], unreachable={"pve2"})
    require_not_out_of_reach(named, "box")  # its name is known: not "box"
    blind = ClusterSnapshot([_vm(100, "", node="pve2")], unreachable={"pve2"})
    with pytest.raises(ApiError, match="node pve2 does not answer and holds VM"):
        require_not_out_of_reach(blind, "box")


def test_the_inventorys_vmid_still_being_made_is_named_as_such():
    snapshot = ClusterSnapshot([_vm(150, "VM 150", tags=(), lock="clone")])
    with pytest.raises(ConflictError, match=r"vmid 150 is being made \(lock: clone\)"):
        locate_vm(snapshot, "box", 150)
