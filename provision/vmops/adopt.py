"""`vm adopt`: take a hand-made VM under management, after showing what would change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.delivery.plan import ISO_DROP, delivery_mode
from provision.errors import ConflictError, InputError
from provision.plan.compare import config_changes
from provision.plan.desired import MANAGED_TAG, desired_vm
from provision.pve.node import Node
from provision.pve.pci import GpuRef
from provision.pve.session import Session


def adoption_diff(session: Session, name: str, vmid: int) -> dict[str, Any]:
    """Read VM vmid and compare it with the inventory's entry `name` (reads only)."""
    inv = session.inv
    desired = desired_vm(inv, name)
    if desired.vmid is not None and desired.vmid != vmid:
        raise InputError(f"the inventory gives {name} vmid {desired.vmid}, not {vmid}")
    info = session.snapshot(desired.host_name).by_vmid(vmid)
    if info is None:
        raise InputError(f"no VM {vmid} in the cluster")
    if info.template:
        raise InputError(f"{vmid} is a template; adopt a VM")
    if desired.vmid is None and info.name != name:
        raise InputError(
            f"VM {vmid} is named '{info.name}', not '{name}'",
            hint=f"add vmid: {vmid} to vms.{name} in the inventory first",
        )
    if MANAGED_TAG in info.tags:
        raise ConflictError(f"VM {vmid} is already managed by aihost (tag '{MANAGED_TAG}')")
    config = Node(session.client(desired.host_name), info.node).vm(vmid).config()
    digest = config.pop("digest", None)
    skip = {"tags", "efidisk0"}
    if delivery_mode(inv.hosts[desired.host_name]) == "iso":
        skip |= {"ide2", *ISO_DROP}  # the cidata ISO is planned by `vm up`, with its upload
    wanted = {k: v for k, v in desired.config.items() if k not in skip}
    changes = config_changes(wanted, config, gpus=[GpuRef.of(g) for g in inv.gpus.values()])
    return {
        "vm": name,
        "vmid": vmid,
        "node": info.node,
        "current_name": info.name,
        "status": info.status,
        "tags": info.tags,
        "digest": digest,
        "differences": [{"key": c.key, "now": c.old, "inventory": c.new} for c in changes],
    }


def adopt(
    session: Session, name: str, vmid: int, confirm: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Show the diff; only if confirm(diff) says yes, add the aihost tag (guarded by digest)."""
    diff = adoption_diff(session, name, vmid)
    if not confirm(diff):
        return {**diff, "adopted": False}
    tags = [t for t in diff["tags"] if t] + [MANAGED_TAG]
    client = session.client(session.inv.vms[name].host)
    Node(client, diff["node"]).vm(vmid).set_now({"tags": ";".join(tags)}, digest=diff["digest"])
    return {**diff, "adopted": True}
