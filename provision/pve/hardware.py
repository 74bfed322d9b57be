"""A node's PCI hardware listing, and finding a GPU in it."""

from __future__ import annotations

from dataclasses import dataclass

from provision.pve.api import Api
from provision.pve.node import Node
from provision.pve.pci import pci_slot

NVIDIA = "0x10de"


@dataclass(frozen=True)
class PciDevice:
    """One PCI function as /nodes/{node}/hardware/pci lists it."""

    id: str
    vendor: str
    device: str
    cls: str
    subsystem_vendor: str | None
    subsystem_device: str | None
    iommugroup: int
    name: str

    @property
    def slot(self) -> str:
        """domain:bus:slot without the function."""
        return pci_slot(self.id)

    @property
    def vendor_device(self) -> str:
        """vendor:device as a mapping's id= wants it, e.g. 10de:2684."""
        return f"{_hex(self.vendor)}:{_hex(self.device)}"

    @property
    def subsystem(self) -> str | None:
        """subsystem vendor:device, e.g. 1043:889d, when the hardware has one."""
        if not self.subsystem_vendor or not self.subsystem_device:
            return None
        if _hex(self.subsystem_vendor) in ("0000", ""):
            return None
        return f"{_hex(self.subsystem_vendor)}:{_hex(self.subsystem_device)}"

    @property
    def is_gpu(self) -> bool:
        """Display-class (0x03xxxx) function."""
        return self.cls.lower().startswith("0x03")


def _hex(value: str) -> str:
    return value.lower().removeprefix("0x").zfill(4)


def read_pci(client: Api, node: str) -> list[PciDevice]:
    """The node's PCI devices."""
    rows = Node(client, node).pci()
    return [
        PciDevice(
            id=str(r["id"]),
            vendor=str(r.get("vendor", "")),
            device=str(r.get("device", "")),
            cls=str(r.get("class", "")),
            subsystem_vendor=r.get("subsystem_vendor"),
            subsystem_device=r.get("subsystem_device"),
            iommugroup=int(r.get("iommugroup", -1)),
            name=str(r.get("device_name") or r.get("device", "")),
        )
        for r in rows
    ]


def functions_of(devices: list[PciDevice], slot: str) -> list[PciDevice]:
    """All functions of the card at slot (domain:bus:slot)."""
    wanted = pci_slot(slot)
    return [d for d in devices if d.slot == wanted]


def nvidia_gpus(devices: list[PciDevice]) -> list[PciDevice]:
    """NVIDIA display functions."""
    return [d for d in devices if d.vendor.lower() == NVIDIA and d.is_gpu]
