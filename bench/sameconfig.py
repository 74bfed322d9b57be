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
            text = ",".join(sorted(p.strip() for p in text.split(",")))
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
