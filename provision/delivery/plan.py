"""Choose how a VM's cloud-init data reaches the node, and plan that delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provision.delivery.iso import IsoPlan, plan_iso
from provision.delivery.snippets import SnippetFile, plan_snippets
from provision.plan.model import Action
from provision.pve.api import Api
from provision.pve.node import Node

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


def plan_delivery(
    inv: Inventory,
    vm_name: str,
    host_name: str,
    client: Api,
    files: dict[str, bytes],
    *,
    hold_iso: str | None = None,
) -> DeliveryPlan:
    """Plan snippet upload over SFTP, or an ISO on the iso storage attached as ide2.

    hold_iso is the VM's attached cidata ide2 value when its user-data edit waits for a
    re-provision: the guest would not run the new ISO anyway, so it is kept (no upload,
    no config change, no restart).
    """
    host = inv.hosts[host_name]
    mode = delivery_mode(host)
    if mode == "iso" and hold_iso:
        return DeliveryPlan(mode, {"ide2": hold_iso}, ISO_DROP)
    if mode == "snippet":
        snippets = plan_snippets(
            inv, vm_name, host_name, client, files["user-data"], files["meta-data"]
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
