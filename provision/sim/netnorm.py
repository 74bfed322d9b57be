"""How qemu-server rewrites a `netN` value before it stores it.

qemu-server `PVE/QemuServer/Network.pm` `add_random_macs` (create) and the same
`parse_net`/`print_net` pair in `PVE/API2/Qemu.pm` `$update_vm_api` (config): the value
is parsed, a MAC is generated when none is given (`PVE::Tools::random_ether_addr` with
the datacenter's `mac_prefix`, BC:24:11 by default), and the value is printed again by
pve-common `PVE::JSONSchema::print_property_string`: the model with its MAC first
(`virtio=BC:24:11:…`, the model's key alias), then the other keys sorted by name.
Clients such as Ansible's proxmox_kvm read the MAC back from `virtio=MAC,`.
"""

from __future__ import annotations

import random
import re
from typing import Any

NIC_MODELS = (
    "rtl8139",
    "ne2k_pci",
    "e1000",
    "pcnet",
    "virtio",
    "ne2k_isa",
    "i82551",
    "i82557b",
    "i82559er",
    "vmxnet3",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
)
NET_KEY = re.compile(r"net\d+")
MAC_PREFIX = "BC:24:11"


def random_mac(prefix: str = MAC_PREFIX) -> str:
    """pve-common `PVE::Tools::random_ether_addr`: local, unicast, prefix kept."""
    octets = [random.randrange(256) for _ in range(6)]
    octets[0] = (octets[0] & 0xFE) | 2
    text = ":".join(f"{o:02X}" for o in octets)
    return prefix.upper() + text[len(prefix) :]


def normalise_net(value: str) -> str:
    """A netN value as qemu-server stores it (MAC added, keys in print order)."""
    opts: dict[str, str] = {}
    model = mac = None
    for part in value.split(","):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep:
            model = key  # the default key: the model alone
        elif key in NIC_MODELS:
            model, mac = key, val
        elif key == "model":
            model = val
        elif key == "macaddr":
            mac = val
        else:
            opts[key] = val
    if model is None:
        return value  # not parseable: qemu-server leaves it (schema checks refuse it first)
    head = f"{model}={mac or random_mac()}"
    return ",".join([head] + [f"{k}={opts[k]}" for k in sorted(opts)])


def normalise_options(options: dict[str, Any]) -> dict[str, Any]:
    """options with every netN normalised (other keys unchanged)."""
    return {k: normalise_net(str(v)) if NET_KEY.fullmatch(k) else v for k, v in options.items()}
