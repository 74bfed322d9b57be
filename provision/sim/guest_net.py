"""The simulated guest's network as qemu-ga reports it (part of the guest MODEL).

Interfaces eth0.. follow the VM's netN options (MAC from the property string), with the
IPv4 address from ipconfigN or the simulator's DHCP lease, plus an EUI-64 link-local IPv6.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.sim.guest import GuestView

_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def property_flags(value: str | None, default_key: str) -> dict[str, str]:
    """A Proxmox property string as a dict; a value without `key=` goes to default_key."""
    result: dict[str, str] = {}
    for part in (value or "").split(","):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if sep:
            result[key.strip()] = val.strip()
        else:
            result[default_key] = key.strip()
    return result


def network_interfaces(view: GuestView) -> list[dict[str, Any]]:
    """The result of qemu-ga's guest-network-get-interfaces (lo plus one ethN per netN)."""
    ifaces: list[dict[str, Any]] = [
        _iface("lo", "00:00:00:00:00:00", [("ipv4", "127.0.0.1", 8), ("ipv6", "::1", 128)])
    ]
    nets = sorted(
        (int(k[3:]), v) for k, v in view.config.items() if k.startswith("net") and k[3:].isdigit()
    )
    for index, value in nets:
        mac = mac_of(value, view.vmid, index)
        addrs: list[tuple[str, str, int]] = []
        ip = _address(view, index)
        if ip is not None:
            addrs.append(("ipv4", str(ip.ip), ip.network.prefixlen))
        addrs.append(("ipv6", _link_local(mac), 64))
        ifaces.append(_iface(f"eth{index}", mac, addrs))
    return ifaces


def _iface(name: str, mac: str, addrs: list[tuple[str, str, int]]) -> dict[str, Any]:
    return {
        "name": name,
        "hardware-address": mac,
        "ip-addresses": [
            {"ip-address-type": kind, "ip-address": addr, "prefix": prefix}
            for kind, addr, prefix in addrs
        ],
        "statistics": {
            "rx-bytes": 0,
            "rx-packets": 0,
            "rx-errs": 0,
            "rx-dropped": 0,
            "tx-bytes": 0,
            "tx-packets": 0,
            "tx-errs": 0,
            "tx-dropped": 0,
        },
    }


def mac_of(net_value: str, vmid: int, index: int) -> str:
    """The MAC address of a netN value (lower-case); one derived from vmid and index when
    the value names none."""
    props = property_flags(net_value, "model")
    mac = props.get("macaddr") or next((v for v in props.values() if _MAC.fullmatch(v)), None)
    if mac is None:
        mac = f"BC:24:11:{(vmid >> 8) & 0xFF:02X}:{vmid & 0xFF:02X}:{index:02X}"
    return mac.lower()


def _address(view: GuestView, index: int) -> ipaddress.IPv4Interface | None:
    ipconf = property_flags(view.config.get(f"ipconfig{index}"), "ip").get("ip")
    text = view.ip if index == 0 else ipconf
    if not text or text in ("dhcp", "auto"):
        return None
    if "/" not in text:
        prefix = ipconf.split("/")[1] if ipconf and "/" in ipconf else "24"
        text = f"{text}/{prefix}"
    try:
        return ipaddress.IPv4Interface(text)
    except ValueError:
        return None


def _link_local(mac: str) -> str:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups)
