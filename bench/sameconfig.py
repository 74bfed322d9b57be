"""Check that two tools left a VM with the same config before their numbers are compared."""

from __future__ import annotations

import re
from typing import Any

# Keys Proxmox fills in by itself (differ between any two VMs) or that only mark state.
VOLATILE = {"digest", "vmgenid", "meta", "smbios1", "_vmid"}
PROPERTY_LIST = re.compile(
    r"^(hostpci\d+|net\d+|efidisk\d+|ipconfig\d+|scsi\d+|ide\d+|"
    r"virtio\d+|sata\d+|agent|cicustom)$"
)
# Boolean properties Proxmox stores as 0/1 whatever spelling the request used.
BOOLEAN_PROPERTIES = {
    "pre-enrolled-keys",
    "pcie",
    "rombar",
    "x-vga",
    "firewall",
    "ssd",
    "discard",
    "iothread",
    "backup",
    "replicate",
    "link_down",
}
FALSE_WORDS, TRUE_WORDS = {"0", "false", "no", "off"}, {"1", "true", "yes", "on"}
MAC = re.compile(r"=([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5})")


def normalize(config: dict[str, Any]) -> dict[str, str]:
    """Config values as comparable strings: volatile keys dropped, property order ignored."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if key in VOLATILE:
            continue
        text = str(value)
        if key.startswith("net"):
            text = MAC.sub("=<mac>", text)
        if PROPERTY_LIST.match(key):
            text = ",".join(
                sorted(
                    _property(key, p.strip())
                    for p in text.split(",")
                    if not _allocation_only(key, p.strip())
                )
            )
        if key == "tags":
            text = ";".join(sorted(t for t in re.split(r"[;, ]", text) if t))
        out[key] = text
    return out


def differences(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Human-readable differences ('key: a != b'); empty when the configs match."""
    left, right = normalize(reference), normalize(other)
    diffs = []
    for key in sorted(set(left) | set(right)):
        if left.get(key) != right.get(key):
            diffs.append(f"{key}: {left.get(key, '<absent>')!r} != {right.get(key, '<absent>')!r}")
    return diffs


def _property(key: str, part: str) -> str:
    """One `name=value` of a property string with booleans spelt 0/1 (as Proxmox stores)."""
    name, sep, value = part.partition("=")
    if sep and name in BOOLEAN_PROPERTIES:
        lowered = value.lower()
        value = "0" if lowered in FALSE_WORDS else "1" if lowered in TRUE_WORDS else value
    return f"{name}{sep}{value}"


def _allocation_only(key: str, part: str) -> bool:
    """`format=` of an EFI disk only steers allocation; Proxmox does not keep it."""
    return key.startswith("efidisk") and part.startswith("format=")
