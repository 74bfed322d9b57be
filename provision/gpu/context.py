"""Everything a GPU operation needs: the GPU, its node, client, lease and VM steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.errors import ApiError, InputError
from provision.gpu.devices import VmGpuSteps
from provision.gpu.lease import GpuLease
from provision.gpu.register import MappingRegister, NodeNotesRegister
from provision.inventory.model import Gpu
from provision.pve.cluster import node_vms
from provision.pve.node import Node
from provision.pve.pci import GpuRef
from provision.pve.session import Session
from provision.pve.vm import config_gone
from provision.vmops.locate import locate_vm


@dataclass(frozen=True)
class Holder:
    """A VM whose config refers to the GPU."""

    vmid: int
    name: str
    status: str
    keys: tuple[str, ...]


class GpuContext:
    """One inventory GPU in one command."""

    def __init__(self, session: Session, gpu_name: str, *, clock: Any = None) -> None:
        self.session = session
        self.name = gpu_name
        self.gpu: Gpu = session.inv.gpu(gpu_name)
        self.ref = GpuRef.of(self.gpu)
        self.host_name = self.gpu.host
        self.node = session.inv.node_of(self.gpu.host)
        self.client = session.client(self.host_name)
        self.pve_node = Node(self.client, self.node)
        register = (
            MappingRegister(self.client, self.gpu.mapping)
            if self.gpu.mapping
            else NodeNotesRegister(self.client, self.node)
        )
        extra = {"clock": clock} if clock else {}
        self.lease = GpuLease(register, gpu_name, **extra)
        self.steps = VmGpuSteps(self.pve_node, self.say)

    def say(self, message: str) -> None:
        """Progress line prefixed with the GPU's name."""
        self.session.progress(f"{self.name}: {message}")

    def holders(self, *, refresh: bool = True, skip: int | None = None) -> list[Holder]:
        """VMs on the GPU's node whose config refers to it (read from Proxmox, not a file).

        refresh re-reads the node's live VM list (GET /nodes/{node}/qemu: a claim or a
        swap must see VMs made since the command began, which the cluster list shows
        without a name until the next status broadcast); without it the list this command
        read first is used. skip leaves out a VM the caller already knows about.
        """
        vms = (
            node_vms(self.client, self.node)
            if refresh
            else self.session.node_vms(self.host_name, self.node)
        )
        if vms is None:
            raise ApiError(
                f"node {self.node} does not answer, so aihost cannot tell which "
                f"VM holds GPU {self.name}",
                hint="bring the node back, then re-run",
            )
        found = []
        for vm in vms:
            if vm.template or vm.vmid == skip:
                continue
            try:
                config = self.pve_node.vm(vm.vmid).config()
            except ApiError as exc:
                if config_gone(exc.message):  # removed since the listing: holds nothing
                    continue
                raise
            keys = self.ref.keys_in(config)
            if keys:
                found.append(
                    Holder(vm.vmid, str(config.get("name") or vm.name), vm.status, tuple(keys))
                )
        return found

    def vm_by_name(self, name: str) -> Any:
        """The managed VM of an inventory name (VmInfo), or an InputError."""
        vm = self.session.inv.vm(name)
        if self.name not in vm.gpu_names:
            wanted = ", ".join(vm.gpu_names) or "no GPU"
            raise InputError(
                f"the inventory gives VM '{name}' {wanted}, not GPU {self.name}",
                hint=f"add {self.name} to {name}'s gpu: in the inventory first"
                if not vm.gpu_names
                else f"swap the GPU it names: `aihost gpu swap {vm.gpu_names[0]} --to {name}`",
            )
        info = locate_vm(self.session.snapshot(vm.host), name, vm.vmid)
        if info is None:
            raise InputError(
                f"VM '{name}' does not exist yet",
                hint=f"create it with the card: `aihost vm up {name} --take-gpu`",
            )
        if info.node != self.node:
            raise InputError(f"VM '{name}' is on node {info.node}, GPU {self.name} on {self.node}")
        return info
