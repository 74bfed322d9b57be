"""List, inspect, stop and remove managed VMs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from provision.delivery.iso import iso_prefix, remove_volumes
from provision.delivery.plan import delivery_mode
from provision.delivery.snippets import remove_snippets
from provision.errors import ConflictError, InputError
from provision.gpu.claim import forget_holder
from provision.plan.desired import MANAGED_TAG, snippet_names
from provision.pve.node import Node
from provision.pve.session import Session
from provision.vmops.access import access_for, guest_address, static_address
from provision.vmops.locate import locate_vm


@dataclass
class VmStatus:
    """One inventory VM as Proxmox sees it, and how to reach it."""

    vm: str
    host: str
    node: str
    vmid: int | None
    status: str
    gpu: list[str]
    runtime: str
    endpoint: str | None
    lock: str | None = None
    address: str | None = None
    way_in: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return asdict(self)


def list_vms(session: Session, names: list[str], *, ask_guest: bool = False) -> list[VmStatus]:
    """Status of each inventory VM from one cluster snapshot (live names and states); with
    ask_guest, a running VM's address from its guest agent (one read each)."""
    rows = []
    for name in names:
        vm = session.inv.vm(name)
        info = locate_vm(session.snapshot(vm.host), name, vm.vmid)
        address = static_address(vm)
        if ask_guest and address is None and info is not None and info.status == "running":
            address = guest_address(session.client(vm.host), info.node, info.vmid)
        vmid = info.vmid if info else vm.vmid
        access = access_for(vm, vmid, address)
        rows.append(
            VmStatus(
                vm=name,
                host=vm.host,
                node=info.node if info else session.inv.node_of(vm.host),
                vmid=vmid,
                status=info.status if info else "absent",
                gpu=vm.gpu_names,
                runtime=vm.runtime,
                endpoint=access.endpoint,
                lock=info.lock if info else None,
                address=address,
                way_in=access.way_in if info else f"not made yet: `aihost vm up {name}`",
            )
        )
    return rows


def stop_vm(session: Session, name: str, *, force: bool, timeout: float) -> str:
    """Shut the VM down through ACPI/agent within timeout; --force stops it hard."""
    vm = session.inv.vm(name)
    info = locate_vm(session.snapshot(vm.host), name, vm.vmid)
    if info is None:
        raise InputError(f"VM '{name}' does not exist in Proxmox")
    if info.status != "running":
        return "already stopped"
    handle = Node(session.client(vm.host), info.node, session.progress).vm(info.vmid)
    if force:
        handle.stop(timeout)
        return "stopped (forced)"
    handle.shutdown(timeout)
    return "shut down"


def destroy_vm(session: Session, name: str) -> dict[str, Any]:
    """Stop and remove a managed VM and its snippets; refuse VMs without the aihost tag."""
    vm = session.inv.vm(name)
    info = locate_vm(session.snapshot(vm.host), name, vm.vmid)
    if info is None:
        raise InputError(f"VM '{name}' does not exist in Proxmox; nothing to destroy")
    if MANAGED_TAG not in info.tags:
        raise ConflictError(f"VM {info.vmid} is not tagged '{MANAGED_TAG}'; refusing to destroy")
    node = Node(session.client(vm.host), info.node, session.progress)
    handle = node.vm(info.vmid)
    if info.status == "running":
        handle.stop()
    handle.destroy(unreferenced_disks=True)
    forget_holder(session, list(vm.gpu_names), info.vmid)
    host = session.inv.hosts[vm.host]
    removed: list[str] = []
    if delivery_mode(host) == "iso":
        listed = node.storage(host.storage.iso).content("iso")
        isos = [str(v["volid"]) for v in listed if iso_prefix(name) in str(v.get("volid"))]
        remove_volumes(node, isos)
        removed = isos
    elif remove_snippets(session.inv, vm.host, name):
        removed = list(snippet_names(name).values())
    return {"vm": name, "vmid": info.vmid, "destroyed": True, "removed": removed}
