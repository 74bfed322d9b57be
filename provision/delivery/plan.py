"""Choose how a VM's cloud-init data reaches the node, and plan that delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from provision.delivery.iso import IsoPlan, plan_iso
from provision.delivery.snippets import (
    EarlyReads,
    SnippetFile,
    Storages,
    plan_snippets,
    read_current,
    read_key,
)
from provision.errors import AihostError
from provision.plan.model import Action
from provision.pve.api import Api
from provision.pve.node import Node
from provision.pve.session import Session

if TYPE_CHECKING:
    from provision.inventory.model import Host, Inventory


def delivery_mode(host: Host) -> str:
    """`snippet` (SFTP) or `iso` (API upload); auto picks iso when there is no SSH."""
    if host.cloudinit_delivery != "auto":
        return host.cloudinit_delivery
    return "snippet" if host.ssh is not None or host.api == "sim" else "iso"


@dataclass
class DeliveryPlan:
    """What the VM's config must say, and what to put where, for its cloud-init data."""

    mode: str
    config: dict[str, str]
    drop_keys: tuple[str, ...]
    actions: list[Action] = field(default_factory=list)
    snippets: list[SnippetFile] = field(default_factory=list)
    iso: IsoPlan | None = None


ISO_DROP = ("cicustom", "ipconfig0", "ciuser", "sshkeys", "nameserver")


def start_snippet_read(session: Session, vm_name: str) -> None:
    """Begin the SSH half of the VM's snippet check now, in the background (import paramiko,
    connect, check the host key, log in, `pvesm path`, read the files), so that it overlaps
    the API reads made before it; plan_snippets takes its result, and its errors are raised
    there as if it had run then. Nothing starts for an ISO delivery or when no SSH target
    can be named (plan_snippets reports that in its turn)."""
    inv = session.inv
    host_name = inv.vms[vm_name].host
    host = inv.hosts[host_name]
    if delivery_mode(host) != "snippet":
        return
    try:
        if host.api == "sim":
            session.client(host_name)  # starts the simulator (with its progress), as a read would
        key = read_key(inv, vm_name, host_name)
    except AihostError:
        return
    session.start_early(("snippets", *key), partial(read_current, *key))


def plan_delivery(
    inv: Inventory,
    vm_name: str,
    host_name: str,
    client: Api,
    files: dict[str, bytes],
    *,
    hold_iso: str | None = None,
    early: EarlyReads | None = None,
    storages: Storages | None = None,
) -> DeliveryPlan:
    """Plan snippet upload over SFTP, or an ISO on the iso storage attached as ide2.

    hold_iso is the VM's attached cidata ide2 value when its user-data edit waits for a
    re-provision: the guest would not run the new ISO anyway, so it is kept (no upload,
    no config change, no restart). early: plan_snippets' reads begun in the background;
    storages: the node's storage list as the command read it.
    """
    host = inv.hosts[host_name]
    mode = delivery_mode(host)
    if mode == "iso" and hold_iso:
        return DeliveryPlan(mode, {"ide2": hold_iso}, ISO_DROP)
    if mode == "snippet":
        snippets = plan_snippets(
            inv,
            vm_name,
            host_name,
            client,
            files["user-data"],
            files["meta-data"],
            early,
            storages,
        )
        actions = [
            Action("upload-user-data", f"upload {s.volume} (sha256 {s.sha256[:12]})")
            for s in snippets
            if not s.present
        ]
        return DeliveryPlan(mode, {}, (), actions, snippets=snippets)
    iso = plan_iso(Node(client, inv.node_of(host_name)), host.storage.iso, vm_name, files)
    actions = [] if iso.present else [Action("upload-iso", f"upload {iso.volume}")]
    config = {"ide2": f"{iso.volume},media=cdrom"}
    # Proxmox's own cloud-init drive would be a second `cidata` volume: leave it out.
    return DeliveryPlan(mode, config, ISO_DROP, actions, iso=iso)
