"""Which privileges each API call aihost makes needs, per Proxmox's own schema.

The table below is checked against the `permissions` entries of the real API schemas
(PVE 8.4 and 9.1) by tests/unit/test_preflight_privileges.py, so it cannot drift from
Proxmox. Alternatives cover version differences: PVE 9 replaced VM.Monitor with the
VM.GuestAgent.* privileges for the agent calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CallNeed:
    """An API call, the ACL path it is checked on, and privileges (any one suffices)."""

    method: str
    path: str
    acl: str
    any_of: tuple[str, ...]
    # "check": the schema's check; "description": stated in its text; "docs": Proxmox's
    # documentation; "code": qemu-server's code only
    source: str = "check"


CALLS: dict[str, CallNeed] = {
    "read-config": CallNeed(
        "GET", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Audit",)
    ),
    # the planner's read of an existing VM: its config with what waits in [PENDING]
    "read-pending": CallNeed(
        "GET", "/nodes/{node}/qemu/{vmid}/pending", "/vms/{vmid}", ("VM.Audit",)
    ),
    "clone": CallNeed("POST", "/nodes/{node}/qemu/{vmid}/clone", "/vms/{vmid}", ("VM.Clone",)),
    "clone-allocate": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/clone", "/vms/{newid}", ("VM.Allocate",)
    ),
    "create": CallNeed(
        "POST", "/nodes/{node}/qemu", "/vms/{vmid}", ("VM.Allocate",), "description"
    ),
    "disk-space": CallNeed(
        "POST",
        "/nodes/{node}/qemu",
        "/storage/{storage}",
        ("Datastore.AllocateSpace",),
        "description",
    ),
    "configure-hw": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.HWType",)
    ),
    "configure-cpu": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.CPU",)
    ),
    "configure-memory": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.Memory",)
    ),
    "configure-network": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.Network",)
    ),
    "configure-options": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.Options",)
    ),
    "configure-cloudinit": CallNeed(
        "POST",
        "/nodes/{node}/qemu/{vmid}/config",
        "/vms/{vmid}",
        ("VM.Config.Cloudinit", "VM.Config.Network"),
    ),
    "configure-cloudinit-drive": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.Cloudinit",)
    ),
    # freeze and vmstate: qemu-server's $check_vm_modify_config_perm (its code, not the
    # schema) wants VM.PowerMgmt for them.
    "configure-power": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.PowerMgmt",), "code"
    ),
    "configure-cdrom": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.CDROM",)
    ),
    "configure-disk": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.Disk",)
    ),
    "resize": CallNeed(
        "PUT", "/nodes/{node}/qemu/{vmid}/resize", "/vms/{vmid}", ("VM.Config.Disk",)
    ),
    "power": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/status/start", "/vms/{vmid}", ("VM.PowerMgmt",)
    ),
    "agent-exec": CallNeed(
        "GET",
        "/nodes/{node}/qemu/{vmid}/agent/exec-status",
        "/vms/{vmid}",
        ("VM.GuestAgent.Unrestricted", "VM.Monitor"),
    ),
    "agent-file-read": CallNeed(
        "GET",
        "/nodes/{node}/qemu/{vmid}/agent/file-read",
        "/vms/{vmid}",
        ("VM.GuestAgent.FileRead", "VM.GuestAgent.Unrestricted", "VM.Monitor"),
    ),
    "make-template": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/template", "/vms/{vmid}", ("VM.Allocate",)
    ),
    "destroy": CallNeed("DELETE", "/nodes/{node}/qemu/{vmid}", "/vms/{vmid}", ("VM.Allocate",)),
    "upload-iso": CallNeed(
        "POST",
        "/nodes/{node}/storage/{storage}/upload",
        "/storage/{storage}",
        ("Datastore.AllocateTemplate",),
    ),
    "remove-volume": CallNeed(
        "DELETE",
        "/nodes/{node}/storage/{storage}/content/{volume}",
        "/storage/{storage}",
        ("Datastore.Allocate",),
        "description",
    ),
    "mapping-read": CallNeed(
        "GET",
        "/cluster/mapping/pci/{id}",
        "/mapping/pci/{id}",
        ("Mapping.Use", "Mapping.Modify", "Mapping.Audit"),
    ),
    "mapping-create": CallNeed("POST", "/cluster/mapping/pci", "/mapping/pci", ("Mapping.Modify",)),
    "mapping-lease": CallNeed(
        "PUT", "/cluster/mapping/pci/{id}", "/mapping/pci/{id}", ("Mapping.Modify",)
    ),
    "dirmap-create": CallNeed("POST", "/cluster/mapping/dir", "/mapping/dir", ("Mapping.Modify",)),
    "dirmap-update": CallNeed(
        "PUT", "/cluster/mapping/dir/{id}", "/mapping/dir/{id}", ("Mapping.Modify",)
    ),
    # virtiofsN: qemu-server's check_dir_perm (VM.Config.Disk and this), its code only.
    "dirmap-use": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/mapping/dir/{id}", ("Mapping.Use",), "code"
    ),
    "node-notes": CallNeed("PUT", "/nodes/{node}/config", "/", ("Sys.Modify",)),
    # A bridge (netN of a clone's source, of a create, of a config write, old and new):
    # clone's and create's descriptions state it; config checks it in qemu-server's code.
    "bridge": CallNeed(
        "POST",
        "/nodes/{node}/qemu/{vmid}/clone",
        "/sdn/zones/localnetwork/{vnet}",
        ("SDN.Use",),
        "description",
    ),
    # Attaching a mapped device: stated in Proxmox's docs for resource mappings.
    "mapping-use": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/mapping/pci/{id}", ("Mapping.Use",), "docs"
    ),
}

# Which privileges a config key needs, as qemu-server's $check_vm_modify_config_perm
# (src/PVE/API2/Qemu.pm) classifies it; a key in no class is root-only. Drives, hostpciN,
# serialN, usbN, unusedN and tags are checked by value elsewhere (key_calls below).
# tests/unit/test_preflight_keys.py keeps this equal to the simulator's copy.
OPTION_CLASSES: dict[str, frozenset[str]] = {
    "configure-cpu": frozenset(
        {"cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"}
    ),
    "configure-memory": frozenset({"memory", "balloon", "shares", "allow-ksm"}),
    "configure-hw": frozenset(
        {
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
    ),
    "configure-options": frozenset(
        {
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
            "tags",
        }
    ),
    "configure-power": frozenset({"freeze"}),
    "configure-disk": frozenset({"boot", "bootdisk", "vmstatestorage"}),
    "configure-cloudinit": frozenset(
        {
            "cicustom",
            "cipassword",
            "citype",
            "ciuser",
            "ciupgrade",
            "nameserver",
            "searchdomain",
            "sshkeys",
        }
    ),
}
DRIVE_RE = re.compile(r"(?:ide|scsi|virtio|sata)\d+|efidisk0|tpmstate0")
_PATTERNS = (
    (re.compile(r"numa\d+"), ("configure-cpu",)),
    (re.compile(r"net\d+|running-nets-host-mtu"), ("configure-network",)),
    (re.compile(r"ipconfig\d+"), ("configure-cloudinit",)),
    (re.compile(r"vmstate"), ("configure-disk", "configure-power")),
    (re.compile(r"hostpci\d+"), ("configure-hw",)),  # with Mapping.Use, see run.py
    (re.compile(r"virtiofs\d"), ("configure-disk",)),  # with Mapping.Use, see run.py
)
_CLOUDINIT_VOLUME = re.compile(r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|vmdk))?$")


def key_calls(key: str, value: str | None = None, *, create: bool = False) -> tuple[str, ...]:
    """The CALLS entries setting (or deleting) key needs; () when none; ("root-only",) for
    keys only root@pam may set. A drive needs nothing beyond storage at create; when
    configured, its value decides (qemu-server's $check_drive_perms): a cloud-init drive
    VM.Config.Cloudinit and VM.Config.CDROM, a CD-ROM VM.Config.CDROM, else VM.Config.Disk."""
    if DRIVE_RE.fullmatch(key):
        return () if create else drive_calls(value or "")
    for call, keys in OPTION_CLASSES.items():
        if key in keys:
            return (call,)
    for pattern, calls in _PATTERNS:
        if pattern.fullmatch(key):
            return calls
    return ("root-only",)


def drive_calls(value: str) -> tuple[str, ...]:
    """$check_drive_perms for one drive value."""
    if _CLOUDINIT_VOLUME.search(value.split(",")[0]):
        return ("configure-cloudinit-drive", "configure-cdrom")
    if "media=cdrom" in value:
        return ("configure-cdrom",)
    return ("configure-disk",)


def bridge_vnets(net: str | None) -> list[str]:
    """Where below /sdn/zones/localnetwork/ a netN value needs SDN.Use (pve-guest-common
    check_vnet_access): the bridge, or BRIDGE/TAG with a VLAN tag and BRIDGE/VLAN for each
    trunk VLAN."""
    items = dict(i.partition("=")[::2] for i in (net or "").split(",") if "=" in i)
    bridge = items.get("bridge")
    if not bridge:
        return []
    base = bridge
    tag, trunks = items.get("tag"), items.get("trunks")
    paths = [f"{base}/{tag}"] if tag else []
    for part in (trunks or "").split(";"):
        low, _, high = part.partition("-")
        if low.strip().isdigit():
            paths += [f"{base}/{v}" for v in range(int(low), int(high or low) + 1)]
    return paths if (tag or trunks) else [base]
