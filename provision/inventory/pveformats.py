"""Proxmox's own formats and limits, checked on inventory values before any request.

The one place these rules live: the inventory model applies them, so `inventory check`
and every command that loads the inventory refuse the same values, before anything is
contacted. Each rule names the Proxmox format it follows; the patterns are transcribed
from pve-common `src/PVE/JSONSchema.pm` (the `register_format` functions named below,
also in /work/shared/pve/formats.json) and the limits from qemu-server and the API
schema (apidoc.json). Python's `re.fullmatch` with ASCII classes is used, so a trailing
newline or a non-ASCII "word" character never slips through a `$`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path as PurePath_
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

# pve-common JSONSchema.pm: $CONFIGID_RE, pve_verify_configid ('pve-configid')
CONFIGID_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]+")
# JSONSchema.pm pve_verify_node_name ('pve-node')
NODE_RE = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?")
# JSONSchema.pm parse_storage_id -> parse_id ('pve-storage-id'; at least 2 characters)
STORAGE_ID_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]*[a-zA-Z0-9]")
# JSONSchema.pm parse_bridge_id ('pve-bridge-id': ^[-_.\w\d]+$), ASCII word characters
BRIDGE_ID_RE = re.compile(r"[-_.A-Za-z0-9]+")
# JSONSchema.pm pve_verify_dns_name ('dns-name'), the format of a VM's `name`
DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
DNS_NAME_RE = re.compile(rf"({DNS_LABEL}\.)*{DNS_LABEL}")
# JSONSchema.pm $PVE_TAG_RE, pve_verify_tag ('pve-tag', of the `tags` list)
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_+.-]*")
# an environment variable name (POSIX portable name)
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

VMID_MIN, VMID_MAX = 100, 999_999_999  # 'pve-vmid' (apidoc: /nodes/{node}/qemu vmid)
MEMORY_MIN_MIB = 16  # qemu-server Memory.pm $memory_fmt current: minimum => 16
MEMORY_MAX_MIB = 4 * 1024 * 1024  # qemu-server Memory.pm get_max_mem: capped at 4 TiB
# JSONSchema.pm parse_size turns sizes into bytes as Perl numbers (doubles): exact up to
# 2**53 bytes, so a disk is at most 2**53 / 2**30 GiB
DISK_MAX_GB = 2**53 // 2**30
NAME_MAX = 63  # a VM name is also the guest's hostname: one DNS label is at most 63
_LINE_BREAKS = {"\u0085", "\u2028", "\u2029"}


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _matcher(
    pattern: re.Pattern[str], kind: str, message: str, max_len: int | None = None
) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value) or (max_len is not None and len(value) > max_len):
            raise _fail(kind, message.format(value=repr(value)))
        return value

    return check


def one_line(value: str) -> str:
    """The value, refused when it holds a control character or a line break."""
    for char in value:
        if unicodedata.category(char) == "Cc" or char in _LINE_BREAKS:
            raise _fail(
                "one_line",
                f"contains a control character or line break ({ascii(char)}); write it on one line",
            )
    return value


def address_list(value: str) -> str:
    """'address-list' of IP addresses (qemu-server `nameserver`), split on [,; \\s]+."""
    one_line(value)
    items = [item for item in re.split(r"[,;\s]+", value) if item]
    try:
        for item in items:
            ipaddress.ip_address(item)
    except ValueError:
        raise _fail(
            "address_list", "nameserver must be IP addresses separated by spaces or commas"
        ) from None
    if not items:
        raise _fail("address_list", "nameserver must name at least one IP address")
    return value


def _format(pattern: re.Pattern[str], kind: str, message: str, max_len: int | None = None) -> Any:
    """A str type checked by pattern (message names the format), with the pattern in the
    JSON Schema too, so editors with yaml-language-server flag a bad value as you type."""
    schema: dict[str, Any] = {"type": "string", "pattern": f"^(?:{pattern.pattern})$"}
    if max_len is not None:
        schema["maxLength"] = max_len
    return Annotated[
        str, AfterValidator(_matcher(pattern, kind, message, max_len)), WithJsonSchema(schema)
    ]


config_id = _matcher(
    CONFIGID_RE,
    "pve_configid",
    "{value} is not a Proxmox configuration id (pve-configid): a letter, then letters, "
    "digits, '-' or '_' (at least 2 characters)",
)
ConfigId = Annotated[
    str,
    AfterValidator(config_id),
    WithJsonSchema({"type": "string", "pattern": f"^(?:{CONFIGID_RE.pattern})$"}),
]
NodeName = _format(
    NODE_RE,
    "pve_node",
    "{value} is not a Proxmox node name (pve-node): letters, digits and '-', not at either end",
)
StorageId = _format(
    STORAGE_ID_RE,
    "pve_storage_id",
    "{value} is not a Proxmox storage id (pve-storage-id): a letter, then letters, "
    "digits, '-', '_' or '.', ending in a letter or digit (at least 2 characters)",
)
BridgeId = _format(
    BRIDGE_ID_RE,
    "pve_bridge_id",
    "{value} is not a Proxmox bridge id (pve-bridge-id): letters, digits, '-', '_' "
    "and '.' only, e.g. vmbr0",
)
DnsName = _format(
    DNS_NAME_RE,
    "dns_name",
    "{value} is not a DNS name (Proxmox format dns-name, at most 63 characters): "
    "letters, digits and '-', labels joined by '.'",
    NAME_MAX,
)
PveTag = _format(
    TAG_RE,
    "pve_tag",
    "{value} is not a Proxmox tag (pve-tag): letters, digits, '_', '-', '+', '.'",
)
EnvName = _format(
    ENV_NAME_RE,
    "env_name",
    "{value} is not an environment variable name (letters, digits, '_')",
)
OneLine = Annotated[str, AfterValidator(one_line)]
AddressList = Annotated[str, AfterValidator(address_list)]

_API_RE = re.compile(
    r"https://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,12}))?/?"
)


def api_url(value: str) -> str:
    """`api:`: 'sim', or https://HOST[:PORT] with a DNS name or IP and a port 1..65535."""
    if value == "sim":
        return value
    if value.startswith("http://"):
        raise _fail("api_scheme", "Proxmox only speaks HTTPS: write https://HOST:8006")
    match = _API_RE.fullmatch(value)
    host = match.group("host") if match else ""
    port = int(match.group("port") or 8006) if match else 0
    if not match or not (_is_ip(host.strip("[]")) or DNS_NAME_RE.fullmatch(host)):
        raise _fail(
            "api_url", "api must be https://HOST:8006 (or 'sim' for the built-in simulator)"
        )
    if not 1 <= port <= 65535:
        raise _fail("api_port", f"api: port {port} is out of range (1-65535); pveproxy uses 8006")
    return value.rstrip("/")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def local_path(value: object) -> object:
    """A local file path from text on one line (no NUL, no line break), as a Path."""
    if isinstance(value, str):
        one_line(value)
        if not value:
            raise _fail("path", "a path must not be empty")
        return PurePath_(value)
    if not isinstance(value, PurePath_):
        raise _fail("path", "a path must be text, e.g. /etc/pve/ca.pem")
    return value
