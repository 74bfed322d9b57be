"""A GPU's identity: a PCI address in any spelling, the card it names, its hostpci value.

Proxmox and `lspci -D` print `0000:01:00.0`; people write `01:00`, `01:00.0`, upper-case
hex. `0000:01:00` (no function) passes all functions of the card, `0000:01:00.0` only the
first: different settings, the same card. A hostpciN value names cards by `host=`
(`;`-separated alternatives, qemu-server's pve-qm-hostpci format) or by `mapping=NAME`.
This module is the one place these spellings are parsed and compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from provision.pve.vmconfig import format_property_string, normalize_bool, parse_property_string

PCI_RE = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})(?:\.([0-7]))?$")
HOSTPCI_KEY = re.compile(r"^hostpci(\d+)$")
# hostpci sub-keys that are booleans, with Proxmox's defaults (formats.json pve-qm-hostpci).
_HOSTPCI_BOOL_DEFAULTS = {"rombar": "1", "pcie": "0", "x-vga": "0", "legacy-igd": "0"}
_HOSTPCI_DEFAULTS = {"driver": "vfio"}
_HOSTPCI_HEX = ("vendor-id", "device-id", "sub-vendor-id", "sub-device-id")


@dataclass(frozen=True)
class PciAddress:
    """One host PCI address: domain:bus:device, and the function when one is named."""

    domain: str
    bus: str
    device: str
    function: str | None = None

    @classmethod
    def parse(cls, text: str) -> PciAddress:
        """Any spelling (`01:00`, `0000:01:00.0`, upper-case hex); ValueError otherwise."""
        match = PCI_RE.match(str(text).strip())
        if not match:
            raise ValueError(f"not a PCI address: {text!r}")
        domain, bus, device, function = match.groups()
        return cls((domain or "0000").lower(), bus.lower(), device.lower(), function)

    @property
    def slot(self) -> str:
        """The card's slot, all functions: `0000:01:00`."""
        return f"{self.domain}:{self.bus}:{self.device}"

    def __str__(self) -> str:
        return self.slot if self.function is None else f"{self.slot}.{self.function}"


def pci_slot(text: str) -> str:
    """The card slot (`0000:01:00`) of an address in any spelling; text itself, lower-cased,
    when it is not one (so a malformed value never equals a real card)."""
    try:
        return PciAddress.parse(text).slot
    except ValueError:
        return str(text).strip().lower()


def normalize_address(text: str) -> str:
    """An address in Proxmox's long form, the function kept (`01:00.0` → `0000:01:00.0`)."""
    try:
        return str(PciAddress.parse(text))
    except ValueError:
        return str(text).strip().lower()


class _GpuLike(Protocol):
    @property
    def mapping(self) -> str | None: ...

    @property
    def pci(self) -> str | None: ...


@dataclass(frozen=True)
class GpuRef:
    """How a VM config names a GPU: a cluster PCI mapping, or a raw host address."""

    mapping: str | None = None
    address: PciAddress | None = None

    @classmethod
    def of(cls, gpu: _GpuLike) -> GpuRef:
        """The reference of an inventory GPU (`mapping:` or `pci:`)."""
        if gpu.mapping:
            return cls(mapping=gpu.mapping)
        if not gpu.pci:
            raise ValueError("a GPU needs mapping: or pci:")
        return cls(address=PciAddress.parse(gpu.pci))

    @property
    def hostpci_value(self) -> str:
        """The hostpci property string attaching all the card's functions as PCIe."""
        if self.mapping:
            return f"mapping={self.mapping},pcie=1"
        return f"{self.address},pcie=1"

    @property
    def device_key(self) -> tuple[str, str]:
        """Equal for two references to the same card of one host (for duplicate checks)."""
        if self.mapping:
            return ("mapping", self.mapping)
        assert self.address is not None
        return ("pci", self.address.slot)

    def named_by(self, hostpci: str) -> bool:
        """True when a hostpciN value passes (any function of) this card through."""
        props = parse_property_string(hostpci, "host")
        if self.mapping:
            return props.get("mapping") == self.mapping
        assert self.address is not None
        slot = self.address.slot
        return any(pci_slot(p) == slot for p in props.get("host", "").split(";") if p.strip())

    def keys_in(self, config: dict[str, object]) -> list[str]:
        """The hostpciN keys of a VM config that name this card, sorted."""
        return sorted(
            k for k, v in config.items() if HOSTPCI_KEY.match(k) and self.named_by(str(v))
        )


def names_any(hostpci: str, refs: Iterable[GpuRef]) -> bool:
    """True when a hostpciN value names any of the cards."""
    return any(ref.named_by(hostpci) for ref in refs)


def free_hostpci_key(config: dict[str, object]) -> str:
    """The lowest hostpciN not used in config."""
    used = {int(m.group(1)) for k in config if (m := HOSTPCI_KEY.match(k))}
    return f"hostpci{min(set(range(16)) - used)}"


def map_entry_fields(entry: str) -> dict[str, str]:
    """A PCI mapping's map entry (`node=pve1,path=0000:01:00,id=10de:2684,…`) as fields,
    without its description; the path's addresses in long form."""
    fields = {k: v for k, v in parse_property_string(entry).items() if k != "description"}
    if "path" in fields:
        fields["path"] = ";".join(normalize_address(p) for p in fields["path"].split(";") if p)
    return fields


def map_entry_slot(entry: str) -> str | None:
    """The card slot a map entry's path names (its first alternative), or None."""
    path = map_entry_fields(entry).get("path", "")
    first = path.split(";")[0]
    return pci_slot(first) if first else None


def normalize_hostpci(value: str) -> str:
    """A canonical form of a hostpci value, for comparing semantically, not literally.

    Equal for: any key order, `host=` written or omitted, boolean spellings (pcie=on vs 1),
    values equal to Proxmox's defaults written or omitted (rombar=1, pcie=0, x-vga=0,
    legacy-igd=0, driver=vfio), ids with or without the 0000: domain, hex case. The
    function suffix is kept (`0000:01:00` passes all functions, `.0` only the first: a
    different setting of the same card; see GpuRef.named_by for "same card" questions).
    Alternatives separated by ';' keep their order. The result is itself a hostpci value.
    """
    props = parse_property_string(value, "host")
    canonical: dict[str, str] = {}
    for key, raw in props.items():
        if key == "host":
            canonical[key] = ";".join(normalize_address(p) for p in raw.split(";") if p.strip())
        elif key in _HOSTPCI_BOOL_DEFAULTS:
            flag = normalize_bool(raw)
            if flag != _HOSTPCI_BOOL_DEFAULTS[key]:
                canonical[key] = flag
        elif key in _HOSTPCI_DEFAULTS:
            if raw.lower() != _HOSTPCI_DEFAULTS[key]:
                canonical[key] = raw.lower()
        elif key in _HOSTPCI_HEX:
            canonical[key] = raw.lower()
        else:
            canonical[key] = raw
    rest = {k: canonical[k] for k in sorted(canonical) if k != "host"}
    head = {"host": canonical["host"]} if "host" in canonical else {}
    return format_property_string({**head, **rest}, "host")
