"""Checks and side effects of writing VM options (create, PUT/POST config) as
qemu-server's create_vm and update_vm_api make them: which checks run before the fork
and which under the config lock in the worker (the privileges themselves are in
provision/sim/configperm.py), and new disks (size, import-from, efidisk0, cloud-init)."""

from __future__ import annotations

import re
from typing import Any

from provision.sim import storage as st
from provision.sim.configperm import (
    bridge_access,
    drive_perms,
    hostpci_perm,
    is_root,
    modify_config_perm,
    serial_perm,
    tags_perm,
)
from provision.sim.context import Ctx
from provision.sim.fixture import DISK_KEY, format_size
from provision.sim.http import ApiFailure, fail
from provision.sim.pci import HOSTPCI, parse_prop
from provision.sim.virtiofs import VIRTIOFS, dir_perm, refuse_unknown_keys
from provision.sim.vmconfig import line_feed_error

_NEW_DISK = re.compile(r"([A-Za-z][\w\-.]*):(\d+(?:\.\d+)?)")
_SERIAL = re.compile(r"serial\d+")
_NET = re.compile(r"net\d+")
IMPORT_SIZE = 3584 * 1024**2  # virtual size of the fixture's cloud images


def create_checks(ctx: Ctx, vmid: str, options: dict[str, str]) -> None:
    """create_vm's checks before it forks (after $check_storage_access, which materialize
    makes): option privileges, serial ports, PCI devices, bridges."""
    refuse_unknown_keys(ctx.world, options)
    modify_config_perm(ctx, vmid, options)
    for key, value in sorted(options.items()):
        if _SERIAL.fullmatch(key):
            serial_perm(ctx, vmid, key, value)
        elif HOSTPCI.fullmatch(key):
            hostpci_perm(ctx, vmid, key, value)
    for key, value in sorted(options.items()):  # check_vm_create_dir_perm, after hostpci
        if VIRTIOFS.fullmatch(key) and value:
            dir_perm(ctx, vmid, value)
    bridge_access(ctx, options)


def create_worker_error(ctx: Ctx, vmid: str, options: dict[str, str]) -> str | None:
    """What fails inside the qmcreate worker, reported as "unable to create VM 100 - ...":
    tags (assert_tag_permissions in $createfn), then write_config's line-feed refusal
    (QemuServer.pm write_vm_config, check_type)."""
    if "tags" in options:
        try:
            tags_perm(ctx, vmid)
        except ApiFailure as exc:
            return f"unable to create VM {vmid} - {exc.message}"
    error = line_feed_error(options)
    return f"unable to create VM {vmid} - {error}" if error else None


def update_checks(ctx: Ctx, vmid: str, changes: dict[str, str], deletes: list[str]) -> None:
    """update_vm_api's checks before the fork (PUT and POST alike): option privileges of
    the deleted, then of the set keys, storage access of new drives, bridges."""
    refuse_unknown_keys(ctx.world, changes)
    modify_config_perm(ctx, vmid, deletes)
    modify_config_perm(ctx, vmid, changes)
    materialize(ctx, vmid, changes, allocate=False)
    bridge_access(ctx, changes)


def update_worker_checks(
    ctx: Ctx, vm: dict[str, Any], vmid: str, changes: dict[str, str], deletes: list[str]
) -> None:
    """The checks update_vm_api's $updatefn makes under the config lock: in the qmconfig
    worker for POST, in the request for PUT. Each drive, hostpciN, virtiofsN, serialN, netN and tags
    is checked against its value in the config (and drives and PCI devices against the new
    value too). Writing the config refuses a value with a line feed (write_vm_config);
    the simulator then writes nothing."""
    current, pending = vm["config"], vm["pending"]
    for key in deletes:
        value = current.get(key, pending.get(key))
        if value is None:
            continue  # "cannot delete 'X' - not set in current configuration!" (a warning)
        _deleted_checks(ctx, vmid, key, value, current.get(key))
    for key, value in changes.items():
        if pending.get(key) == value:
            continue  # "skip if nothing changed"
        old = current.get(key)
        if DISK_KEY.fullmatch(key):
            if old:
                drive_perms(ctx, vmid, old)
            drive_perms(ctx, vmid, value)
        elif HOSTPCI.fullmatch(key):
            if old:
                hostpci_perm(ctx, vmid, key, old)
            hostpci_perm(ctx, vmid, key, value)
        elif VIRTIOFS.fullmatch(key):
            if old:
                dir_perm(ctx, vmid, old)
            dir_perm(ctx, vmid, value)
        elif _SERIAL.fullmatch(key):
            both_sockets = (old or "socket") == "socket" and value == "socket"
            serial_perm(ctx, vmid, key, "socket" if both_sockets else "", "modify")
        elif key == "tags":
            tags_perm(ctx, vmid)
        elif _NET.fullmatch(key) and old:
            bridge_access(ctx, {key: old})
    error = line_feed_error(changes)  # write_vm_config (check_type) as $updatefn writes
    if error:
        raise fail(error)


def _deleted_checks(ctx: Ctx, vmid: str, key: str, value: str, current: str | None) -> None:
    if key.startswith("unused"):
        if not is_root(ctx):
            ctx.require(f"/vms/{vmid}", ["VM.Config.Disk"])
    elif DISK_KEY.fullmatch(key):
        drive_perms(ctx, vmid, value)
    elif HOSTPCI.fullmatch(key):
        hostpci_perm(ctx, vmid, key, value)
    elif VIRTIOFS.fullmatch(key):
        dir_perm(ctx, vmid, value)
    elif _SERIAL.fullmatch(key):
        serial_perm(ctx, vmid, key, value, "delete")
    elif key == "tags":
        tags_perm(ctx, vmid)
    elif _NET.fullmatch(key) and current:
        bridge_access(ctx, {key: current})


def materialize(
    ctx: Ctx, vmid: str, changes: dict[str, str], *, allocate: bool = True
) -> tuple[dict[str, str], list[str]]:
    """Allocate new disks named as STORAGE:SIZE (or :0,import-from=...); returns the
    options with real volume ids and the volumes allocated. With allocate False only the
    checks are made ($check_storage_access before the fork)."""
    out, allocated = dict(changes), []
    for key, value in changes.items():
        if not DISK_KEY.fullmatch(key):
            continue
        head, _, rest = value.partition(",")
        opts = parse_prop(rest)
        if head.endswith(":cloudinit"):
            if not allocate:
                continue
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
        if not allocate:
            continue
        volid = st.allocate(ctx.world, sid, vmid, size)
        allocated.append(volid)
        opts.pop("size", None)
        extra = "".join(f",{k}={v}" for k, v in opts.items())
        out[key] = f"{volid}{extra},size={format_size(size)}"
    return out, allocated


def unuse_disks(
    vm: dict[str, Any], vmid: str, deletes: list[str], changes: dict[str, str] | None = None
) -> None:
    """Deleted disks of a stopped VM, and disks a change replaces with another volume, become
    unusedN entries when the VM owns them (qemu-server PVE/QemuServer.pm
    `vmconfig_apply_pending` -> `vmconfig_register_unused_drive`: not a CD-ROM, the
    cloud-init drive is freed instead, `vm_is_volid_owner`)."""
    config = vm["config"]
    replaced = [
        key
        for key, value in (changes or {}).items()
        if config.get(key, "").split(",")[0] not in ("", value.split(",")[0])
        and re.search(rf"(?:^|[:/])(?:vm|base)-{vmid}-disk-", config[key].split(",")[0])
    ]
    for key in [*deletes, *replaced]:
        value = config.get(key, "")
        if not DISK_KEY.fullmatch(key) or not value or "media=cdrom" in value:
            continue
        index = 0
        while f"unused{index}" in config:
            index += 1
        config[f"unused{index}"] = value.split(",")[0]


def clone_disks(
    ctx: Ctx, config: dict[str, str], newid: str, storage: str | None, full: bool
) -> list[str]:
    """clone_vm's disks (`PVE::QemuServer::clone_disk`): a copy (full) or a linked clone
    of each, a new cloud-init drive; config's values point at them. The new volumes."""
    volumes = []
    for key, value in sorted(config.items()):
        if not DISK_KEY.fullmatch(key) or value.startswith("none"):
            continue
        volid, _, rest = value.partition(",")
        if "media=cdrom" in value and not volid.endswith("cloudinit"):
            continue
        dest = storage or volid.partition(":")[0]
        if volid.endswith("cloudinit"):
            new = st.allocate(ctx.world, dest, newid, 4 * 1024**2, kind="cloudinit")
        else:
            size = st.volume_size(ctx.state_dir, ctx.world, volid)
            base = None if full else volid.partition(":")[2]
            new = st.allocate(ctx.world, dest, newid, size, base=base)
        volumes.append(new)
        config[key] = f"{new},{rest}" if rest else new
    return volumes
