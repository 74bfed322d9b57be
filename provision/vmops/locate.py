"""Find the Proxmox VM behind an inventory name, refusing VMs aihost does not manage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ApiError, ConflictError
from provision.plan.desired import MANAGED_TAG

if TYPE_CHECKING:
    from provision.pve.cluster import ClusterSnapshot, VmInfo


def locate_vm(snapshot: ClusterSnapshot, name: str, vmid: int | None) -> VmInfo | None:
    """The managed VM for an inventory entry, None when it does not exist yet.

    Raises ConflictError when the vmid or name belongs to a VM without the aihost tag, or
    when the vmid holds a VM of another name.
    """
    if vmid is not None:
        info = snapshot.by_vmid(vmid)
        if info is None:
            return None
        if info.template:
            raise ConflictError(
                f"vmid {vmid} is a template, not VM '{name}'",
                hint="choose another vmid in the inventory",
            )
        if info.name != name and info.lock in ("clone", "create"):
            raise ConflictError(  # its config is only the lock until its task ends
                f"vmid {vmid} is being made (lock: {info.lock}), its name not yet known: "
                f"another `vm up {name}`, or another operation",
                hint="wait for it to finish, then re-run",
            )
        if info.name != name:
            raise ConflictError(
                f"vmid {vmid} belongs to VM '{info.name}', not '{name}'",
                hint="fix vmid in the inventory, or leave it out to get a free one",
            )
        _require_managed(info, name)
        return info
    candidates = [vm for vm in snapshot.by_name(name) if not vm.template]
    managed = [vm for vm in candidates if MANAGED_TAG in vm.tags]
    if len(managed) > 1:
        ids = ", ".join(str(vm.vmid) for vm in managed)
        raise ConflictError(
            f"several aihost VMs are named '{name}' (vmids {ids})",
            hint="set vmid: in the inventory to say which one",
        )
    if managed:
        return managed[0]
    if candidates:
        if candidates[0].lock:
            raise ConflictError(
                f"VM '{name}' ({candidates[0].vmid}) is locked ({candidates[0].lock}): another "
                "operation is still creating or changing it",
                hint="wait for it to finish, then re-run",
            )
        _require_managed(candidates[0], name)
    return None


def managed_on_node(vms: list[VmInfo] | None, name: str, vmid: int | None) -> VmInfo | None:
    """The VM for an inventory entry when its own node's live list settles it: exactly one
    non-template VM of that name (or that vmid with that name) there, tagged aihost and not
    locked. None means: ask the whole cluster (locate_vm)."""
    named = [
        vm
        for vm in vms or []
        if vm.name == name and not vm.template and (vmid is None or vm.vmid == vmid)
    ]
    if len(named) == 1 and MANAGED_TAG in named[0].tags and not named[0].lock:
        return named[0]
    return None


def _require_managed(info: VmInfo, name: str) -> None:
    if MANAGED_TAG not in info.tags:
        raise ConflictError(
            f"VM '{info.name}' (vmid {info.vmid} on {info.node}) exists but is not managed by "
            f"aihost (no '{MANAGED_TAG}' tag), so aihost will not touch it",
            hint=f"take it over with `aihost vm adopt {name} --vmid {info.vmid}`, or rename it",
        )


def require_not_out_of_reach(snapshot: ClusterSnapshot, name: str) -> None:
    """Before making VM `name`: refuse while a node that does not answer holds VMs whose
    names are unknown (one of them may be `name`; a second one must not be made)."""
    blind = snapshot.unnamed_out_of_reach()
    if blind:
        nodes = ", ".join(sorted({vm.node for vm in blind}))
        ids = ", ".join(str(vm.vmid) for vm in blind)
        raise ApiError(
            f"node {nodes} does not answer and holds VM(s) {ids} whose names are unknown, "
            f"so aihost cannot tell whether '{name}' already exists there",
            hint="bring the node back online, then re-run",
        )
