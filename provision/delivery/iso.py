"""Cloud-init without SSH: a NoCloud `cidata` ISO uploaded through the API as content iso."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

from provision.pve.node import Node

ISO_FILES = ("user-data", "meta-data", "network-config")


def build_cidata_iso(files: dict[str, bytes]) -> bytes:
    """An ISO 9660 image with volume label `cidata` (Joliet and Rock Ridge names).

    files maps NoCloud names (user-data, meta-data, network-config) to their content.
    """
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name in ISO_FILES:
        if name not in files:
            continue
        data = files[name]
        short = "/" + name.replace("-", "").upper()[:8] + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), short, rr_name=name, joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def content_digest(files: dict[str, bytes]) -> str:
    """SHA-256 over the files' names and contents (the ISO bytes carry timestamps)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


@dataclass
class IsoPlan:
    """The ISO a VM needs, whether it is on the storage already, and old ones to remove."""

    storage: str
    filename: str
    files: dict[str, bytes]
    present: bool
    stale: list[str] = field(default_factory=list)

    @property
    def volume(self) -> str:
        """The volume id to attach, e.g. local:iso/aihost-llm-box-cidata-0123abcd.iso."""
        return f"{self.storage}:iso/{self.filename}"


def iso_prefix(vm_name: str) -> str:
    """File name prefix of a VM's cidata ISOs."""
    return f"aihost-{vm_name}-cidata-"


def plan_iso(node: Node, storage: str, vm_name: str, files: dict[str, bytes]) -> IsoPlan:
    """Name the ISO by its content hash and look it up in the storage (one request)."""
    filename = f"{iso_prefix(vm_name)}{content_digest(files)[:16]}.iso"
    listed = node.storage(storage).content("iso")
    ours = [str(v["volid"]) for v in listed if iso_prefix(vm_name) in str(v.get("volid", ""))]
    wanted = f"{storage}:iso/{filename}"
    return IsoPlan(storage, filename, files, wanted in ours, [v for v in ours if v != wanted])


def upload_iso(node: Node, plan: IsoPlan) -> None:
    """Upload the ISO (multipart, content iso) and wait for Proxmox's copy task."""
    node.storage(plan.storage).upload(
        "iso", plan.filename, build_cidata_iso(plan.files), what="upload the cloud-init ISO"
    )


def remove_volumes(node: Node, volumes: list[str]) -> int:
    """Delete storage volumes (old ISOs); return how many."""
    for volume in volumes:
        node.storage(volume.split(":", 1)[0]).delete(volume)
    return len(volumes)
