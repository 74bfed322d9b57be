"""NoCloud network-config (version 2) for ISO delivery, where Proxmox does not write one."""

from __future__ import annotations

from typing import Any

import yaml

from provision.inventory.model import Recipe, Vm


def network_config(vm: Vm | Recipe) -> str | None:
    """The guest's network-config, or None for DHCP (cloud-init's default)."""
    if vm.network.ip == "dhcp" and not vm.network.nameserver:
        return None
    nic: dict[str, Any] = {"match": {"name": "e*"}}
    if vm.network.ip == "dhcp":
        nic["dhcp4"] = True
    else:
        nic["addresses"] = [vm.network.ip]
        if vm.network.gateway:
            nic["routes"] = [{"to": "default", "via": vm.network.gateway}]
    if vm.network.nameserver:
        nic["nameservers"] = {"addresses": [vm.network.nameserver]}
    return yaml.safe_dump({"version": 2, "ethernets": {"nic0": nic}}, sort_keys=False)
