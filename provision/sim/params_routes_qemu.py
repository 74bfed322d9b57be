"""The parameters of the VM routes (`/nodes/{node}/qemu…`) the simulator serves.

The qemu-server half of provision.sim.params_routes (which merges it into DECLARED), in
the notation of provision.sim.paramspec: what each qemu-server `PVE::RESTHandler` method
of PVE/API2/Qemu.pm and PVE/API2/Qemu/Agent.pm declares as `parameters`. The VM options
of create and config live in provision.sim.params_vm. tests/unit/test_sim_params.py
keeps this equal to ../shared/pve/apidoc.json (PVE 9.1).
"""

from __future__ import annotations

from provision.sim.params_vm import (
    CREATE_OPTIONS,
    MACHINE,
    NODE,
    POST_CONFIG_OPTIONS,
    VM_OPTIONS,
    VMID,
)
from provision.sim.paramspec import Entry, arr, b, e, i, s

_Q = "/nodes/{node}/qemu/{vmid}"
# qemu-server Drive.pm: the disk keys `resize` and `template` take (is_valid_drivename).
_DISKS = e(
    " ".join(
        [f"ide{k}" for k in range(4)]
        + [f"scsi{k}" for k in range(31)]
        + [f"virtio{k}" for k in range(16)]
        + [f"sata{k}" for k in range(6)]
        + ["efidisk0", "tpmstate0"]
    )
)

# {(METHOD, template): entries} of the VM routes, "name?" keys not yet expanded.
QEMU_DECLARED: dict[tuple[str, str], dict[str, Entry]] = {
    ("GET", "/nodes/{node}/qemu"): {
        "full?": b(),
        "node": NODE,
    },
    ("DELETE", _Q): {
        "destroy-unreferenced-disks?": b(),
        "node": NODE,
        "purge?": b(),
        "skiplock?": b(),
        "vmid": VMID,
    },
    ("POST", f"{_Q}/clone"): {
        "bwlimit?": i(0),
        "description?": s(),
        "format?": e("raw qcow2 vmdk"),
        "full?": b(),
        "name?": s(fmt="dns-name"),
        "newid": VMID,
        "node": NODE,
        "pool?": s(fmt="pve-poolid"),
        "snapname?": s(fmt="pve-configid", maxlen=40),
        "storage?": s(fmt="pve-storage-id"),
        "target?": NODE,
        "vmid": VMID,
    },
    ("POST", f"{_Q}/template"): {
        "disk?": _DISKS,
        "node": NODE,
        "vmid": VMID,
    },
    ("GET", f"{_Q}/config"): {
        "current?": b(),
        "node": NODE,
        "snapshot?": s(fmt="pve-configid", maxlen=40),
        "vmid": VMID,
    },
    ("GET", f"{_Q}/pending"): {
        "node": NODE,
        "vmid": VMID,
    },
    ("GET", f"{_Q}/status/current"): {
        "node": NODE,
        "vmid": VMID,
    },
    ("POST", f"{_Q}/status/start"): {
        "force-cpu?": s(),
        "machine?": s(fmt=MACHINE),
        "migratedfrom?": NODE,
        "migration_network?": s(fmt="CIDR"),
        "migration_type?": e("secure insecure"),
        "nets-host-mtu?": s(pat="net\\d+=\\d+(,net\\d+=\\d+)*"),
        "node": NODE,
        "skiplock?": b(),
        "stateuri?": s(maxlen=128),
        "targetstorage?": s(fmt="storage-pair-list"),
        "timeout?": i(0),
        "vmid": VMID,
        "with-conntrack-state?": b(),
    },
    ("POST", f"{_Q}/status/stop"): {
        "keepActive?": b(),
        "migratedfrom?": NODE,
        "node": NODE,
        "overrule-shutdown?": b(),
        "skiplock?": b(),
        "timeout?": i(0),
        "vmid": VMID,
    },
    ("POST", f"{_Q}/status/shutdown"): {
        "forceStop?": b(),
        "keepActive?": b(),
        "node": NODE,
        "skiplock?": b(),
        "timeout?": i(0),
        "vmid": VMID,
    },
    ("POST", f"{_Q}/status/reboot"): {
        "node": NODE,
        "timeout?": i(0),
        "vmid": VMID,
    },
    ("PUT", f"{_Q}/resize"): {
        "digest?": s(maxlen=40),
        "disk": _DISKS,
        "node": NODE,
        "size": s(pat="\\+?\\d+(\\.\\d+)?[KMGT]?"),
        "skiplock?": b(),
        "vmid": VMID,
    },
    ("POST", f"{_Q}/agent/ping"): {
        "node": NODE,
        "vmid": VMID,
    },
    ("POST", f"{_Q}/agent/exec"): {
        "command": arr(s()),
        "input-data?": s(maxlen=65536),
        "node": NODE,
        "vmid": VMID,
    },
    ("GET", f"{_Q}/agent/exec-status"): {
        "node": NODE,
        "pid": i(),
        "vmid": VMID,
    },
    ("GET", f"{_Q}/agent/network-get-interfaces"): {
        "node": NODE,
        "vmid": VMID,
    },
    ("GET", f"{_Q}/agent/file-read"): {
        "count?": i(1, 16777216),
        "decode?": b(),
        "file": s(),
        "node": NODE,
        "offset?": i(0),
        "vmid": VMID,
    },
    ("GET", f"{_Q}/cloudinit/dump"): {
        "node": NODE,
        "type": e("user network meta"),
        "vmid": VMID,
    },
    ("POST", "/nodes/{node}/qemu"): CREATE_OPTIONS,
    ("PUT", f"{_Q}/config"): VM_OPTIONS,
    ("POST", f"{_Q}/config"): POST_CONFIG_OPTIONS,
}
