"""The named formats the simulator's declared parameters use, declared by the simulator.

Proxmox registers these in code (`PVE::JSONSchema::register_format`), so the API schema
only names them. Property-string formats follow qemu-server 9.2: `$hostpci_fmt`
(src/PVE/QemuServer/PCI.pm), `$ipconfig_fmt` (QemuServer/Network.pm), `$cicustom_fmt`
and `$boot_fmt` (QemuServer.pm), `$cpu_fmt` (QemuServer/CPUConfig.pm). Simple formats are
pve-common's verifiers (src/PVE/JSONSchema.pm: `pve_verify_node_name`,
`pve_verify_configid`, `parse_storage_id`/`parse_id`, `pve_verify_urlencoded`,
`pve_verify_dns_name`) and pve-storage's `parse_volume_id` (PVE/Storage/Plugin.pm); the
rest are rules in provision.sim.apivalues.FORMAT_CHECKS. Index ranges are qemu-server's
MAX_* constants. The dict has the shape of ../shared/pve/formats.json, which
tests/unit/test_sim_params.py keeps it equal to.
"""

from __future__ import annotations

from typing import Any

from provision.sim.paramspec import b, e, i, props, s

_PCI_ID = "0x[0-9a-fA-F]{4}"
_HOST_ID = "(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?"

HOSTPCI = props(
    {
        "device-id?": s(pat=_PCI_ID),
        "driver?": e("vfio keep"),
        "host?": s(pat=f"{_HOST_ID}(?:;{_HOST_ID})*", dk=1),
        "legacy-igd?": b(),
        "mapping?": s(fmt="pve-configid"),
        "mdev?": s(pat="[^/\\.:]+"),
        "pcie?": b(),
        "rombar?": b(),
        "romfile?": s(pat="[^,;]+"),
        "sub-device-id?": s(pat=_PCI_ID),
        "sub-vendor-id?": s(pat=_PCI_ID),
        "vendor-id?": s(pat=_PCI_ID),
        "x-vga?": b(),
    }
)
IPCONFIG = props(
    {
        "gw?": s(fmt="ipv4", req="ip"),
        "gw6?": s(fmt="ipv6", req="ip6"),
        "ip?": s(fmt="pve-ipv4-config"),
        "ip6?": s(fmt="pve-ipv6-config"),
    }
)
CICUSTOM = props({f"{k}?": s(fmt="pve-volume-id") for k in ("meta", "network", "user", "vendor")})
BOOT = props({"legacy?": s(pat="[acdn]{1,4}", dk=1), "order?": s(fmt="pve-qm-bootdev-list")})
CPU = props(
    {
        "cputype?": s(dk=1),
        "flags?": s(),
        "guest-phys-bits?": i(32, 64),
        "hidden?": b(),
        "hv-vendor-id?": s(pat="[a-zA-Z0-9]{1,12}"),
        "level?": i(0, 4294967295),
        "phys-bits?": s(fmt="pve-phys-bits"),
        "reported-model?": s(),
    }
)
_ID = "[a-zA-Z][a-zA-Z0-9\\-_.]*[a-zA-Z0-9]"
_LABEL = "[a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?"

SIM_FORMATS: dict[str, Any] = {
    "pve-qm-hostpci": {**HOSTPCI, "_index_range": [0, 15]},
    "pve-qm-ipconfig": {**IPCONFIG, "_index_range": [0, 31]},
    "pve-qm-cicustom": CICUSTOM,
    "pve-qm-boot": BOOT,
    "pve-vm-cpu-conf": CPU,
    "simple-formats": {
        "pve-node": {"pattern": _LABEL},
        "pve-configid": {"pattern": "[a-zA-Z][a-zA-Z0-9_-]+"},
        "pve-storage-id": {"pattern": _ID},
        "pve-volume-id": {"pattern": f"{_ID}:.+"},
        "urlencoded": {"pattern": "[-%a-zA-Z0-9_.!~*'()]*"},
        "dns-name": {
            "pattern": "(?:[a-zA-Z0-9](?:[a-zA-Z0-9\\-]*[a-zA-Z0-9])?\\.)*"
            "[a-zA-Z0-9](?:[a-zA-Z0-9\\-]*[a-zA-Z0-9])?"
        },
    },
    "index-ranges-qemu": {
        "hostpci": [0, 15],
        "net": [0, 31],
        "ipconfig": [0, 31],
        "scsi": [0, 30],
        "virtio": [0, 15],
        "sata": [0, 5],
        "ide": [0, 3],
        "serial": [0, 3],
        "parallel": [0, 2],
        "usb": [0, 13],
        "numa": [0, 7],
        "unused": [0, 255],
        "virtiofs": [0, 9],
    },
}
