"""Making a VM (clone of a template, or create importing a cloud image) and removing a
half-made one again."""

from __future__ import annotations

import uuid
from typing import Any

from provision.delivery.generation import creation_mark
from provision.errors import AihostError, ApiError
from provision.gpu.claim import forget_holder
from provision.gpu.lease import this_owner
from provision.plan.vmplan import VmState
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops import twins
from provision.vmops.newid import create_with_free_id

CLONE_TIMEOUT = 1800.0


def make_vm(session: Session, state: VmState, node: Node) -> int:
    """Clone the template (or create with an imported disk); return the new vmid.

    The request itself marks the VM as aihost's (its description names this operation
    and this process), so a run killed at any later point leaves a VM the next run
    finishes. When another run makes a VM of the same name at the same time, one of the
    two goes on (provision.vmops.twins): if it is the other, this run's VM is removed
    again and the run stops with a conflict (exit 4).
    """
    desired = state.desired
    client = session.client(desired.host_name)
    mark = creation_mark(uuid.uuid4().hex[:12], desired.name, this_owner())
    # nextid and the create request are serialised: a fleet must not race for one id
    # (other processes may, create_with_free_id takes another id then).
    with session.create_lock:
        vmid, upid = create_with_free_id(
            client,
            desired.vmid,
            lambda v: post_create(session, state, v, mark),
            session.progress,
            desired.name,
            desired.node,
        )
        twins.creating(int(vmid), desired.name)
    try:
        node.vm(vmid).wait(upid, timeout=CLONE_TIMEOUT, what="create")
        source = state.template.node if state.template is not None else desired.node
        try:
            twins.settle(session, node.vm(int(vmid)), desired.name, [desired.node, source])
        except AihostError:  # lost to a twin, or could not tell: nothing is written yet
            remove_fresh(session, state, int(vmid))
            raise
    finally:
        twins.creating(int(vmid), None)
    return int(vmid)


def post_create(session: Session, state: VmState, vmid: int, mark: str) -> Any:
    """The clone or create request for vmid, marked as aihost's by mark; its UPID."""
    desired = state.desired
    client = session.client(desired.host_name)
    if state.template is not None:
        session.progress(f"{desired.name}: cloning template {state.template.vmid} as {vmid}")
        params: dict[str, Any] = {
            "newid": vmid,
            "name": desired.name,
            "full": 1,
            "storage": desired.disk_storage,
            "description": mark,
        }
        if state.template.node != desired.node:
            params["target"] = desired.node
        return Node(client, state.template.node).vm(state.template.vmid).clone(**params)
    session.progress(f"{desired.name}: creating {vmid} from {desired.image}")
    # GPUs are attached by the configure step, under their lease (gpu.claim)
    params = {k: v for k, v in desired.config.items() if not k.startswith("hostpci")}
    params.update(
        vmid=vmid,
        description=mark,
        scsihw="virtio-scsi-single",
        boot="order=scsi0",
        scsi0=f"{desired.disk_storage}:0,import-from={desired.image}",
    )
    return Node(client, desired.node).create_vm(**params)


def remove_fresh(session: Session, state: VmState, vmid: int) -> None:
    """Undo a VM this run created, so a failed run leaves nothing half-written."""
    vm = Node(session.client(state.desired.host_name), state.desired.node).vm(vmid)
    try:
        vm.destroy(what="remove the half-made VM")
        session.progress(f"{state.desired.name}: removed the new VM {vmid} again")
        forget_holder(session, list(state.desired.gpu_names), vmid)
    except ApiError as exc:
        session.progress(f"{state.desired.name}: could not remove VM {vmid}: {exc}")
