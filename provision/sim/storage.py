"""Storages of the simulated node: volumes (images tracked in the world, other content as
files under state_dir/storage/<id>/ like a dir storage's path), allocation, listing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from provision.sim.fixture import CONTENT_DIRS, DISK_KEY, storage_root
from provision.sim.http import fail
from provision.sim.state import World

FILE_TYPES = {"dir", "nfs", "cifs", "cephfs", "glusterfs", "btrfs"}


def storage_spec(world: World, sid: str, node: str | None = None) -> dict[str, Any]:
    """The storage's config, or the real error for an unknown storage."""
    spec = world["storages"].get(sid)
    if spec is None:  # pve-storage PVE/Storage.pm storage_config
        raise fail(f"storage '{sid}' does not exist")
    if node and spec.get("nodes") and node not in spec["nodes"]:  # storage_check_node
        raise fail(f"storage '{sid}' is not available on node '{node}'")
    return dict(spec)


def supports(spec: dict[str, Any], content: str) -> bool:
    """True when the storage is configured for that content type."""
    return content in spec["content"].split(",")


def require_content(world: World, sid: str, content: str) -> dict[str, Any]:
    """The storage, refused when it does not allow that content type."""
    spec = storage_spec(world, sid)
    if not supports(spec, content):
        if content == "images":
            raise fail(f"storage '{sid}' does not support vm images")
        raise fail(f"storage '{sid}' does not support content-type '{content}'")
    return spec


def file_path(state_dir: Path, world: World, volid: str) -> Path | None:
    """The local file of a non-image volume such as local:snippets/x.yaml (None if images)."""
    sid, _, name = volid.partition(":")
    content, _, filename = name.partition("/")
    if content not in CONTENT_DIRS or not filename or "/" in filename or filename in ("..", "."):
        return None
    return storage_root(state_dir, sid) / CONTENT_DIRS[content] / filename


def volume_exists(state_dir: Path, world: World, volid: str) -> bool:
    """True when the volume is on its storage."""
    sid, _, name = volid.partition(":")
    if name in world["volumes"].get(sid, {}):
        return True
    path = file_path(state_dir, world, volid)
    return path is not None and path.is_file()


def volume_size(state_dir: Path, world: World, volid: str) -> int:
    """Size in bytes of an existing volume."""
    sid, _, name = volid.partition(":")
    if name in world["volumes"].get(sid, {}):
        return int(world["volumes"][sid][name]["size"])
    path = file_path(state_dir, world, volid)
    if path is None or not path.is_file():
        raise fail(f"volume '{volid}' does not exist")
    return path.stat().st_size


def allocate(
    world: World, sid: str, vmid: str, size: int, *, kind: str = "disk", base: str | None = None
) -> str:  # noqa: E501
    """Allocate an image volume for vmid; returns its volid ("local-lvm:vm-100-disk-0")."""
    spec = require_content(world, sid, "images")
    vols = world["volumes"].setdefault(sid, {})
    file_based = spec["type"] in FILE_TYPES
    if kind == "cloudinit":
        stem = f"vm-{vmid}-cloudinit"
    else:
        used = {
            int(m.group(1)) for n in vols if (m := re.search(rf"(?:vm|base)-{vmid}-disk-(\d+)", n))
        }  # noqa: E501
        stem = f"vm-{vmid}-disk-{min(set(range(len(used) + 1)) - used)}"
    name = f"{vmid}/{stem}.qcow2" if file_based else stem
    if base:
        name = f"{base}/{name}"
    vols[name] = {"size": size, "vmid": int(vmid), "format": "qcow2" if file_based else "raw"}
    return f"{sid}:{name}"


def free_volume(world: World, volid: str) -> None:
    """Remove an image volume (no error when it is already gone)."""
    sid, _, name = volid.partition(":")
    world["volumes"].get(sid, {}).pop(name, None)


def used_bytes(state_dir: Path, world: World, sid: str) -> int:
    """Bytes used on a storage."""
    images = sum(int(v["size"]) for v in world["volumes"].get(sid, {}).values())
    root = storage_root(state_dir, sid)
    files = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    return images + files


def content_list(
    state_dir: Path, world: World, sid: str, content: str | None
) -> list[dict[str, Any]]:  # noqa: E501
    """GET .../storage/{storage}/content entries."""
    spec = storage_spec(world, sid)
    out: list[dict[str, Any]] = []
    for name, vol in sorted(world["volumes"].get(sid, {}).items()):
        if content in (None, "images"):
            out.append(
                {
                    "volid": f"{sid}:{name}",
                    "content": "images",
                    "format": vol["format"],
                    "size": vol["size"],
                    "vmid": vol["vmid"],
                    "ctime": 1730000000,
                }
            )
    for ctype in spec["content"].split(","):
        folder = CONTENT_DIRS.get(ctype)
        if folder is None or content not in (None, ctype):
            continue
        root = storage_root(state_dir, sid) / folder
        for path in sorted(root.glob("*")) if root.is_dir() else []:
            fmt = listed_format(ctype, path.name) if path.is_file() else None
            if fmt is not None:
                out.append(
                    {
                        "volid": f"{sid}:{ctype}/{path.name}",
                        "content": ctype,
                        "format": fmt,
                        "size": path.stat().st_size,
                        "ctime": int(path.stat().st_mtime),
                    }
                )
    return out


_LISTED = {  # pve-storage PVE/Storage/Plugin.pm $get_subdir_files: which files, what format
    "iso": re.compile(r"[^/]+\.(?:iso|img)", re.I),
    "vztmpl": re.compile(r"[^/]+\.(?:(tar)(?!\.)|tar\.(gz|xz|zst|bz2))"),
    "import": re.compile(r"[a-zA-Z0-9\-.+=_]+\.(ova|ovf|qcow2|raw|vmdk)", re.I),
}


def listed_format(ctype: str, name: str) -> str | None:
    """The `format` a content listing gives a file, or None when it is not listed."""
    if ctype in ("snippets", "backup") and not name.startswith("."):
        return "snippet" if ctype == "snippets" else name.rsplit(".", 1)[-1]
    match = _LISTED[ctype].fullmatch(name) if ctype in _LISTED else None
    if match is None:
        return None
    if ctype == "iso":
        return "iso"
    if ctype == "vztmpl":
        return "tar" if match.group(1) else f"t{match.group(2)}"
    return match.group(1)


def storage_status(state_dir: Path, world: World, sid: str) -> dict[str, Any]:
    """GET .../storage/{storage}/status (also one row of the storage list)."""
    spec = storage_spec(world, sid)
    used = used_bytes(state_dir, world, sid)
    return {
        "storage": sid,
        "type": spec["type"],
        "content": spec["content"],
        "shared": spec["shared"],
        "active": 1,
        "enabled": 1,
        "total": spec["total"],
        "used": used,
        "avail": spec["total"] - used,
        "used_fraction": round(used / spec["total"], 6) if spec["total"] else 0,
    }


def check_linked_clone(world: World, config: dict[str, str]) -> None:
    """qemu-server API2/Qemu.pm clone_vm $load_and_check, per drive in key order: a
    linked clone needs the `clone` feature ("Linked clone feature is not supported for
    'VOLID' (KEY)"); pve-storage Plugin.pm/LvmThinPlugin.pm volume_has_feature: only a
    base volume has it, LVMPlugin.pm: none. CD-ROMs are copied as they are, cloud-init
    drives and tpmstate0 fully (the `copy` feature)."""
    for key, value in sorted(config.items()):
        volid = value.partition(",")[0]
        if not DISK_KEY.fullmatch(key) or volid == "none" or key == "tpmstate0":
            continue
        if volid.endswith("cloudinit") or "media=cdrom" in value:
            continue
        sid, _, volname = volid.partition(":")
        thick = world["storages"].get(sid, {}).get("type") == "lvm"
        if thick or not volname.split("/")[-1].startswith("base-"):
            raise fail(f"Linked clone feature is not supported for '{volid}' ({key})")
