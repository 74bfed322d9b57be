"""NoCloud network-config for ISO delivery, where Proxmox does not write one.

It has the shape Proxmox writes on its own cloud-init drive (qemu-server e6352be6,
src/PVE/QemuServer/Cloudinit.pm `nocloud_network`): version 1, the NIC named eth0 and
matched by its MAC address, a static subnet with address, netmask and gateway, and a
nameserver entry. Both halves matter on Debian 12 (cloud-init 22.4, the ENI renderer):
cloud-init renames an interface only when its entry names a MAC address (cloudinit/net
`apply_network_config_names`), and it rejects a version 2 route `to: default` ("Address
default is not a valid ip address"), leaving the guest with no network at all.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import TYPE_CHECKING, Any

import yaml

from provision.delivery.plan import delivery_mode
from provision.inventory.model import Inventory, Recipe, Vm
from provision.pve.vmconfig import NIC_MODELS

if TYPE_CHECKING:
    from provision.plan.desired import DesiredVm

# datacenter.cfg mac_prefix's default: the OUI Proxmox generates VM MAC addresses in
PROXMOX_OUI = "bc:24:11"
_MAC = re.compile(r"(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")


def needs_network_config(vm: Vm | Recipe) -> bool:
    """True when the guest needs a network-config (a static IP or nameservers); DHCP is
    cloud-init's default without one."""
    return vm.network.ip != "dhcp" or bool(vm.network.nameserver)


def network_config(vm: Vm | Recipe, mac: str) -> str | None:
    """The guest's network-config for its first NIC (MAC address mac), or None for DHCP."""
    if not needs_network_config(vm):
        return None
    network = vm.network
    subnet: dict[str, Any] = {"type": "dhcp4"}
    if network.ip != "dhcp":
        address = ipaddress.IPv4Interface(network.ip)
        subnet = {
            "type": "static",
            "address": str(address.ip),
            "netmask": str(address.netmask),
        }
        if network.gateway:
            subnet["gateway"] = network.gateway
    nic = {"type": "physical", "name": "eth0", "mac_address": mac.lower(), "subnets": [subnet]}
    config: list[dict[str, Any]] = [nic]
    if network.nameserver:
        # the list as Proxmox splits its nameserver option (PVE::Tools::split_list)
        servers = [s for s in re.split(r"[\s,;]+", network.nameserver) if s]
        config.append({"type": "nameserver", "address": servers})
    return yaml.safe_dump({"version": 1, "config": config}, sort_keys=False)


def mac_of(net0: str | None) -> str | None:
    """The MAC address in a netN option (`virtio=BC:24:11:..,bridge=..`), or None."""
    for part in (net0 or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() in (*NIC_MODELS, "macaddr") and _MAC.fullmatch(value.strip()):
            return value.strip().lower()
    return None


def chosen_mac(api: str, node: str, vm_name: str) -> str:
    """The MAC address aihost gives a new VM whose network-config names it: in Proxmox's
    default prefix, derived from the VM's cluster, node and name (the same on every run,
    so a re-run after a failed create plans the same ISO)."""
    digest = hashlib.sha256(f"{api}\n{node}\n{vm_name}".encode()).digest()
    return PROXMOX_OUI + "".join(f":{b:02x}" for b in digest[:3])


def iso_network(
    inv: Inventory, desired: DesiredVm, config: dict[str, Any] | None
) -> tuple[str | None, str | None]:
    """A VM's network-config for its ISO (None with snippets, which Proxmox writes one for,
    or with DHCP), and the net0 value to write for it (None when the VM has its MAC).

    The network-config matches the NIC by its MAC, as Proxmox's own does: an existing VM's
    address is read from its config (config: None for a new VM); a new VM gets the one
    chosen_mac gives, written with its configuration (a clone gets a random one:
    qemu-server `clone_vm`)."""
    host, vm = inv.hosts[desired.host_name], inv.vms[desired.name]
    if not needs_network_config(vm) or delivery_mode(host) != "iso":
        return None, None
    mac = mac_of(str((config or {}).get("net0", "")))
    if mac is not None:
        return network_config(vm, mac), None
    mac = chosen_mac(host.api, desired.node, desired.name)
    model, _, rest = desired.config["net0"].partition(",")
    return network_config(vm, mac), f"{model}={mac.upper()}" + (f",{rest}" if rest else "")
