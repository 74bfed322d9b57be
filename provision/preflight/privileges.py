"""Which privileges each API call aihost makes needs, per Proxmox's own schema.

The table below is checked against the `permissions` entries of the real API schemas
(PVE 8.4 and 9.1) by tests/unit/test_preflight_privileges.py, so it cannot drift from
Proxmox. Alternatives cover version differences: PVE 9 replaced VM.Monitor with the
VM.GuestAgent.* privileges for the agent calls.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallNeed:
    """An API call, the ACL path it is checked on, and privileges (any one suffices)."""

    method: str
    path: str
    acl: str
    any_of: tuple[str, ...]
    source: str = "check"  # "check": the schema's check; "description": stated in its text


CALLS: dict[str, CallNeed] = {
    "read-config": CallNeed(
        "GET", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Audit",)
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
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/vms/{vmid}", ("VM.Config.Cloudinit",)
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
    "node-notes": CallNeed("PUT", "/nodes/{node}/config", "/", ("Sys.Modify",)),
    # Attaching a mapped device: stated in Proxmox's docs for resource mappings.
    "mapping-use": CallNeed(
        "POST", "/nodes/{node}/qemu/{vmid}/config", "/mapping/pci/{id}", ("Mapping.Use",), "docs"
    ),
}

# Which config keys need which configure privilege (qemu-server's check_vm_modify_config_perm).
KEY_CALLS: dict[str, str] = {
    "cores": "configure-cpu",
    "cpu": "configure-cpu",
    "memory": "configure-memory",
    "net0": "configure-network",
    "machine": "configure-hw",
    "bios": "configure-hw",
    "name": "configure-options",
    "tags": "configure-options",
    "agent": "configure-options",
    "description": "configure-options",
    "ide2": "configure-cdrom",
    "efidisk0": "configure-disk",
    "cicustom": "configure-cloudinit",
    "ipconfig0": "configure-cloudinit",
    "ciuser": "configure-cloudinit",
    "sshkeys": "configure-cloudinit",
    "nameserver": "configure-cloudinit",
}


def calls_for_key(key: str) -> str:
    """The CALLS entry a config key's change needs."""
    if key.startswith("hostpci"):
        return "configure-hw"
    return KEY_CALLS.get(key, "configure-options")
