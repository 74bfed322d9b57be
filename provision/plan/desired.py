"""What the inventory wants a VM's Proxmox config to be (no network needed)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote

from provision.inventory.model import Gpu, Inventory, Vm
from provision.pve.pci import GpuRef

MANAGED_TAG = "aihost"


@dataclass(frozen=True)
class DesiredVm:
    """The VM as the inventory describes it, in Proxmox's terms."""

    name: str
    host_name: str
    node: str
    vmid: int | None
    template: str | None
    image: str | None
    disk_storage: str
    disk_gb: int
    config: dict[str, str]
    gpu_names: tuple[str, ...] = ()
    start_timeout: int = 30
    drop: tuple[str, ...] = ()  # keys aihost set that the VM no longer gets (deleted)


def snippet_names(vm_name: str) -> dict[str, str]:
    """File names of the VM's cloud-init snippets (user-data and meta-data)."""
    return {"user": f"aihost-{vm_name}-user.yaml", "meta": f"aihost-{vm_name}-meta.yaml"}


def hostpci_value(gpu: Gpu) -> str:
    """The hostpci property string attaching all functions of a GPU as PCIe."""
    return GpuRef.of(gpu).hostpci_value


def start_timeout_for(vm: Vm) -> int:
    """aihost's start timeout in seconds: passthrough VMs pin all RAM at start, so a GPU VM
    gets 3 s per GiB (at least 60 s), others max(30, memory in GiB); `start_timeout:` in
    the inventory replaces the rule. The planner raises it to qemu-server's own default
    for the config being started (provision.pve.vmconfig.config_aware_timeout) when that
    is longer.
    """
    if vm.start_timeout:
        return vm.start_timeout
    memory_gib = int(vm.memory_gb)
    if vm.gpu_names:
        return max(60, 3 * memory_gib)
    return max(30, memory_gib)


def desired_vm(inv: Inventory, vm_name: str) -> DesiredVm:
    """Translate one inventory VM into the Proxmox config aihost manages."""
    vm = inv.vm(vm_name)
    host = inv.hosts[vm.host]
    storage = host.storage
    names = snippet_names(vm_name)
    snippets = {kind: f"{storage.snippets}:snippets/{name}" for kind, name in names.items()}
    config: dict[str, str] = {
        "name": vm_name,
        "tags": MANAGED_TAG,
        "machine": "q35",
        "bios": "ovmf",
        "efidisk0": f"{storage.disks}:1,efitype=4m,pre-enrolled-keys=0",
        "cpu": "host",
        "agent": "1",
        "cores": str(vm.cores),
        "memory": str(int(vm.memory_gb * 1024)),
        "net0": _net0(vm),
        "ide2": f"{storage.disks}:cloudinit",
        "ipconfig0": _ipconfig(vm),
        "ciuser": vm.user.name,
        "cicustom": f"user={snippets['user']},meta={snippets['meta']}",
    }
    if vm.user.ssh_keys:
        config["sshkeys"] = quote("\n".join(vm.user.ssh_keys), safe="")
    if vm.network.nameserver:
        config["nameserver"] = vm.network.nameserver
    for index, gpu_name in enumerate(vm.gpu_names):
        config[f"hostpci{index}"] = hostpci_value(inv.gpus[gpu_name])
    return DesiredVm(
        name=vm_name,
        host_name=vm.host,
        node=inv.node_of(vm.host),
        vmid=vm.vmid,
        template=vm.template,
        image=vm.image,
        disk_storage=storage.disks,
        disk_gb=vm.disk_gb,
        config=config,
        gpu_names=tuple(vm.gpu_names),
        start_timeout=start_timeout_for(vm),
    )


def _net0(vm: Vm) -> str:
    value = f"virtio,bridge={vm.network.bridge}"
    if vm.network.vlan:
        value += f",tag={vm.network.vlan}"
    return value


def _ipconfig(vm: Vm) -> str:
    if vm.network.ip == "dhcp":
        return "ip=dhcp"
    value = f"ip={vm.network.ip}"
    if vm.network.gateway:
        value += f",gw={vm.network.gateway}"
    return value


def without_gpus(desired: DesiredVm, inv: Inventory, gpu_names: list[str]) -> DesiredVm:
    """desired without these GPUs' hostpci entries (a shared GPU another VM holds)."""
    refs = [GpuRef.of(inv.gpus[name]) for name in gpu_names]
    config = {
        k: v
        for k, v in desired.config.items()
        if not (k.startswith("hostpci") and any(r.named_by(v) for r in refs))
    }
    kept = tuple(g for g in desired.gpu_names if g not in gpu_names)
    return replace(desired, config=config, gpu_names=kept)
