"""The network settings the simulated guest runs with (part of the guest MODEL): those of
the network-config cloud-init applied, as Debian 12's cloud-init 22.4 applies them.

- When: NoCloud applies network-config at an instance's first boot only
  (cloudinit/sources/DataSourceNoCloud.py `default_update_events`: boot-new-instance),
  unless the user-data's `updates: network: when:` lists `boot` or `boot-legacy`; a
  changed static IP with the same instance-id is otherwise ignored at the next boot
  ("No network config applied. Neither a new instance nor datasource network update
  allowed", cloudinit/stages.py).
- What: a version 1 `physical` entry configures the NIC with its `mac_address` (renamed
  to the entry's name, cloudinit/net `apply_network_config_names`), or the NIC already
  called by that name when it gives no MAC; a version 2 `ethernets` entry the NIC its
  `match: macaddress` names, or, without a match, the NIC called by its id or `set-name`
  (the ENI renderer names the interface so: cloudinit/net/network_state.py
  `handle_ethernets`). A version 2 route `to: default` is refused ("Address default is
  not a valid ip address", `_normalize_net_keys`) and the guest gets no network at all.
- Without a network-config, cloud-init's fallback: DHCP on the first NIC.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

DHCP = "dhcp"
_BOOT_EVENTS = ("boot", "boot-legacy")


def boot_updates(user_data: str | None) -> bool:
    """True when the user-data has cloud-init apply network-config at every boot."""
    try:
        data = yaml.safe_load(user_data or "")
    except yaml.YAMLError:
        return False
    updates = data.get("updates") if isinstance(data, dict) else None
    network = updates.get("network") if isinstance(updates, dict) else None
    when = network.get("when") if isinstance(network, dict) else None
    return isinstance(when, list) and any(event in _BOOT_EVENTS for event in when)


def after_boot(record: dict[str, Any], new_instance: bool) -> None:
    """Record the network-config the guest applies at this boot (record: the VM's guest
    record, with this boot's user_data and network_config)."""
    if new_instance or "network_applied" not in record or boot_updates(record["user_data"]):
        record["network_applied"] = record["network_config"]


def first_nic_address(network_config: str | None, name: str, mac: str) -> str | None:
    """The IPv4 interface (address/prefix) the NIC called name with MAC address mac gets
    from network_config, DHCP when it asks for a lease, None when it stays unconfigured."""
    if network_config is None:
        return DHCP
    try:
        data = yaml.safe_load(network_config)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("version") == 2:
        return _v2(data.get("ethernets") or {}, name, mac.lower())
    return _v1(data.get("config") or [], name, mac.lower())


def _v1(entries: list[Any], name: str, mac: str) -> str | None:
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != "physical":
            continue
        wanted = str(entry.get("mac_address") or "").lower()
        if (wanted and wanted == mac) or (not wanted and entry.get("name") == name):
            for subnet in entry.get("subnets") or []:
                if subnet.get("type") in ("dhcp", "dhcp4"):
                    return DHCP
                if subnet.get("type") == "static" and subnet.get("address"):
                    return _interface(str(subnet["address"]), subnet.get("netmask"))
            return None
    return None


def _v2(ethernets: dict[str, Any], name: str, mac: str) -> str | None:
    entries = {k: v for k, v in ethernets.items() if isinstance(v, dict)}
    routes = [r for e in entries.values() for r in e.get("routes") or [] if isinstance(r, dict)]
    if any(r.get("to") == "default" for r in routes):
        return None  # the whole network-config is refused
    for key, entry in entries.items():
        match = entry.get("match") or {}
        wanted = str(match.get("macaddress") or "").lower()
        if (wanted and wanted == mac) or (not match and entry.get("set-name", key) == name):
            if entry.get("dhcp4"):
                return DHCP
            addresses = [a for a in entry.get("addresses") or [] if ":" not in str(a)]
            return _interface(str(addresses[0]), None) if addresses else None
    return None


def _interface(address: str, netmask: Any) -> str | None:
    text = f"{address}/{netmask}" if netmask and "/" not in address else address
    try:
        return str(ipaddress.IPv4Interface(text))
    except ValueError:
        return None
