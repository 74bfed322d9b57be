"""Named formats verified by code in Proxmox, and the Perl matching rules they rely on.

Each check follows the function named beside it in pve-common (src/PVE/JSONSchema.pm,
src/PVE/ParseUtils.pm, libpve-common-perl 9.2) unless said otherwise. Proxmox anchors
its regexes as `m/^...$/`, where `$` also matches before one final newline, and
compares numbers the Perl way (a string's leading ASCII number, else 0):
`perl_match` and `perl_number` reproduce both, so the simulator gives Proxmox's verdicts
(tests/sim/test_pve_oracle.py compares them with pve-common itself).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_PERL_FLAGS = re.compile(r"\(\?\^([a-z]*):")
_LEADING_NUMBER = re.compile(r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
# ParseUtils.pm $IPV4RE / $IPV6RE, built the same way.
_OCTET = "(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
IPV4RE = f"(?:(?:{_OCTET}\\.){{3}}{_OCTET})"
_H16 = "(?:[0-9a-fA-F]{1,4})"
_LS32 = f"(?:(?:{IPV4RE}|{_H16}:{_H16}))"
IPV6RE = (
    "(?:"
    + "|".join(
        [
            f"(?:(?:(?:{_H16}:){{6}}){_LS32})",
            f"(?:(?:::(?:{_H16}:){{5}}){_LS32})",
            f"(?:(?:(?:{_H16})?::(?:{_H16}:){{4}}){_LS32})",
            f"(?:(?:(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}){_LS32})",
            f"(?:(?:(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}){_LS32})",
            f"(?:(?:(?:(?:{_H16}:){{0,3}}{_H16})?::(?:{_H16}:){{1}}){_LS32})",
            f"(?:(?:(?:(?:{_H16}:){{0,4}}{_H16})?::){_LS32})",
            f"(?:(?:(?:(?:{_H16}:){{0,5}}{_H16})?::){_H16})",
            f"(?:(?:(?:(?:{_H16}:){{0,6}}{_H16})?::))",
        ]
    )
    + ")"
)
_DNS_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9\\-]*[a-zA-Z0-9])?"
_PAIR = re.compile(r"([^:]+):([^:]+)")
_STORAGE_ID = "[a-z][a-z0-9\\-_.]*[a-z0-9]"


@functools.cache
def perl_regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile a Perl pattern: `(?^:`/`(?^i:` groups become `(?:`/`(?i:`."""
    return re.compile(_PERL_FLAGS.sub(lambda m: f"(?{m.group(1)}:", pattern), flags)


def perl_fullmatch(regex: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The match of `m/^(?:regex)$/`: of the text, else of the text minus a final "\\n"."""
    found = regex.fullmatch(text)
    if found is None and text.endswith("\n"):
        found = regex.fullmatch(text[:-1])
    return found


def perl_match(pattern: str, text: str, flags: int = 0) -> bool:
    """Perl's `$text =~ m/^(?:pattern)$/`: a full match, also of text minus a final "\\n"."""
    return perl_fullmatch(perl_regex(pattern, flags), text) is not None


def perl_number(text: str) -> float:
    """The number Perl reads from a string: its leading ASCII number, else 0."""
    found = _LEADING_NUMBER.match(text)
    return float(found.group(1)) if found else 0.0


def split_list(value: str) -> list[str]:
    """ParseUtils.pm split_list: on NULs if there are any, else on commas, semicolons
    and blanks (Perl's split drops trailing empty fields)."""
    if "\0" in value:
        parts = value.split("\0")
    else:
        parts = re.split(r"\s+", re.sub(r"^\s+", "", re.sub(r"[,;]", " ", value)))
    while parts and parts[-1] == "":
        parts.pop()
    return parts


Verifier = Callable[[str], "str | None"]  # the die message of a refused value, else None


def _cidr(text: str, address: str, bits: int) -> bool:
    """pve_verify_cidrv4 / pve_verify_cidrv6: a mask from 8 to the address size."""
    found = perl_fullmatch(perl_regex(f"(?:{address})(?:/(\\d+))"), text)
    return found is not None and 7 < perl_number(found.group(1)) <= bits


def _startup_order(text: str) -> bool:
    """pve_parse_startup_order: `[[order=]N][,up=N][,down=N]` (an empty or "0" value fails)."""
    if text in ("", "0"):
        return False
    return all(
        re.fullmatch(r"\s*", part) or perl_match(r"(order=)?(\d+)|up=(\d+)|down=(\d+)", part)
        for part in text.split(",")
    )


def _storage_id(text: str) -> str | None:
    """parse_storage_id / parse_id: at least 2 characters, letters first."""
    if len(text) < 2:
        return f"storage ID '{text}' cannot be shorter than 2 characters"
    if not perl_match(_STORAGE_ID, text, re.I):
        return f"storage ID '{text}' contains illegal characters"
    return None


def _idmap(text: str, invalid: Verifier) -> str | None:
    """parse_idmap: `1`, one default ID, or `source:target` pairs, each ID valid."""
    if text in ("", "0"):
        return None
    identity, default, sources = False, False, set()
    for entry in split_list(text):
        pair = perl_fullmatch(_PAIR, entry)
        if entry == "1":
            identity = True
            continue
        problem = (invalid(pair.group(1)) or invalid(pair.group(2))) if pair else invalid(entry)
        if problem:
            return f"entry '{entry}' contains invalid ID - {problem}"
        if pair and pair.group(1) in sources:
            return f"duplicate mapping for source '{pair.group(1)}'"
        if not pair and default:
            return "default target ID can only be provided once"
        if pair:
            sources.add(pair.group(1))
        else:
            default = True
    if identity and (default or sources):
        return "identity mapping cannot be combined with other mappings"
    return None


def _ip(text: str) -> bool:
    return perl_match(f"(?:{IPV4RE})|(?:{IPV6RE})", text)


def _dns_name(text: str) -> bool:
    return perl_match(f"(?:{_DNS_LABEL}\\.)*{_DNS_LABEL}", text)


def _rule(ok: Callable[[str], bool], message: str) -> Verifier:
    """A verifier dying with message ({} is the value) when ok(value) is false."""
    return lambda v: None if ok(v) else message.format(v)


def _match(pattern: str, message: str, flags: int = 0) -> Verifier:
    return _rule(lambda v: perl_match(pattern, v, flags), message)


_LOOKS = "value does not look like a valid "
# pve-common's verifiers by format name, each with its die message (the rest of the
# simulator's named formats are in provision.sim.apivalues.OTHER_FORMATS).
PVE_COMMON_FORMATS: dict[str, Verifier] = {
    "ipv4": _match(IPV4RE, _LOOKS + "IPv4 address"),  # pve_verify_ipv4
    "ipv6": _match(IPV6RE, _LOOKS + "IPv6 address"),  # pve_verify_ipv6
    "ip": _rule(_ip, _LOOKS + "IP address"),  # pve_verify_ip
    "CIDRv4": _rule(lambda v: _cidr(v, IPV4RE, 32), _LOOKS + "IPv4 CIDR network"),
    "CIDRv6": _rule(lambda v: _cidr(v, IPV6RE, 128), _LOOKS + "IPv6 CIDR network"),
    "CIDR": _rule(  # pve_verify_cidr
        lambda v: _cidr(v, IPV4RE, 32) or _cidr(v, IPV6RE, 128), _LOOKS + "CIDR network"
    ),
    "pve-ipv4-config": _rule(  # pve_verify_ipv4_config
        lambda v: perl_match("dhcp|manual", v) or _cidr(v, IPV4RE, 32),
        _LOOKS + "ipv4 network configuration",
    ),
    "pve-ipv6-config": _rule(  # pve_verify_ipv6_config
        lambda v: perl_match("auto|dhcp|manual", v) or _cidr(v, IPV6RE, 128),
        _LOOKS + "ipv6 network configuration",
    ),
    # pve_verify_address: its `||` takes the returned value, so "0" is false
    "address": _rule(lambda v: v != "0" and (_ip(v) or _dns_name(v)), _LOOKS + "address: {}"),
    "dns-name": _rule(_dns_name, _LOOKS + "DNS name"),  # pve_verify_dns_name
    "mac-addr": _match(  # pve_verify_mac_addr
        "[a-f0-9][02468ace](?::[a-f0-9]{2}){5}", _LOOKS + "unicast MAC address", re.I
    ),
    "pve-tag": _match("[a-z0-9_][a-z0-9_\\-+.]*", "invalid characters in tag", re.I),
    "pve-bridge-id": _match("[-_.\\w\\d]+", "invalid bridge ID '{}'"),  # parse_bridge_id
    "pve-vmid": _match("[1-9][0-9]{2,8}", _LOOKS + "VM ID"),  # pve_verify_vmid
    "pve-node": _match(f"({_DNS_LABEL})", _LOOKS + "node name"),  # pve_verify_node_name
    "pve-configid": _match(  # pve_verify_configid
        "[a-z][a-z0-9_-]+", "invalid configuration ID '{}'", re.I
    ),
    "pve-storage-id": _storage_id,  # parse_storage_id
    "pve-iface": _match(  # pve_verify_iface
        "[a-z][a-z0-9_]{1,20}([:.]\\d+)?", "invalid network interface name '{}'", re.I
    ),
    "pve-startup-order": _rule(_startup_order, "unable to parse startup options"),
    "storage-pair": lambda v: _idmap(v, _storage_id),  # verify_storagepair
    "urlencoded": _match(  # pve_verify_urlencoded
        "[-%a-zA-Z0-9_.!~*'()]*", "invalid urlencoded string: {}"
    ),
    "disk-size": _match(  # pve_verify_disk_size / parse_size
        "(\\d+(\\.\\d+)?)([KMGT](?:iB)?)?", _LOOKS + "disk size: {}"
    ),
    "pve-task-status-type": _match(  # verify_task_status_type
        "(ok|error|warning|unknown)", "invalid status '{}'", re.I
    ),
    "string": lambda v: None,
    # pve-guest-common PVE/Mapping/Dir.pm pve_verify_path: m|^/[^;,=\(\)]+|, no end anchor
    "pve-storage-path-in-property-string": _rule(
        lambda v: re.match(r"/[^;,=()]+", v) is not None,
        "Value does not look like a valid absolute path. These symbols are currently not "
        "allowed in path: ;,=()",
    ),
}
