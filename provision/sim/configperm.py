"""Who may set which VM option, as qemu-server checks it (qemu-server 9.2).

`src/PVE/API2/Qemu.pm`: `$check_vm_modify_config_perm` (a privilege per option class;
drives, cdrom, unusedN, serialN, usbN, hostpciN, virtiofsN and tags are checked
elsewhere; an option in no class is root-only: "only root can set 'X' config"),
`check_hostpci_perm`, `$check_vm_create_serial_perm`, and in `update_vm_api`'s
`$updatefn` `$check_drive_perms` (a cloud-init drive needs VM.Config.Cloudinit and
VM.Config.CDROM, a CD-ROM VM.Config.CDROM, any other drive VM.Config.Disk).
`$check_storage_access_clone`; `src/PVE/QemuServer.pm` `check_bridge_access` and
`check_mapping_access`; pve-guest-common
`src/PVE/GuestHelpers.pm` `check_vnet_access` (SDN.Use on /sdn/zones/localnetwork/BRIDGE,
or on .../BRIDGE/TAG for a VLAN tag and each trunk VLAN) and `assert_tag_permissions`
(VM.Config.Options; with the default free-form tag access nothing more).

Every check passes for 'root@pam' itself only: qemu-server compares the authenticated
id with 'root@pam', and an API token of root ('root@pam!x') is a different id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from provision.sim.context import Ctx
from provision.sim.fixture import DISK_KEY
from provision.sim.http import fail, param_fail
from provision.sim.pci import HOSTPCI, parse_prop

CPU_OPTIONS = {
    "cores",
    "cpu",
    "runningcpu",
    "cpulimit",
    "cpuunits",
    "numa",
    "smp",
    "sockets",
    "vcpus",
}
MEMORY_OPTIONS = {"memory", "balloon", "shares", "allow-ksm"}
HWTYPE_OPTIONS = {
    "acpi",
    "hotplug",
    "kvm",
    "machine",
    "runningmachine",
    "scsihw",
    "smbios1",
    "tablet",
    "vga",
    "watchdog",
    "audio0",
    "rng0",
}
GENERAL_OPTIONS = {
    "agent",
    "autostart",
    "bios",
    "description",
    "keyboard",
    "localtime",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "onboot",
    "ostype",
    "protection",
    "reboot",
    "startdate",
    "startup",
    "tdf",
    "template",
}
POWER_OPTIONS = {"freeze"}
DISK_OPTIONS = {"boot", "bootdisk", "vmstatestorage"}
CLOUDINIT_OPTIONS = {
    "cicustom",
    "cipassword",
    "citype",
    "ciuser",
    "ciupgrade",
    "nameserver",
    "searchdomain",
    "sshkeys",
}
CHECKED_ELSEWHERE = re.compile(r"(?:unused|serial|usb|hostpci|virtiofs)\d+|cdrom|tags")
_CLOUDINIT_VOLUME = re.compile(r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|vmdk))?$")
ZONE = "localnetwork"  # no SDN vnets in the simulator: every bridge is a local one


def option_privileges(key: str) -> tuple[tuple[str, ...], bool] | None:
    """($check_vm_modify_config_perm) the privileges setting or deleting key needs on
    /vms/VMID and whether any one of them suffices; () when another check covers the key
    (drives, hostpci, serial, tags...); None when only root@pam may set it."""
    if DISK_KEY.fullmatch(key) or CHECKED_ELSEWHERE.fullmatch(key):
        return (), False
    if key in CPU_OPTIONS or re.fullmatch(r"numa\d+", key):
        return ("VM.Config.CPU",), False
    classes = (
        (MEMORY_OPTIONS, "VM.Config.Memory"),
        (HWTYPE_OPTIONS, "VM.Config.HWType"),
        (GENERAL_OPTIONS, "VM.Config.Options"),
        (POWER_OPTIONS, "VM.PowerMgmt"),
        (DISK_OPTIONS, "VM.Config.Disk"),
    )
    for options, privilege in classes:
        if key in options:
            return (privilege,), False
    if re.fullmatch(r"net\d+", key) or key == "running-nets-host-mtu":
        return ("VM.Config.Network",), False
    if key in CLOUDINIT_OPTIONS or re.fullmatch(r"ipconfig\d+", key):
        return ("VM.Config.Cloudinit", "VM.Config.Network"), True
    if key == "vmstate":
        return ("VM.Config.Disk", "VM.PowerMgmt"), False
    return None


def is_root(ctx: Ctx) -> bool:
    """True for 'root@pam' logged in with its password (the only id qemu-server exempts)."""
    return ctx.identity.is_root_ticket


def modify_config_perm(ctx: Ctx, vmid: str, keys: Iterable[str]) -> None:
    """$check_vm_modify_config_perm over keys (sorted: Perl walks them in hash order)."""
    if is_root(ctx):
        return
    for key in sorted(keys):
        need = option_privileges(key)
        if need is None:
            raise fail(f"only root can set '{key}' config")
        privileges, any_of = need
        if privileges:
            ctx.require(f"/vms/{vmid}", list(privileges), any_of)
        if key == "startup":
            ctx.require("/", ["Sys.Modify"])


def hostpci_perm(ctx: Ctx, vmid: str, key: str, value: str) -> None:
    """check_hostpci_perm: a raw device is root-only; a mapping needs Mapping.Use on it
    and VM.Config.HWType on the VM; romfile is root-only."""
    if is_root(ctx):
        return
    device = parse_prop(value, "host")
    if device.get("host"):
        raise fail(f"only root can set '{key}' config for non-mapped devices")
    if not device.get("mapping"):
        raise fail("either 'host' or 'mapping' must be set.")
    ctx.require(f"/mapping/pci/{device['mapping']}", ["Mapping.Use"])
    ctx.require(f"/vms/{vmid}", ["VM.Config.HWType"])
    if "romfile" in device:
        raise param_fail({key: "only root@pam can set 'romfile' option"})


def serial_perm(ctx: Ctx, vmid: str, key: str, value: str, verb: str = "set") -> None:
    """$check_vm_create_serial_perm: a socket needs VM.Config.HWType, a real port root."""
    if is_root(ctx):
        return
    if value != "socket":
        raise fail(f"only root can {verb} '{key}' config for real devices")
    ctx.require(f"/vms/{vmid}", ["VM.Config.HWType"])


def drive_perms(ctx: Ctx, vmid: str, value: str) -> None:
    """$check_drive_perms of update_vm_api, for the old and the new value of a drive."""
    if is_root(ctx):
        return
    volume = value.split(",")[0]
    if _CLOUDINIT_VOLUME.search(volume):
        ctx.require(f"/vms/{vmid}", ["VM.Config.Cloudinit", "VM.Config.CDROM"])
    elif "media=cdrom" in value:
        ctx.require(f"/vms/{vmid}", ["VM.Config.CDROM"])
    else:
        ctx.require(f"/vms/{vmid}", ["VM.Config.Disk"])


def bridge_access(ctx: Ctx, config: dict[str, str]) -> None:
    """check_bridge_access: SDN.Use on the bridge of every netN (check_vnet_access)."""
    if is_root(ctx):
        return
    for key in sorted(config):
        if not re.fullmatch(r"net\d+", key):
            continue
        net = parse_prop(config[key])
        bridge = net.get("bridge")
        if not bridge:
            continue
        tag, trunks = net.get("tag"), net.get("trunks")
        base = f"/sdn/zones/{ZONE}/{bridge}"
        if tag:
            ctx.require(f"{base}/{tag}", ["SDN.Use"])
        for vlan in trunk_tags(trunks or ""):
            ctx.require(f"{base}/{vlan}", ["SDN.Use"])
        if not (tag or trunks):
            ctx.require(base, ["SDN.Use"])


def trunk_tags(trunks: str) -> list[int]:
    """get_tags_from_trunk: "10;20-22" as [10, 20, 21, 22], sorted."""
    tags: set[int] = set()
    for part in trunks.split(";"):
        low, _, high = part.partition("-")
        if low.strip().isdigit():
            tags.update(range(int(low), int(high or low) + 1))
    return sorted(tags)


def mapping_access(ctx: Ctx, config: dict[str, str]) -> None:
    """check_mapping_access (clone): a raw hostpci is root-only, a mapping needs Mapping.Use."""
    if is_root(ctx):
        return
    for key in sorted(config):
        if not HOSTPCI.fullmatch(key):
            continue
        device = parse_prop(config[key], "host")
        if device.get("host"):
            raise fail(f"only root can set '{key}' config for non-mapped devices")
        if not device.get("mapping"):
            raise fail("either 'host' or 'mapping' must be set.")
        ctx.require(f"/mapping/pci/{device['mapping']}", ["Mapping.Use"])


def clone_storage_access(ctx: Ctx, config: dict[str, str], storage: str | None) -> bool:
    """qemu-server API2/Qemu.pm $check_storage_access_clone: Datastore.AllocateSpace on
    each disk's storage (or the `storage` parameter); True when every volume, CD-ROM
    images included, is on shared storage."""
    shared = True
    for key, value in sorted(config.items()):
        volid = value.partition(",")[0]
        if not DISK_KEY.fullmatch(key) or volid in ("", "none"):
            continue
        if volid == "cdrom":
            ctx.require("/", ["Sys.Console"])
            continue
        sid = volid.partition(":")[0]
        shared = shared and bool(ctx.world["storages"].get(sid, {}).get("shared"))
        if "media=cdrom" not in value:
            ctx.require(f"/storage/{storage or sid}", ["Datastore.AllocateSpace"])
    if config.get("vmstatestorage"):
        ctx.require(f"/storage/{config['vmstatestorage']}", ["Datastore.AllocateSpace"])
    return shared


def tags_perm(ctx: Ctx, vmid: str) -> None:
    """assert_tag_permissions with the default (free-form) user-tag-access."""
    if not is_root(ctx):
        ctx.require(f"/vms/{vmid}", ["VM.Config.Options"])
