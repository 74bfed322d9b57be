"""Making a VM (clone of a template, or create importing a cloud image) and removing a
half-made one again."""

from __future__ import annotations

from typing import Any

from provision.errors import ApiError
from provision.plan.vmplan import VmState
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops.newid import create_with_free_id

CLONE_TIMEOUT = 1800.0


def make_vm(session: Session, state: VmState, node: Node) -> int:
    """Clone the template (or create with an imported disk); return the new vmid."""
    desired = state.desired
    client = session.client(desired.host_name)
    say = session.progress
    # nextid and the create request are serialised: a fleet must not race for one id
    # (other processes may, create_with_free_id takes another id then).
    with session.create_lock:
        vmid, upid = create_with_free_id(
            client, desired.vmid, lambda v: post_create(session, state, v), say, desired.name,
            desired.node,
        )
    node.vm(vmid).wait(upid, timeout=CLONE_TIMEOUT, what="create")
    return int(vmid)


def post_create(session: Session, state: VmState, vmid: int) -> Any:
    """The clone or create request for vmid; its UPID."""
    desired = state.desired
    client = session.client(desired.host_name)
    if state.template is not None:
        session.progress(f"{desired.name}: cloning template {state.template.vmid} as {vmid}")
        params: dict[str, Any] = {"newid": vmid, "name": desired.name, "full": 1,
                                  "storage": desired.disk_storage}
        if state.template.node != desired.node:
            params["target"] = desired.node
        return Node(client, state.template.node).vm(state.template.vmid).clone(**params)
    session.progress(f"{desired.name}: creating {vmid} from {desired.image}")
    params = dict(desired.config)
    params.update(vmid=vmid, scsihw="virtio-scsi-single", boot="order=scsi0",
                  scsi0=f"{desired.disk_storage}:0,import-from={desired.image}")
    return Node(client, desired.node).create_vm(**params)


def remove_fresh(session: Session, state: VmState, vmid: int) -> None:
    """Undo a VM this run created, so a failed run leaves nothing half-written."""
    vm = Node(session.client(state.desired.host_name), state.desired.node).vm(vmid)
    try:
        vm.destroy(what="remove the half-made VM")
        session.progress(f"{state.desired.name}: removed the new VM {vmid} again")
    except ApiError as exc:
        session.progress(f"{state.desired.name}: could not remove VM {vmid}: {exc}")
