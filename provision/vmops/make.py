"""Making a VM (clone of a template, or create importing a cloud image) and removing a
half-made one again."""

from __future__ import annotations

import uuid
from typing import Any

from provision.delivery.generation import creation_mark
from provision.errors import ApiError, ConflictError
from provision.gpu.claim import forget_holder
from provision.gpu.lease import this_owner
from provision.plan.vmplan import VmState
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops.newid import create_with_free_id

CLONE_TIMEOUT = 1800.0


def make_vm(session: Session, state: VmState, node: Node) -> int:
    """Clone the template (or create with an imported disk); return the new vmid.

    The request itself marks the VM as aihost's (its description names this operation),
    so a run killed at any later point leaves a VM the next run finishes. When another
    run made a VM of the same name meanwhile, the one with the lower vmid stays: this
    run's VM is removed again and the run stops with a conflict (exit 4).
    """
    desired = state.desired
    client = session.client(desired.host_name)
    say = session.progress
    mark = creation_mark(uuid.uuid4().hex[:12], desired.name, this_owner())
    # nextid and the create request are serialised: a fleet must not race for one id
    # (other processes may, create_with_free_id takes another id then).
    with session.create_lock:
        vmid, upid = create_with_free_id(
            client,
            desired.vmid,
            lambda v: post_create(session, state, v, mark),
            say,
            desired.name,
            desired.node,
        )
    node.vm(vmid).wait(upid, timeout=CLONE_TIMEOUT, what="create")
    _one_of_a_name(session, state, int(vmid))
    return int(vmid)


def _one_of_a_name(session: Session, state: VmState, vmid: int) -> None:
    """Two `vm up X` at once: keep the VM with the lower vmid, remove this one if it is
    the other's twin."""
    desired = state.desired
    rows = Node(session.client(desired.host_name), desired.node).vms()
    twins = sorted(
        int(r["vmid"])
        for r in rows
        if r.get("name") == desired.name and not r.get("template") and int(r["vmid"]) < vmid
    )
    if twins:
        remove_fresh(session, state, vmid)
        raise ConflictError(
            f"VM '{desired.name}' was created meanwhile by another run (VM {twins[0]})",
            hint=f"run `aihost vm up {desired.name}` again when it is done",
        )


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
