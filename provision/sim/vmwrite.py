"""Checks and side effects of writing VM options (create, PUT/POST config) as
qemu-server applies them: per-option privileges, root-only raw PCI devices, mapping
rights and existence, new disks (size, import-from, efidisk0, cloud-init drive)."""

from __future__ import annotations

import re
from typing import Any

from provision.sim import storage as st
from provision.sim.context import Ctx
from provision.sim.fixture import DISK_KEY, format_size
from provision.sim.http import fail
from provision.sim.pci import HOSTPCI, mapping_paths, parse_prop

_NEW_DISK = re.compile(r"([A-Za-z][\w\-.]*):(\d+(?:\.\d+)?)")
_HWTYPE = re.compile(
    r"(hostpci|usb|serial|parallel|audio)\d+|machine|bios|vga|scsihw|rng0|watchdog|ivshmem|keyboard|tablet"
)  # noqa: E501
_CPU = re.compile(r"cores|sockets|cpu|cpulimit|cpuunits|vcpus|numa\d*|affinity")
_MEMORY = re.compile(r"memory|balloon|shares|hugepages|keephugepages")
_CLOUDINIT = re.compile(r"ci\w+|sshkeys|ipconfig\d+|nameserver|searchdomain")
IMPORT_SIZE = 3584 * 1024**2  # virtual size of the fixture's cloud images


def key_privilege(key: str, value: str | None) -> str:
    """The VM.Config.* privilege qemu-server requires to set or delete an option."""
    if DISK_KEY.fullmatch(key) or key.startswith("unused"):
        return "VM.Config.CDROM" if value and "media=cdrom" in value else "VM.Config.Disk"
    if key.startswith("net"):
        return "VM.Config.Network"
    for pattern, priv in (
        (_HWTYPE, "VM.Config.HWType"),
        (_CPU, "VM.Config.CPU"),
        (_MEMORY, "VM.Config.Memory"),
        (_CLOUDINIT, "VM.Config.Cloudinit"),
    ):  # noqa: E501
        if pattern.fullmatch(key):
            return priv
    return "VM.Config.Options"


def _raw(value: str | None) -> bool:
    return bool(value) and "mapping" not in parse_prop(value or "", "host")


def check_options(
    ctx: Ctx, vmid: str, node: str, old: dict[str, str], changes: dict[str, str], deletes: list[str]
) -> None:  # noqa: E501
    """Refuse what the caller may not set: privileges, raw host PCI, mappings."""
    for key in sorted(set(changes) | set(deletes)):
        ctx.require(f"/vms/{vmid}", [key_privilege(key, changes.get(key, old.get(key)))])
        if not HOSTPCI.fullmatch(key):
            continue
        if (_raw(changes.get(key)) or _raw(old.get(key))) and not ctx.identity.is_root_ticket:
            raise fail(f"only root can set '{key}' config for non-mapped devices")
        if key in deletes and not _raw(old.get(key)):
            gone = parse_prop(old.get(key, ""), "host").get("mapping")
            if gone:
                ctx.require(f"/mapping/pci/{gone}", ["Mapping.Use"])
        mapping = parse_prop(changes.get(key, ""), "host").get("mapping")
        if mapping:
            ctx.require(f"/mapping/pci/{mapping}", ["Mapping.Use"])
            if not mapping_paths(ctx.world, mapping, node):
                raise fail(f"PCI device mapping not found for '{mapping}'")
    for key in ("args", "hookscript"):
        if key in changes and not ctx.identity.is_root_ticket:
            raise fail(f"only root can set '{key}' config")


def materialize(ctx: Ctx, vmid: str, changes: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Allocate new disks named as STORAGE:SIZE (or :0,import-from=...); returns the
    options with real volume ids and the volumes allocated."""
    out, allocated = dict(changes), []
    for key, value in changes.items():
        if not DISK_KEY.fullmatch(key):
            continue
        head, _, rest = value.partition(",")
        opts = parse_prop(rest)
        if head.endswith(":cloudinit"):
            sid = head.partition(":")[0]
            volid = st.allocate(ctx.world, sid, vmid, 4 * 1024**2, kind="cloudinit")
            allocated.append(volid)
            out[key] = f"{volid},media=cdrom"
            continue
        new = _NEW_DISK.fullmatch(head)
        if new is None:
            cdrom = head not in ("none", "cdrom") and "media=cdrom" in value
            if cdrom and not st.volume_exists(ctx.state_dir, ctx.world, head):
                raise fail(f"volume '{head}' does not exist")
            continue
        sid = new.group(1)
        ctx.require(f"/storage/{sid}", ["Datastore.AllocateSpace"])
        if key.startswith(("efidisk", "tpmstate")):
            size = 4 * 1024**2
        elif "import-from" in opts:
            source = opts.pop("import-from")
            if source.startswith("/"):
                if not ctx.identity.is_root_ticket:
                    raise fail("only root can set 'import-from' config")
            elif not st.volume_exists(ctx.state_dir, ctx.world, source):
                raise fail(f"volume '{source}' does not exist")
            ctx.require(f"/storage/{source.partition(':')[0]}", ["Datastore.Audit"])
            size = IMPORT_SIZE
        else:
            size = int(float(new.group(2)) * 1024**3)
        volid = st.allocate(ctx.world, sid, vmid, size)
        allocated.append(volid)
        opts.pop("size", None)
        extra = "".join(f",{k}={v}" for k, v in opts.items())
        out[key] = f"{volid}{extra},size={format_size(size)}"
    return out, allocated


def unuse_disks(vm: dict[str, Any], deletes: list[str]) -> None:
    """Deleted disks of a stopped VM become unusedN entries, as qemu-server keeps them."""
    config = vm["config"]
    for key in deletes:
        value = config.get(key, "")
        if not DISK_KEY.fullmatch(key) or not value or "media=cdrom" in value:
            continue
        index = 0
        while f"unused{index}" in config:
            index += 1
        config[f"unused{index}"] = value.split(",")[0]
